"""newfstatat, readlink, readlinkat, ioctl: what libc asks about its files at start-up and
when stdio first writes (is this a terminal? how big a buffer? where is my executable?).

stdin, stdout and stderr are pipes to the recorder, never a terminal; the executable is
`/home/user/NAME`, the directory of the guest's fixed environment (PWD), argv[0] `./NAME`."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from tracer.syscalls import files
from tracer.syscalls.context import GuestFault, OpenFile, StdinFile, SyscallContext
from tracer.syscalls.errno import (
    EACCES, EBADF, EFAULT, EINVAL, ENAMETOOLONG, ENOENT, ENOTTY,
)

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
PATH_MAX = 4096
FIONREAD, FIONCLEX, FIOCLEX = 0x541B, 0x5450, 0x5451
GUEST_CWD = "/home/user"
SELF_EXE = ("/proc/self/exe", "/proc/thread-self/exe")


def guest_exe_path(name: str) -> str:
    """Where the guest's executable is, as readlink("/proc/self/exe") answers."""
    return f"{GUEST_CWD}/{name}"


def sys_newfstatat(ctx: SyscallContext, dirfd: int, pathname: int, statbuf: int, flags: int,
                   *_: int) -> int:
    try:
        raw = ctx.read_c_string(pathname, PATH_MAX)
    except GuestFault:
        return -EFAULT
    if not raw:
        if not flags & AT_EMPTY_PATH:
            return -ENOENT
        return files.sys_fstat(ctx, dirfd, statbuf)
    # A path: only under --allow-read, as for open (nothing else on the host is looked at).
    fd = files.sys_openat(ctx, dirfd, pathname, 0)
    if fd < 0:
        return fd
    try:
        return files.sys_fstat(ctx, fd, statbuf)
    finally:
        ctx.process.files.pop(fd, None)


def sys_readlink(ctx: SyscallContext, pathname: int, buf: int, bufsiz: int, *_: int) -> int:
    return sys_readlinkat(ctx, AT_FDCWD & 0xFFFFFFFF, pathname, buf, bufsiz)


def sys_readlinkat(ctx: SyscallContext, dirfd: int, pathname: int, buf: int, bufsiz: int,
                   *_: int) -> int:
    bufsiz = bufsiz & 0xFFFFFFFF
    if bufsiz == 0 or bufsiz & 0x80000000:
        return -EINVAL
    try:
        raw = ctx.read_c_string(pathname, PATH_MAX)
    except GuestFault:
        return -EFAULT
    if not raw:
        return -ENOENT
    if len(raw) >= PATH_MAX:
        return -ENAMETOOLONG
    path = os.fsdecode(raw)
    if path in SELF_EXE:
        target = ctx.process.exe_path.encode()
    else:
        target = _host_link(ctx, dirfd, Path(path))
        if isinstance(target, int):
            return target
    target = target[:bufsiz]
    try:
        ctx.write_guest(buf, target)
    except GuestFault:
        return -EFAULT
    return len(target)


def _host_link(ctx: SyscallContext, dirfd: int, path: Path) -> bytes | int:
    """The target of a symlink under an --allow-read directory (the link itself is not
    followed; its directory is resolved first, as open resolves a path)."""
    if not path.is_absolute():
        if files._fd(dirfd) != AT_FDCWD:
            return -EBADF if files._fd(dirfd) not in ctx.process.files else -EACCES
    where = Path(os.path.realpath(path.parent)) / path.name
    if not files._allowed(ctx, where):
        return -EACCES
    try:
        return os.fsencode(os.readlink(where))
    except FileNotFoundError:
        return -ENOENT
    except OSError:
        return -EINVAL  # not a symbolic link


def sys_ioctl(ctx: SyscallContext, fd: int, request: int, arg: int, *_: int) -> int:
    """No descriptor is a terminal: terminal requests (TCGETS, TIOCGWINSZ, ...) fail with
    ENOTTY, as on a pipe or a regular file; FIONREAD says how many bytes a read would get."""
    file = ctx.process.files.get(files._fd(fd))
    if file is None:
        return -EBADF
    request &= 0xFFFFFFFF
    if request in (FIOCLEX, FIONCLEX):
        return 0
    if request == FIONREAD:
        pending = (len(file.data) - file.position
                   if isinstance(file, (OpenFile, StdinFile)) else 0)
        try:
            ctx.write_guest(arg, struct.pack("<i", max(0, min(pending, 0x7FFFFFFF))))
        except GuestFault:
            return -EFAULT
        return 0
    return -ENOTTY
