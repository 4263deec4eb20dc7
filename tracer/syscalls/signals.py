"""rt_sigaction and rt_sigprocmask: the handlers and blocked set the kernel keeps.

vmtrace delivers no asynchronous signal, and a fault ends the run with its signal as the
default action would (an installed handler is remembered, not run: docs/fidelity.md)."""

from __future__ import annotations

import struct

from tracer.syscalls.context import GuestFault, SyscallContext
from tracer.syscalls.errno import EFAULT, EINVAL

NSIG = 64
SIGSET_SIZE = 8
SIGKILL, SIGSTOP = 9, 19
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
SIGACTION_SIZE = 32  # handler, flags, restorer, mask (the kernel's struct sigaction)
_UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))


def sys_rt_sigaction(ctx: SyscallContext, sig: int, act: int, oldact: int, sigsetsize: int,
                     *_: int) -> int:
    sig &= 0xFFFFFFFF
    if sigsetsize != SIGSET_SIZE or not 1 <= sig <= NSIG:
        return -EINVAL
    if act and sig in (SIGKILL, SIGSTOP):
        return -EINVAL
    actions = ctx.process.signal_actions
    old = actions.get(sig, bytes(SIGACTION_SIZE))
    try:
        if act:
            handler, flags, restorer, mask = struct.unpack(
                "<QQQQ", ctx.read_guest(act, SIGACTION_SIZE))
            actions[sig] = struct.pack("<QQQQ", handler, flags, restorer, mask & ~_UNBLOCKABLE)
        if oldact:
            ctx.write_guest(oldact, old)
    except GuestFault:
        return -EFAULT
    return 0


def sys_rt_sigprocmask(ctx: SyscallContext, how: int, set_: int, oldset: int,
                       sigsetsize: int, *_: int) -> int:
    if sigsetsize != SIGSET_SIZE:
        return -EINVAL
    old = ctx.process.signal_mask
    try:
        if set_:
            new = struct.unpack("<Q", ctx.read_guest(set_, SIGSET_SIZE))[0] & ~_UNBLOCKABLE
            how &= 0xFFFFFFFF
            if how == SIG_BLOCK:
                ctx.process.signal_mask = old | new
            elif how == SIG_UNBLOCK:
                ctx.process.signal_mask = old & ~new
            elif how == SIG_SETMASK:
                ctx.process.signal_mask = new
            else:
                return -EINVAL
        if oldset:
            ctx.write_guest(oldset, struct.pack("<Q", old))
    except GuestFault:
        return -EFAULT
    return 0
