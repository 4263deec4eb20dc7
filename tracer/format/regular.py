"""Opens the files of a trace directory safely: regular files only, by name inside the
directory, never through a symbolic link and never blocking (a FIFO or a device planted
in a trace would hang or feed a reader forever). Stdlib only."""

from __future__ import annotations

import errno
import mmap
import os
import stat
from pathlib import Path

from tracer.format.errors import TraceFormatError

_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_directory(path: Path) -> int:
    """A descriptor of the trace directory (the path the user gave may be a symlink).

    Raises:
        TraceFormatError: no such directory, not a directory, or not readable.
    """
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TraceFormatError(f"{path} is not a trace directory (no such directory)") from None
    except NotADirectoryError:
        raise TraceFormatError(f"{path} is not a trace directory (it is a file)") from None
    except OSError as exc:
        raise TraceFormatError(f"{path} cannot be read: {exc.strerror}") from None


def open_regular(dir_fd: int, name: str, where: Path) -> int | None:
    """Opens `name` inside the directory for reading when it is a regular file.

    Args:
        dir_fd: the directory (from `open_directory`).
        name: a plain file name (no `/`).
        where: the directory's path, for messages.

    Returns:
        The open descriptor (the caller closes it), or None when there is no such file.

    Raises:
        TraceFormatError: it is a symlink, a directory, a FIFO, a device or a socket, or
            cannot be opened.
    """
    if "/" in name or name in ("", ".", ".."):
        raise TraceFormatError(f"{name!r} is not a file name of a trace")
    path = where / name
    try:
        # lstat first: opening a device can have effects even with O_NONBLOCK.
        before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TraceFormatError(f"{path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(before.st_mode):
        raise TraceFormatError(f"{path} is {_kind(before.st_mode)}; a trace is read only "
                               "from regular files inside its own directory")
    try:
        fd = os.open(name, _OPEN, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TraceFormatError(f"{path} is a symbolic link; a trace is read only from "
                                   "regular files inside its own directory") from None
        raise TraceFormatError(f"{path} cannot be read: {exc.strerror}") from None
    after = os.fstat(fd)
    if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev,
                                                                           before.st_ino):
        os.close(fd)
        raise TraceFormatError(f"{path} changed while it was opened; a trace is read only "
                               "from regular files inside its own directory")
    return fd


def read_regular(dir_fd: int, name: str, where: Path, limit: int) -> bytes | None:
    """The bytes of a small regular file of the trace, or None when it is absent.

    Raises:
        TraceFormatError: not a regular file, or larger than `limit` bytes.
    """
    fd = open_regular(dir_fd, name, where)
    if fd is None:
        return None
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise TraceFormatError(f"{where / name} has {size:,} bytes, more than the "
                                   f"{limit:,} a trace's {name} may have")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise TraceFormatError(f"{where / name} grew past {limit:,} bytes while it was read")
        return data
    finally:
        os.close(fd)


def map_regular(fd: int) -> memoryview:
    """The file's bytes, memory-mapped read-only (empty for an empty file)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return memoryview(b"")
    return memoryview(mmap.mmap(fd, size, prot=mmap.PROT_READ))


def read_host_file(path: Path, limit: int) -> bytes | None:
    """A file outside the trace that meta.json names (the program's source), or None when
    it is not a regular file of at most `limit` bytes: meta.json is not trusted to name
    something safe to read, such as a FIFO or /dev/zero."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # not even opened: opening a device can have effects
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)
