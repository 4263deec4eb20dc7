"""prlimit64, getrlimit, setrlimit: the resource limits of a fresh login process.

The values are a fixed, typical Linux default set (not the host's), so that traces do not
depend on the machine; a limit the program sets is remembered and read back, and only the
8 MiB stack limit is enforced (the stack's size is fixed when the process starts)."""

from __future__ import annotations

import struct

from tracer.syscalls.context import GuestFault, SyscallContext
from tracer.syscalls.errno import EFAULT, EINVAL, EPERM, ESRCH

INFINITY = 0xFFFF_FFFF_FFFF_FFFF
RLIM_NLIMITS = 16
# RLIMIT_CPU, FSIZE, DATA, STACK, CORE, RSS, NPROC, NOFILE, MEMLOCK, AS, LOCKS,
# SIGPENDING, MSGQUEUE, NICE, RTPRIO, RTTIME: (soft, hard).
DEFAULT_LIMITS = {
    0: (INFINITY, INFINITY), 1: (INFINITY, INFINITY), 2: (INFINITY, INFINITY),
    3: (8 << 20, INFINITY), 4: (0, INFINITY), 5: (INFINITY, INFINITY),
    6: (63_432, 63_432), 7: (1024, 524_288), 8: (8 << 20, 8 << 20), 9: (INFINITY, INFINITY),
    10: (INFINITY, INFINITY), 11: (63_432, 63_432), 12: (819_200, 819_200), 13: (0, 0),
    14: (0, 0), 15: (INFINITY, INFINITY),
}


def _limit(ctx: SyscallContext, resource: int) -> tuple[int, int]:
    return ctx.process.limits.get(resource, DEFAULT_LIMITS[resource])


def sys_prlimit64(ctx: SyscallContext, pid: int, resource: int, new: int, old: int,
                  *_: int) -> int:
    pid &= 0xFFFFFFFF
    resource &= 0xFFFFFFFF
    if resource >= RLIM_NLIMITS:
        return -EINVAL
    if pid not in (0, ctx.process.pid):
        return -ESRCH
    current = _limit(ctx, resource)
    try:
        wanted = struct.unpack("<QQ", ctx.read_guest(new, 16)) if new else None
        if wanted is not None:
            soft, hard = wanted
            if soft > hard:
                return -EINVAL
            if hard > current[1]:
                return -EPERM  # raising a hard limit needs CAP_SYS_RESOURCE
        if old:
            ctx.write_guest(old, struct.pack("<QQ", *current))
    except GuestFault:
        return -EFAULT
    if wanted is not None:
        ctx.process.limits[resource] = wanted
    return 0


def sys_getrlimit(ctx: SyscallContext, resource: int, rlim: int, *_: int) -> int:
    return sys_prlimit64(ctx, 0, resource, 0, rlim)


def sys_setrlimit(ctx: SyscallContext, resource: int, rlim: int, *_: int) -> int:
    if not rlim:
        return -EFAULT
    return sys_prlimit64(ctx, 0, resource, rlim, 0)
