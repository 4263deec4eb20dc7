"""read, write, open, openat, close, fstat, lseek, readv, writev, socket, connect.

The traced program is untrusted: it may only read host files under directories the user
allowed (--allow-read), as through a read-only bind mount of them, and only regular files
there; it never writes any host file nor reaches a host socket; fds 1 and 2 go to the
recording."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

from tracer.address_space import PROT_READ, PROT_WRITE
from tracer.syscalls.context import (
    GuestFault, OpenFile, SocketFile, StdinFile, SyscallContext,
)
from tracer.syscalls.errno import (
    EACCES, EAFNOSUPPORT, EBADF, ECONNREFUSED, EEXIST, EFAULT, EINVAL, EISDIR, EMFILE, ENOENT,
    ENOTCONN, ENOTSOCK, ENXIO, EROFS, ESPIPE,
)

O_ACCMODE, O_RDONLY = 3, 0
O_CREAT, O_EXCL, O_TRUNC = 0o100, 0o200, 0o1000
AT_FDCWD = -100
MAX_FDS = 1024
MAX_IO = 0x7FFFF000  # Linux caps a single read/write at this many bytes
S_IFIFO, S_IFCHR, S_IFREG, S_IFSOCK = 0o010000, 0o020000, 0o100000, 0o140000
AF_UNIX = 1
SOCK_TYPE_MASK = 0xF  # the rest of socket()'s type holds SOCK_NONBLOCK and SOCK_CLOEXEC
UNIX_SOCKET_TYPES = (1, 2, 5)  # SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
SOCKADDR_UN_SIZE = 110  # sa_family (2) + sun_path (108)


def _fd(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def sys_write(ctx: SyscallContext, fd: int, buf: int, count: int, *_: int) -> int:
    fd = _fd(fd)
    target = ctx.process.files.get(fd)
    if isinstance(target, SocketFile):
        return -ENOTCONN
    if target not in ("stdout", "stderr"):
        return -EBADF
    count = min(count, MAX_IO)
    # Linux faults on the buffer before any byte moves: check it before the size limit may
    # cut the count (a garbage length must give EFAULT, not stop the run at the limit).
    if not ctx.space.is_mapped(buf, count, PROT_READ):
        return -EFAULT
    count = ctx.limit_io(count)
    try:
        data = ctx.read_guest(buf, count)
    except GuestFault:
        return -EFAULT
    ctx.output(fd, data)
    return len(data)


def sys_read(ctx: SyscallContext, fd: int, buf: int, count: int, *_: int) -> int:
    source = ctx.process.files.get(_fd(fd))
    if isinstance(source, SocketFile):
        return -ENOTCONN
    if not isinstance(source, (OpenFile, StdinFile)):
        return -EBADF
    count = min(count, MAX_IO, len(source.data) - source.position)
    if count > 0 and not ctx.space.is_mapped(buf, count, PROT_WRITE):
        return -EFAULT
    count = ctx.limit_io(count)
    data = source.data[source.position:source.position + max(count, 0)]
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
    resolved = _guest_path(ctx, dirfd, pathname)
    if isinstance(resolved, int):
        return resolved
    if not _allowed(ctx, resolved):
        return -EACCES
    writes = flags & O_ACCMODE != O_RDONLY or flags & O_TRUNC
    try:
        # lstat: `resolved` has no symlink left, unless one appeared since (refused below).
        st = os.lstat(resolved)
    except FileNotFoundError:
        # Creating a file needs write access: a read-only mount answers EROFS.
        return -EROFS if flags & O_CREAT else -ENOENT
    except OSError:
        return -EACCES
    if flags & O_CREAT and flags & O_EXCL:
        return -EEXIST
    if stat.S_ISDIR(st.st_mode):
        return -EISDIR
    if stat.S_ISSOCK(st.st_mode):
        return -ENXIO  # what Linux's open() of a socket gives
    if not stat.S_ISREG(st.st_mode):
        # FIFOs and devices are never opened: one could block the recorder forever (a FIFO
        # with no writer) or never end (/dev/zero), or act on the host (a device). EACCES
        # is what a `nodev` mount gives for a device node.
        return -EACCES
    if writes:
        return -EROFS  # never write or truncate a host file: as on a read-only mount
    fd = next((n for n in range(3, MAX_FDS) if n not in ctx.process.files), None)
    if fd is None:
        return -EMFILE
    data = _read_regular_file(resolved)
    if data is None:
        return -EACCES
    ctx.process.files[fd] = OpenFile(resolved, data)
    return fd


def _guest_path(ctx: SyscallContext, dirfd: int, pathname: int) -> Path | int:
    """The host path a guest path names, symlinks and '..' resolved, or a negative errno.

    Resolved on the host side *before* the permission check, so that a link inside an
    allowed directory cannot lead outside it. Nothing is opened here.
    """
    try:
        raw = ctx.read_c_string(pathname)
    except GuestFault:
        return -EFAULT
    if not raw:
        return -ENOENT
    guest_path = Path(os.fsdecode(raw))
    if not guest_path.is_absolute() and _fd(dirfd) != AT_FDCWD:
        return -EBADF if _fd(dirfd) not in ctx.process.files else -EACCES
    return Path(os.path.realpath(guest_path))


def _read_regular_file(path: Path) -> bytes | None:
    """The bytes of a regular file, or None if it is (now) something else.

    O_NONBLOCK and O_NOFOLLOW: should the file have been replaced since it was checked (by a
    FIFO, a device or a symlink), the open neither blocks nor follows it, and fstat refuses.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with open(fd, "rb", closefd=True) as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read()


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
    elif isinstance(file, SocketFile):
        mode, size, ino = S_IFSOCK | 0o777, 0, 3
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


def sys_socket(ctx: SyscallContext, domain: int, type_: int, protocol: int, *_: int) -> int:
    """Unix sockets only: enough for a program to try to reach a local service."""
    domain, kind = domain & 0xFFFFFFFF, type_ & SOCK_TYPE_MASK
    if domain != AF_UNIX:
        return -EAFNOSUPPORT  # vmtrace emulates no network: as a kernel built without it
    if kind not in UNIX_SOCKET_TYPES or protocol & 0xFFFFFFFF:
        return -EINVAL
    fd = next((n for n in range(3, MAX_FDS) if n not in ctx.process.files), None)
    if fd is None:
        return -EMFILE
    ctx.process.files[fd] = SocketFile(domain, kind)
    return fd


def sys_connect(ctx: SyscallContext, fd: int, addr: int, addrlen: int, *_: int) -> int:
    """No host socket is reachable from the emulated process: an allowed path that is a
    socket answers ECONNREFUSED, as Linux does for a socket nobody listens on (and for a
    path that is not a socket); the rest of the path checks are open()'s."""
    sock = ctx.process.files.get(_fd(fd))
    if sock is None:
        return -EBADF
    if not isinstance(sock, SocketFile):
        return -ENOTSOCK
    addrlen &= 0xFFFFFFFF
    if addrlen <= 2 or addrlen > SOCKADDR_UN_SIZE:
        return -EINVAL
    try:
        raw = ctx.read_guest(addr, addrlen)
    except GuestFault:
        return -EFAULT
    if int.from_bytes(raw[:2], "little") != AF_UNIX:
        return -EINVAL
    path = raw[2:].split(b"\0", 1)[0]
    if raw[2] == 0 or not path:
        return -ECONNREFUSED  # the abstract namespace: the guest's own, and empty
    resolved = Path(os.path.realpath(os.fsdecode(path)))
    if not _allowed(ctx, resolved):
        return -EACCES
    try:
        os.lstat(resolved)
    except FileNotFoundError:
        return -ENOENT
    except OSError:
        return -EACCES
    return -ECONNREFUSED
