"""rt_sigaction, rt_sigprocmask, and kill/tgkill/tkill to the process itself: the handlers,
blocked set and pending signals the kernel keeps.

vmtrace delivers no asynchronous signal, and a fault ends the run with its signal as the
default action would (an installed handler is remembered, not run: docs/fidelity.md). A
signal the program sends itself (abort() sends SIGABRT) takes its default action: most end
the process (the run ends as by a fault, with that signal), a few are ignored; one the
program handles with a handler stops the run with a sentence (handlers are not run)."""

from __future__ import annotations

import struct

from tracer.errors import UnsupportedSyscall
from tracer.syscalls.context import GuestFault, KilledBySignal, SyscallContext
from tracer.syscalls.errno import EFAULT, EINVAL, ESRCH

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
    deliverable = ctx.process.signals_pending & ~ctx.process.signal_mask
    if deliverable:
        # Unblocking a pending signal delivers it on the way back to user space.
        sig = (deliverable & -deliverable).bit_length()
        ctx.process.signals_pending &= ~(1 << (sig - 1))
        _deliver(ctx, sig)
    return 0


SIGNAL_NAMES = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
                6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1",
                11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
                16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
                21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
                26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR",
                31: "SIGSYS"}
_IGNORED_BY_DEFAULT = {17, 18, 23, 28}  # SIGCHLD, SIGCONT, SIGURG, SIGWINCH
_STOPPING = {19, 20, 21, 22}           # SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU
SIG_DFL, SIG_IGN = 0, 1


def signal_name(sig: int) -> str:
    return SIGNAL_NAMES.get(sig, f"SIGRT{sig - 32}" if sig >= 32 else f"signal {sig}")


def sys_kill(ctx: SyscallContext, pid: int, sig: int, *_: int) -> int:
    pid = _signed32(pid)
    if pid not in (0, ctx.process.pid):
        return -ESRCH  # the process is alone: no other process or group to signal
    return _send(ctx, sig, "kill")


def sys_tgkill(ctx: SyscallContext, tgid: int, tid: int, sig: int, *_: int) -> int:
    if _signed32(tgid) <= 0 or _signed32(tid) <= 0:
        return -EINVAL
    if tgid & 0xFFFFFFFF != ctx.process.pid or tid & 0xFFFFFFFF != ctx.process.pid:
        return -ESRCH
    return _send(ctx, sig, "tgkill")


def sys_tkill(ctx: SyscallContext, tid: int, sig: int, *_: int) -> int:
    if _signed32(tid) <= 0:
        return -EINVAL
    if tid & 0xFFFFFFFF != ctx.process.pid:
        return -ESRCH
    return _send(ctx, sig, "tkill")


def _send(ctx: SyscallContext, sig: int, how: str) -> int:
    sig &= 0xFFFFFFFF
    if sig > NSIG:
        return -EINVAL
    if sig == 0:
        return 0  # only asks whether the process exists
    bit = 1 << (sig - 1)
    if ctx.process.signal_mask & bit and sig not in (SIGKILL, SIGSTOP):
        ctx.process.signals_pending |= bit
        return 0
    _deliver(ctx, sig, how)
    return 0


def _deliver(ctx: SyscallContext, sig: int, how: str = "an unblocked pending signal") -> None:
    handler = struct.unpack_from("<Q", ctx.process.signal_actions.get(
        sig, bytes(SIGACTION_SIZE)))[0]
    name = signal_name(sig)
    if sig not in (SIGKILL, SIGSTOP):
        if handler == SIG_IGN or (handler == SIG_DFL and sig in _IGNORED_BY_DEFAULT):
            return
        if handler != SIG_DFL:
            raise _Unhandled(ctx, name, "it has a handler for it, and vmtrace does not run "
                             "signal handlers")
    if sig in _STOPPING:
        raise _Unhandled(ctx, name, "it would stop the process, and nothing would continue it")
    raise KilledBySignal(name, f"the program sent itself {name} ({how})")


def _Unhandled(ctx: SyscallContext, name: str, why: str) -> UnsupportedSyscall:
    error = UnsupportedSyscall(0, name, ctx.step, ctx.rip)
    error.args = (f"the program sent itself {name} at step {ctx.step}, RIP {ctx.rip:#x}: "
                  f"{why}; the trace up to that point is kept",)
    return error


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value
