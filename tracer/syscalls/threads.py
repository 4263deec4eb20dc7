"""set_tid_address, set_robust_list, rseq, futex: what libc start-up asks of the kernel for
its one thread, answered as Linux answers a single-threaded process."""

from __future__ import annotations

import struct

from tracer.errors import UnsupportedSyscall
from tracer.syscalls.context import GuestFault, SyscallContext
from tracer.syscalls.errno import EAGAIN, EBUSY, EFAULT, EINVAL, ENOSYS, EPERM, ETIMEDOUT

ROBUST_LIST_HEAD_SIZE = 24   # sizeof(struct robust_list_head)
RSEQ_ORIG_SIZE = 32          # sizeof(struct rseq) before Linux 6.3's extensions
RSEQ_FLAG_UNREGISTER = 1
FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 0, 1, 9, 10
FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME = 128, 256
NS = 1_000_000_000


class FutexDeadlock(UnsupportedSyscall):
    """The only thread waits on a futex that nothing can wake: Linux would block it forever.
    The run stops as at a syscall vmtrace cannot answer (stop reason unsupported-syscall)."""

    def __init__(self, uaddr: int, step: int, rip: int):
        super().__init__(202, "futex", step, rip)
        self.args = (f"the program waits on the futex at {uaddr:#x} at step {step}, RIP "
                     f"{rip:#x}, with no other thread to wake it: Linux would block it "
                     "forever; the trace up to that point is kept",)


def sys_set_tid_address(ctx: SyscallContext, tidptr: int, *_: int) -> int:
    # The kernel only remembers the pointer (cleared and woken when the thread exits).
    ctx.process.clear_child_tid = tidptr
    return ctx.process.pid


def sys_set_robust_list(ctx: SyscallContext, head: int, length: int, *_: int) -> int:
    if length != ROBUST_LIST_HEAD_SIZE:
        return -EINVAL
    ctx.process.robust_list = head
    return 0


def sys_rseq(ctx: SyscallContext, rseq: int, length: int, flags: int, sig: int,
             *_: int) -> int:
    """Registers the thread's restartable-sequence area as Linux does: on the way back to
    user space the kernel reads `rseq_cs` (no critical section is ever interrupted here,
    the thread is never preempted) and stores the CPU number, 0, in `cpu_id_start` and
    `cpu_id`."""
    length &= 0xFFFFFFFF
    registered = ctx.process.rseq
    if flags & RSEQ_FLAG_UNREGISTER:
        if flags & ~RSEQ_FLAG_UNREGISTER:
            return -EINVAL
        if registered is None or registered[0] != rseq:
            return -EINVAL
        if registered[1] != length:
            return -EINVAL
        if registered[2] != sig & 0xFFFFFFFF:
            return -EPERM
        ctx.process.rseq = None
        return 0
    if flags:
        return -EINVAL
    if registered is not None:
        # Registering the same area again is -EBUSY, another one -EINVAL (kernel/rseq.c).
        if registered[0] == rseq and registered[1] == length:
            return -EBUSY if registered[2] == sig & 0xFFFFFFFF else -EPERM
        return -EINVAL
    if rseq & 31 or length < RSEQ_ORIG_SIZE:
        return -EINVAL
    try:
        ctx.read_guest(rseq + 8, 8)   # rseq_cs, checked on return to user space
        ctx.write_guest(rseq, struct.pack("<II", 0, 0))  # cpu_id_start, cpu_id
    except GuestFault:
        return -EFAULT
    ctx.process.rseq = (rseq, length, sig & 0xFFFFFFFF)
    return 0


def sys_futex(ctx: SyscallContext, uaddr: int, op: int, val: int, timeout: int, uaddr2: int,
              val3: int) -> int:
    """Futexes of a process with one thread: a wake finds no waiter, a wait returns at once
    if the word changed, times out on the virtual clock, or would block forever."""
    cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
        if cmd == FUTEX_WAKE_BITSET and val3 & 0xFFFFFFFF == 0:
            return -EINVAL
        return 0
    if cmd not in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        return -ENOSYS
    if cmd == FUTEX_WAIT_BITSET and val3 & 0xFFFFFFFF == 0:
        return -EINVAL
    if uaddr & 3:
        return -EINVAL
    try:
        current = struct.unpack("<I", ctx.read_guest(uaddr, 4))[0]
    except GuestFault:
        return -EFAULT
    if current != val & 0xFFFFFFFF:
        return -EAGAIN
    if timeout:
        try:
            sec, nsec = struct.unpack("<qq", ctx.read_guest(timeout, 16))
        except GuestFault:
            return -EFAULT
        if sec < 0 or not 0 <= nsec < NS:
            return -EINVAL
        wait = sec * NS + nsec
        if cmd == FUTEX_WAIT_BITSET:  # an absolute deadline on the clock op names
            wait = max(0, wait - ctx.now_ns())
        ctx.process.clock_offset_ns += wait
        return -ETIMEDOUT
    raise FutexDeadlock(uaddr, ctx.step, ctx.rip)
