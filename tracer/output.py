"""Where a recording goes. `-o` is replaced only if it is provably a vmtrace trace; the run is
written into a sibling `NAME.recording-PID/` and renamed into place when it ends, so a user's
files are never deleted and a failed, killed or concurrent recording never leaves a
half-replaced trace. Stdlib and tracer.format.schema only."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
import time
from pathlib import Path

from tracer.errors import OutputError
from tracer.format.schema import FORMAT_NAME, FORMAT_VERSION, META_FILE, RECORDING_FILES

# NAME.recording-PID: a recording in progress (its directory is flock'ed), or one that was
# killed (not locked any more). NAME.replaced-PID: the previous trace, during the swap only.
RECORDING = ".recording-"
_REPLACED = ".replaced-"
_PSEUDO_FILE_SYSTEMS = (Path("/proc"), Path("/sys"))
_MAX_META_BYTES = 64 << 20
# Claims in one directory are serialised by a lock on it, held only while checking and
# renaming (milliseconds); a holder that keeps it this long is not a vmtrace recording.
_PARENT_LOCK_SECONDS = 10.0


class TraceOutput:
    """A claimed `-o`: the recording writes into `work`, `commit()` moves it to `target`.

    Leaving the `with` block by an error removes `work` (the target is as it was); by
    KeyboardInterrupt or SystemExit it keeps `work`, like a kill would.
    """

    def __init__(self, target: Path, shown: Path, work: Path, lock_fd: int):
        self.target = target
        self.shown = shown
        self.work = work
        self._lock_fd = lock_fd
        self._done = False

    def commit(self) -> Path:
        """Puts the finished recording at the target, replacing the trace there if any.

        Returns:
            The target, as the caller spelled it.

        Raises:
            OutputError: the target changed meanwhile into something that is not a trace we
                may replace, or the rename failed; the new trace is then left in `work`.
        """
        parent = self.target.parent
        with _DirectoryLock(parent):
            try:
                existing = _replaceable(self.target, self.shown)
                if existing == "trace":
                    aside = _free_name(parent, f"{self.target.name}{_REPLACED}{os.getpid()}")
                    os.rename(self.target, aside)
                    try:
                        os.rename(self.work, self.target)
                    except OSError:
                        os.rename(aside, self.target)
                        raise
                    _remove_trace(aside)
                else:
                    # No target, or an empty directory: rename(2) replaces the latter
                    # atomically.
                    os.rename(self.work, self.target)
            except OutputError:
                self._done = True  # keep the new trace where it is
                raise OutputError(f"the recording finished, but {self.shown} changed meanwhile "
                                  "into something vmtrace may not replace; the new trace is in "
                                  f"{self.work}") from None
            except OSError as exc:
                self._done = True
                raise OutputError(f"the recording finished, but moving it to {self.shown} "
                                  f"failed ({exc.strerror}); the new trace is in "
                                  f"{self.work}") from None
        self._done = True
        return self.shown

    def __enter__(self) -> TraceOutput:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self._done and (exc_type is None or issubclass(exc_type, Exception)):
                shutil.rmtree(self.work, ignore_errors=True)
        finally:
            os.close(self._lock_fd)


def check_output(target: Path) -> None:
    """Refuses, with a sentence, a `-o` that can never receive a trace. Changes nothing.

    Raises:
        OutputError: `target` is a link, a file, under a file or a pseudo file system, or a
            directory that is not only a vmtrace trace.
    """
    path = _absolute(target)
    _replaceable(path, target)
    _check_parent(path, target)


def claim_output(target: Path) -> TraceOutput:
    """Checks `target` and reserves it for this process: creates the sibling recording
    directory (and missing parents), locked for as long as the recording runs.

    Raises:
        OutputError: as `check_output`, or another `trace record` is writing `target`.
    """
    path = _absolute(target)
    check_output(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {target.parent}: {exc.strerror}; "
                          "choose another -o") from None
    with _DirectoryLock(path.parent):
        for other in _recordings(path):
            if _locked(other):
                raise OutputError(
                    f"another `trace record` (process {_pid_of(other, path)}) is writing "
                    f"{target} right now; wait for it to finish or choose another -o")
        _replaceable(path, target)
        work = _free_name(path.parent, f"{path.name}{RECORDING}{os.getpid()}")
        try:
            work.mkdir()
            fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise OutputError(f"cannot create {work}: {exc.strerror}; "
                              "choose another -o") from None
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return TraceOutput(path, target, work, fd)


def partial_recordings(target: Path) -> list[Path]:
    """The partial traces that killed recordings to `target` left beside it (a running
    recording's directory is not one)."""
    path = _absolute(target)
    if not path.parent.is_dir():
        return []
    return [p for p in _recordings(path) if not _locked(p)]


# -- what may be replaced ---------------------------------------------------------------
def _absolute(target: Path) -> Path:
    path = Path(os.path.abspath(target))
    if not path.name:
        raise OutputError(f"{target} cannot be a trace directory; choose another -o")
    return path


def _replaceable(path: Path, shown: Path) -> str:
    """'absent', 'empty' or 'trace'; anything else is refused with a sentence."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    except NotADirectoryError:
        return "absent"  # under a file: _check_parent says so
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{shown} is a symbolic link (to {os.readlink(path)}); vmtrace does "
                          "not write through links: give the real path or choose another -o")
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{shown} exists and is not a directory; choose another -o")
    _check_pseudo(path, shown)
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise OutputError(f"cannot read {shown}: {exc.strerror}; choose another -o") from None
    if not names:
        return "empty"
    foreign = [n for n in names if n not in RECORDING_FILES or not _regular(path / n)]
    version = None if META_FILE in foreign else _meta_version(path / META_FILE)
    if version is None:
        if foreign:
            why = f"it holds {_describe(path, foreign)}, which vmtrace did not write"
        elif META_FILE not in names:
            why = f"it has no {META_FILE}"
        else:
            why = f"its {META_FILE} was not written by vmtrace"
        raise OutputError(f"{shown} is not a vmtrace trace ({why}); choose another -o")
    if not 1 <= version <= FORMAT_VERSION:
        raise OutputError(f"{shown} holds a trace of format version {version}, which this "
                          "vmtrace does not know; choose another -o")
    if foreign:
        raise OutputError(f"{shown} is a vmtrace trace but also holds "
                          f"{_describe(path, foreign)}, which vmtrace did not write; move "
                          "them out or choose another -o")
    return "trace"


def _meta_version(path: Path) -> int | None:
    """The format version of a meta.json vmtrace wrote, or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            raw = json.loads(f.read(_MAX_META_BYTES + 1)[:_MAX_META_BYTES])
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        return None
    version = raw.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    return version


def _check_parent(path: Path, shown: Path) -> None:
    _check_pseudo(path, shown)
    ancestor = path.parent
    while not os.path.lexists(ancestor):
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        where = ancestor if shown.is_absolute() else os.path.relpath(ancestor)
        raise OutputError(f"{shown} cannot be created: {where} is a file, not a directory; "
                          "choose another -o")


def _check_pseudo(path: Path, shown: Path) -> None:
    real = Path(os.path.realpath(path))
    for pseudo in _PSEUDO_FILE_SYSTEMS:
        if real == pseudo or pseudo in real.parents:
            raise OutputError(f"{shown} is inside {pseudo}, which the kernel provides, not a "
                              "place for files; choose another -o")


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _describe(directory: Path, names: list[str]) -> str:
    shown = [n + "/" if (directory / n).is_dir() and not (directory / n).is_symlink() else n
             for n in sorted(names)]
    if len(shown) > 3:
        return f"{', '.join(shown[:3])} and {len(shown) - 3} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def _remove_trace(directory: Path) -> None:
    """Deletes a trace moved aside, file by file from the allow-list: if anything else
    appeared in it meanwhile, the directory stays (under its .replaced- name)."""
    for name in os.listdir(directory):
        if name in RECORDING_FILES and _regular(directory / name):
            os.unlink(directory / name)
    try:
        os.rmdir(directory)
    except OSError:
        pass


# -- recordings in progress -------------------------------------------------------------
def _recordings(path: Path) -> list[Path]:
    pattern = re.compile(re.escape(path.name + RECORDING) + r"\d+(-\d+)?")
    found = []
    try:
        names = sorted(os.listdir(path.parent))
    except OSError:
        return []  # an unreadable directory: claiming a name in it fails with a sentence
    for name in names:
        candidate = path.parent / name
        if pattern.fullmatch(name) and candidate.is_dir() and not candidate.is_symlink():
            found.append(candidate)
    return found


def _pid_of(recording: Path, path: Path) -> str:
    return recording.name[len(path.name + RECORDING):].split("-")[0]


def _locked(directory: Path) -> bool:
    """Whether a live recording holds `directory` (the kernel drops the lock when the
    recording process ends, however it ends)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _free_name(parent: Path, name: str) -> Path:
    candidate, n = parent / name, 1
    while os.path.lexists(candidate):
        n += 1
        candidate = parent / f"{name}-{n}"
    return candidate


class _DirectoryLock:
    """An exclusive flock on a directory, so that claiming a name in it (check, then
    create) and the final swap are each one step for concurrent recordings."""

    def __init__(self, directory: Path):
        self._directory = directory
        self._fd = -1

    def __enter__(self) -> None:
        try:
            self._fd = os.open(self._directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise OutputError(f"cannot open {self._directory}: {exc.strerror}; "
                              "choose another -o") from None
        deadline = time.monotonic() + _PARENT_LOCK_SECONDS
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self._fd)
                    raise OutputError(f"{self._directory} stayed locked by another process "
                                      f"for {_PARENT_LOCK_SECONDS:.0f} s; try again") from None
                time.sleep(0.01)

    def __exit__(self, *exc) -> None:
        os.close(self._fd)  # closing releases the lock
