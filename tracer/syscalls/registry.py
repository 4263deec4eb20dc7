"""The one explicit table of implemented syscalls, and dispatch by number.

A number Linux does not know returns -ENOSYS (as Linux does); a real Linux syscall that is
not in this table stops the run with UnsupportedSyscall, never a silent warning."""

from __future__ import annotations

from collections.abc import Callable

from tracer.errors import UnsupportedSyscall
from tracer.syscalls import (
    fileinfo, files, identity, limits, memory, process, signals, threads, time,
)
from tracer.syscalls.abi import ABIS
from tracer.syscalls.context import SyscallContext
from tracer.syscalls.errno import ENOSYS
from tracer.syscalls.numbers import SYSCALL_NAMES, SYSCALL_NAMES_I386, SYSCALL_NUMBERS

Handler = Callable[..., int]

HANDLERS: dict[int, Handler] = {
    SYSCALL_NUMBERS["read"]: files.sys_read,
    SYSCALL_NUMBERS["write"]: files.sys_write,
    SYSCALL_NUMBERS["open"]: files.sys_open,
    SYSCALL_NUMBERS["openat"]: files.sys_openat,
    SYSCALL_NUMBERS["close"]: files.sys_close,
    SYSCALL_NUMBERS["fstat"]: files.sys_fstat,
    SYSCALL_NUMBERS["lseek"]: files.sys_lseek,
    SYSCALL_NUMBERS["readv"]: files.sys_readv,
    SYSCALL_NUMBERS["writev"]: files.sys_writev,
    SYSCALL_NUMBERS["socket"]: files.sys_socket,
    SYSCALL_NUMBERS["connect"]: files.sys_connect,
    SYSCALL_NUMBERS["brk"]: memory.sys_brk,
    SYSCALL_NUMBERS["mmap"]: memory.sys_mmap,
    SYSCALL_NUMBERS["munmap"]: memory.sys_munmap,
    SYSCALL_NUMBERS["mprotect"]: memory.sys_mprotect,
    SYSCALL_NUMBERS["mremap"]: memory.sys_mremap,
    SYSCALL_NUMBERS["exit"]: process.sys_exit,
    SYSCALL_NUMBERS["exit_group"]: process.sys_exit,
    SYSCALL_NUMBERS["getpid"]: process.sys_getpid,
    SYSCALL_NUMBERS["gettid"]: process.sys_getpid,
    SYSCALL_NUMBERS["getppid"]: process.sys_getppid,
    SYSCALL_NUMBERS["uname"]: process.sys_uname,
    SYSCALL_NUMBERS["arch_prctl"]: process.sys_arch_prctl,
    SYSCALL_NUMBERS["clock_gettime"]: time.sys_clock_gettime,
    SYSCALL_NUMBERS["gettimeofday"]: time.sys_gettimeofday,
    SYSCALL_NUMBERS["time"]: time.sys_time,
    SYSCALL_NUMBERS["nanosleep"]: time.sys_nanosleep,
    SYSCALL_NUMBERS["getrandom"]: time.sys_getrandom,
    # What libc (glibc, musl) start-up and stdio ask for.
    SYSCALL_NUMBERS["set_tid_address"]: threads.sys_set_tid_address,
    SYSCALL_NUMBERS["set_robust_list"]: threads.sys_set_robust_list,
    SYSCALL_NUMBERS["rseq"]: threads.sys_rseq,
    SYSCALL_NUMBERS["futex"]: threads.sys_futex,
    SYSCALL_NUMBERS["rt_sigaction"]: signals.sys_rt_sigaction,
    SYSCALL_NUMBERS["rt_sigprocmask"]: signals.sys_rt_sigprocmask,
    SYSCALL_NUMBERS["kill"]: signals.sys_kill,
    SYSCALL_NUMBERS["tgkill"]: signals.sys_tgkill,
    SYSCALL_NUMBERS["tkill"]: signals.sys_tkill,
    SYSCALL_NUMBERS["prlimit64"]: limits.sys_prlimit64,
    SYSCALL_NUMBERS["getrlimit"]: limits.sys_getrlimit,
    SYSCALL_NUMBERS["setrlimit"]: limits.sys_setrlimit,
    SYSCALL_NUMBERS["newfstatat"]: fileinfo.sys_newfstatat,
    SYSCALL_NUMBERS["readlink"]: fileinfo.sys_readlink,
    SYSCALL_NUMBERS["readlinkat"]: fileinfo.sys_readlinkat,
    SYSCALL_NUMBERS["ioctl"]: fileinfo.sys_ioctl,
    SYSCALL_NUMBERS["madvise"]: memory.sys_madvise,
    SYSCALL_NUMBERS["getuid"]: identity.sys_getuid,
    SYSCALL_NUMBERS["geteuid"]: identity.sys_getuid,
    SYSCALL_NUMBERS["getgid"]: identity.sys_getuid,
    SYSCALL_NUMBERS["getegid"]: identity.sys_getuid,
    SYSCALL_NUMBERS["getcwd"]: identity.sys_getcwd,
    SYSCALL_NUMBERS["sched_getaffinity"]: identity.sys_sched_getaffinity,
    SYSCALL_NUMBERS["sched_yield"]: identity.sys_sched_yield,
}


# Syscalls whose i386 form (via `int 0x80`) has the same arguments and memory layout as the
# x86-64 one, so the same handler serves both. Others (struct layouts of 32-bit time_t,
# iovec, stat, old mmap) are reported as unsupported rather than answered wrongly.
_I386_SAME_ABI = {"read", "write", "open", "openat", "close", "brk", "munmap", "mprotect",
                  "exit", "exit_group", "getpid", "gettid", "getppid", "getrandom", "uname"}


def syscall_name(nr: int, abi: str = "x86_64") -> str:
    return ABIS[abi].name_of(nr)


def dispatch(ctx: SyscallContext, nr: int, args: tuple[int, ...], rip: int) -> int:
    """Runs syscall `nr`; returns its raw result (negative errno on failure).

    Raises:
        UnsupportedSyscall: a real Linux syscall vmtrace does not emulate.
        ExitProcess: the program exits.
    """
    handler = HANDLERS.get(nr)
    if handler is not None:
        return handler(ctx, *args)
    if nr in SYSCALL_NAMES:
        raise UnsupportedSyscall(nr, SYSCALL_NAMES[nr], ctx.step, rip)
    return -ENOSYS


def dispatch_i386(ctx: SyscallContext, nr: int, args: tuple[int, ...], rip: int) -> int:
    """Runs an `int 0x80` syscall (i386 numbers, 32-bit arguments) from a 64-bit program.

    Raises:
        UnsupportedSyscall: a real i386 syscall vmtrace does not emulate in this ABI.
        ExitProcess: the program exits.
    """
    name = SYSCALL_NAMES_I386.get(nr)
    if name is None:
        return -ENOSYS
    if name not in _I386_SAME_ABI:
        raise UnsupportedSyscall(nr, f"{name} via int 0x80", ctx.step, rip)
    return HANDLERS[SYSCALL_NUMBERS[name]](ctx, *args)
