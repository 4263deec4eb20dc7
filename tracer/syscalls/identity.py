"""Who and where the process is: user and group ids (1000, as AT_UID says), its working
directory (/home/user, as PWD says), its CPUs (one), and sched_yield (nothing else runs)."""

from __future__ import annotations

from tracer.loader import GUEST_UID
from tracer.syscalls.context import GuestFault, SyscallContext
from tracer.syscalls.errno import EFAULT, EINVAL, ERANGE, ESRCH
from tracer.syscalls.fileinfo import GUEST_CWD


def sys_getuid(ctx: SyscallContext, *_: int) -> int:
    return GUEST_UID  # getuid, geteuid, getgid, getegid: uid = gid = 1000


def sys_getcwd(ctx: SyscallContext, buf: int, size: int, *_: int) -> int:
    path = GUEST_CWD.encode() + b"\0"
    if size < len(path):
        return -ERANGE
    try:
        ctx.write_guest(buf, path)
    except GuestFault:
        return -EFAULT
    return len(path)


def sys_sched_getaffinity(ctx: SyscallContext, pid: int, size: int, mask: int,
                          *_: int) -> int:
    """One CPU, CPU 0: the kernel writes its cpumask (8 bytes on a machine with up to 64
    CPUs) and returns how many bytes it wrote."""
    if pid & 0xFFFFFFFF not in (0, ctx.process.pid):
        return -ESRCH
    if size < 8 or size & 7:
        return -EINVAL
    try:
        ctx.write_guest(mask, (1).to_bytes(8, "little"))
    except GuestFault:
        return -EFAULT
    return 8


def sys_sched_yield(ctx: SyscallContext, *_: int) -> int:
    return 0
