"""read, write, open, openat, close, fstat, lseek, readv, writev.

The traced program is untrusted: it may only read host files under directories the user
allowed (--allow-read), and never writes any host file; fds 1 and 2 go to the recording."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from tracer.syscalls.context import GuestFault, OpenFile, StdinFile, SyscallContext
from tracer.syscalls.errno import EACCES, EBADF, EFAULT, EINVAL, EISDIR, EMFILE, ENOENT, ESPIPE

O_ACCMODE, O_RDONLY = 3, 0
AT_FDCWD = -100
MAX_FDS = 1024
MAX_IO = 0x7FFFF000  # Linux caps a single read/write at this many bytes
S_IFIFO, S_IFCHR, S_IFREG = 0o010000, 0o020000, 0o100000


def _fd(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def sys_write(ctx: SyscallContext, fd: int, buf: int, count: int, *_: int) -> int:
    fd = _fd(fd)
    target = ctx.process.files.get(fd)
    if target not in ("stdout", "stderr"):
        return -EBADF
    count = min(count, MAX_IO)
    try:
        data = ctx.read_guest(buf, count)
    except GuestFault:
        return -EFAULT
    ctx.output(fd, data)
    return len(data)


def sys_read(ctx: SyscallContext, fd: int, buf: int, count: int, *_: int) -> int:
    source = ctx.process.files.get(_fd(fd))
    if not isinstance(source, (OpenFile, StdinFile)):
        return -EBADF
    data = source.data[source.position:source.position + min(count, MAX_IO)]
    try:
        ctx.write_guest(buf, data)
    except GuestFault:
        return -EFAULT
    source.position += len(data)
    return len(data)


def sys_readv(ctx: SyscallContext, fd: int, iov: int, iovcnt: int, *_: int) -> int:
    return _vector(ctx, fd, iov, iovcnt, sys_read)


def sys_writev(ctx: SyscallContext, fd: int, iov: int, iovcnt: int, *_: int) -> int:
    return _vector(ctx, fd, iov, iovcnt, sys_write)


def _vector(ctx: SyscallContext, fd: int, iov: int, iovcnt: int, each) -> int:
    if iovcnt > 1024:
        return -EINVAL
    try:
        raw = ctx.read_guest(iov, 16 * iovcnt)
    except GuestFault:
        return -EFAULT
    total = 0
    for i in range(iovcnt):
        base, length = struct.unpack_from("<QQ", raw, 16 * i)
        if length == 0:
            continue
        done = each(ctx, fd, base, length)
        if done < 0:
            return done if total == 0 else total
        total += done
        if done < length:
            break
    return total


def _allowed(ctx: SyscallContext, path: Path) -> bool:
    return any(path == root or root in path.parents for root in ctx.process.allow_read)


def sys_openat(ctx: SyscallContext, dirfd: int, pathname: int, flags: int, *_: int) -> int:
    try:
        raw = ctx.read_c_string(pathname)
    except GuestFault:
        return -EFAULT
    if not raw:
        return -ENOENT
    guest_path = Path(os.fsdecode(raw))
    if not guest_path.is_absolute() and _fd(dirfd) != AT_FDCWD:
        return -EBADF if _fd(dirfd) not in ctx.process.files else -EACCES
    # Resolve symlinks and '..' on the host side *before* the permission check, so a link
    # inside an allowed directory cannot lead outside it. Nothing is opened unless allowed.
    resolved = Path(os.path.realpath(guest_path))
    if not _allowed(ctx, resolved):
        return -EACCES
    if flags & O_ACCMODE != O_RDONLY:
        return -EACCES
    if not resolved.exists():
        return -ENOENT
    if resolved.is_dir():
        return -EISDIR
    fd = next((n for n in range(3, MAX_FDS) if n not in ctx.process.files), None)
    if fd is None:
        return -EMFILE
    ctx.process.files[fd] = OpenFile(resolved, resolved.read_bytes())
    return fd


def sys_open(ctx: SyscallContext, pathname: int, flags: int, mode: int, *_: int) -> int:
    return sys_openat(ctx, AT_FDCWD & 0xFFFFFFFF, pathname, flags, mode)


def sys_close(ctx: SyscallContext, fd: int, *_: int) -> int:
    if ctx.process.files.pop(_fd(fd), None) is None:
        return -EBADF
    return 0


def sys_lseek(ctx: SyscallContext, fd: int, offset: int, whence: int, *_: int) -> int:
    file = ctx.process.files.get(_fd(fd))
    if file is None:
        return -EBADF
    if not isinstance(file, OpenFile):
        return -ESPIPE
    offset = offset - (1 << 64) if offset >> 63 else offset
    base = {0: 0, 1: file.position, 2: len(file.data)}.get(whence)
    if base is None or base + offset < 0:
        return -EINVAL
    file.position = base + offset
    return file.position


def sys_fstat(ctx: SyscallContext, fd: int, statbuf: int, *_: int) -> int:
    file = ctx.process.files.get(_fd(fd))
    if file is None:
        return -EBADF
    if isinstance(file, OpenFile):
        mode, size, ino = S_IFREG | 0o644, len(file.data), 2
    else:
        # stdin, stdout and stderr are pipes to the recorder (not a terminal): libc buffers
        # stdout fully, as when the native program's output is captured.
        mode, size, ino = S_IFIFO | 0o600, 0, 1
    # struct stat on x86-64: 144 bytes; fixed owner and times keep traces deterministic.
    st = struct.pack("<QQQIIIIQqqqqqqqqqqqq", 0x16, ino, 1, mode, 1000, 1000, 0, 0x8801 if
                     mode & S_IFCHR else 0, size, 4096, (size + 511) // 512,
                     0, 0, 0, 0, 0, 0, 0, 0, 0)
    st = st.ljust(144, b"\0")
    try:
        ctx.write_guest(statbuf, st)
    except GuestFault:
        return -EFAULT
    return 0
