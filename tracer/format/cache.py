"""Where caches built from a trace live: beside the trace directory, keyed by the trace's
content hash, never inside it (opening a trace for reading never writes to it).

Whatever sits beside a trace may have come with it (an archive holds `t/` and
`t.index/`): a symbolic link there is never followed, only refused or replaced, so that
writing or pruning a cache cannot touch files elsewhere. Stdlib only."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

from tracer.format.errors import TraceFormatError
from tracer.format.reader import TraceFiles

_STAMP = "stamp.json"
_MAX_STAMP_BYTES = 1 << 16


def cache_root(files: TraceFiles) -> Path:
    """`<trace>.index/` next to the trace, or ~/.cache/vmtrace/index/<name> when the trace's
    parent directory is not writable."""
    parent = files.path.resolve().parent
    if os.access(parent, os.W_OK):
        return parent / (files.path.resolve().name + ".index")
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "vmtrace" / "index" / files.path.resolve().name


def is_real_dir(path: Path) -> bool:
    """True for a directory that is not a symbolic link (False when absent)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _safe_root(files: TraceFiles) -> Path:
    """The cache root, refused when something other than a directory sits there.

    Raises:
        TraceFormatError: a symlink or a file is where the cache directory goes.
    """
    root = cache_root(files)
    try:
        mode = os.lstat(root).st_mode
    except FileNotFoundError:
        return root
    except OSError as exc:
        raise TraceFormatError(f"{root} cannot be used for the trace's index: "
                               f"{exc.strerror}") from None
    if not stat.S_ISDIR(mode):
        what = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
        raise TraceFormatError(f"{root} is {what}; vmtrace keeps the trace's index there and "
                               "does not follow it (remove it, and the index is rebuilt)")
    return root


def _is_hash(value) -> bool:
    # It names a directory: nothing but hex digits may reach the path.
    return isinstance(value, str) and len(value) == 64 and all(
        c in "0123456789abcdef" for c in value)


def _read_stamp(path: Path) -> dict | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        saved = json.loads(os.read(fd, _MAX_STAMP_BYTES))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(fd)
    return saved if isinstance(saved, dict) else None


def trace_hash(files: TraceFiles) -> str:
    """`files.content_hash()`, remembered beside the trace while the files' sizes and
    modification times stay the same (hashing a large trace on every query costs time)."""
    root = _safe_root(files)
    stamp_path = root / _STAMP
    stamp = files.file_stats()
    saved = _read_stamp(stamp_path)
    if saved is not None and saved.get("files") == stamp and _is_hash(saved.get("hash")):
        return saved["hash"]
    digest = files.content_hash()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = stamp_path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({"hash": digest, "files": stamp}))
        os.replace(tmp, stamp_path)  # replaces a planted link itself, never its target
    except OSError:
        pass
    return digest


def cache_dir(files: TraceFiles) -> Path:
    """The directory for this exact trace's caches (it may not exist yet). Caches of an
    earlier recording at the same path are removed when a new one is made."""
    return _safe_root(files) / trace_hash(files)[:16]


def remove(path: Path) -> None:
    """Removes whatever is at `path` without following a link: a link or file is unlinked,
    a real directory removed with its contents."""
    if is_real_dir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError):
            pass


def prune_stale(files: TraceFiles, keep: Path) -> None:
    """Removes cache directories of other (older) recordings at this trace's path (links
    are removed as links; rmtree never follows them)."""
    root = _safe_root(files)
    for child in root.iterdir() if is_real_dir(root) else ():
        if child != keep and child.name != _STAMP and (is_real_dir(child)
                                                       or child.is_symlink()):
            remove(child)
