"""clock_gettime, gettimeofday, time, nanosleep, getrandom, on a virtual clock and a seeded
generator so that a recording is deterministic (the values are recorded for replay)."""

from __future__ import annotations

import struct

from tracer.address_space import PROT_WRITE
from tracer.syscalls.context import GuestFault, SyscallContext
from tracer.syscalls.errno import EFAULT, EINVAL

NS = 1_000_000_000


def _timespec(ns: int) -> bytes:
    return struct.pack("<qq", ns // NS, ns % NS)


def sys_clock_gettime(ctx: SyscallContext, clock: int, tp: int, *_: int) -> int:
    if clock > 11:
        return -EINVAL
    try:
        ctx.write_guest(tp, _timespec(ctx.now_ns()))
    except GuestFault:
        return -EFAULT
    return 0


def sys_gettimeofday(ctx: SyscallContext, tv: int, *_: int) -> int:
    if tv:
        now = ctx.now_ns()
        try:
            ctx.write_guest(tv, struct.pack("<qq", now // NS, (now % NS) // 1000))
        except GuestFault:
            return -EFAULT
    return 0


def sys_time(ctx: SyscallContext, tloc: int, *_: int) -> int:
    seconds = ctx.now_ns() // NS
    if tloc:
        try:
            ctx.write_u64(tloc, seconds)
        except GuestFault:
            return -EFAULT
    return seconds


def sys_nanosleep(ctx: SyscallContext, req: int, rem: int, *_: int) -> int:
    try:
        sec, nsec = struct.unpack("<qq", ctx.read_guest(req, 16))
    except GuestFault:
        return -EFAULT
    if sec < 0 or not 0 <= nsec < NS:
        return -EINVAL
    # Sleeping advances virtual time only: the recording never waits.
    ctx.process.clock_offset_ns += sec * NS + nsec
    return 0


def sys_getrandom(ctx: SyscallContext, buf: int, count: int, flags: int, *_: int) -> int:
    if flags & ~0x7:
        return -EINVAL
    count = min(count, 33554431)
    if count and not ctx.space.is_mapped(buf, count, PROT_WRITE):
        return -EFAULT  # checked before the size limit may cut the count
    count = ctx.limit_io(count)
    try:
        ctx.write_guest(buf, ctx.random(count))
    except GuestFault:
        return -EFAULT
    return count
