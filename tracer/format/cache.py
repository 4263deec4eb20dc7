"""Where caches built from a trace live: beside the trace directory, keyed by the trace's
content hash, never inside it (opening a trace for reading never writes to it). Stdlib only."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tracer.format.reader import TraceFiles

_STAMP = "stamp.json"


def _stat_stamp(files: TraceFiles) -> list[list]:
    out = []
    for path in sorted(files.path.glob("*.arrows")) + [files.path / "meta.json"]:
        st = path.stat()
        out.append([path.name, st.st_size, st.st_mtime_ns])
    return out


def cache_root(files: TraceFiles) -> Path:
    """`<trace>.index/` next to the trace, or ~/.cache/vmtrace/index/<name> when the trace's
    parent directory is not writable."""
    parent = files.path.resolve().parent
    if os.access(parent, os.W_OK):
        return parent / (files.path.resolve().name + ".index")
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "vmtrace" / "index" / files.path.resolve().name


def trace_hash(files: TraceFiles) -> str:
    """`files.content_hash()`, remembered beside the trace while the files' sizes and
    modification times stay the same (hashing a large trace on every query costs time)."""
    root = cache_root(files)
    stamp_path = root / _STAMP
    stamp = _stat_stamp(files)
    try:
        saved = json.loads(stamp_path.read_text())
        if saved.get("files") == stamp:
            return saved["hash"]
    except (OSError, ValueError, KeyError):
        pass
    digest = files.content_hash()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = stamp_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"hash": digest, "files": stamp}))
        os.replace(tmp, stamp_path)
    except OSError:
        pass
    return digest


def cache_dir(files: TraceFiles) -> Path:
    """The directory for this exact trace's caches (it may not exist yet). Caches of an
    earlier recording at the same path are removed when a new one is made."""
    return cache_root(files) / trace_hash(files)[:16]


def prune_stale(files: TraceFiles, keep: Path) -> None:
    """Removes cache directories of other (older) recordings at this trace's path."""
    root = cache_root(files)
    for child in root.iterdir() if root.is_dir() else ():
        if child.is_dir() and child != keep:
            shutil.rmtree(child, ignore_errors=True)
