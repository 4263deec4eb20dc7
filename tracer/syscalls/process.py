"""exit, exit_group, getpid and friends, uname, arch_prctl."""

from __future__ import annotations

from unicorn.x86_const import UC_X86_REG_FS_BASE, UC_X86_REG_GS_BASE

from tracer.syscalls.context import ExitProcess, GuestFault, SyscallContext
from tracer.syscalls.errno import EFAULT, EINVAL
from tracer.syscalls.numbers import ARCH_GET_FS, ARCH_GET_GS, ARCH_SET_FS, ARCH_SET_GS


def sys_exit(ctx: SyscallContext, code: int, *_: int) -> int:
    raise ExitProcess(code & 0xFF)


def sys_getpid(ctx: SyscallContext, *_: int) -> int:
    return ctx.process.pid


def sys_getppid(ctx: SyscallContext, *_: int) -> int:
    return 1


def sys_uname(ctx: SyscallContext, buf: int, *_: int) -> int:
    fields = [b"Linux", b"vmtrace", b"6.1.0-vmtrace", b"#1 SMP PREEMPT_DYNAMIC", b"x86_64",
              b"(none)"]
    data = b"".join(f.ljust(65, b"\0") for f in fields)
    try:
        ctx.write_guest(buf, data)
    except GuestFault:
        return -EFAULT
    return 0


def sys_arch_prctl(ctx: SyscallContext, code: int, addr: int, *_: int) -> int:
    if code == ARCH_SET_FS:
        ctx.uc.reg_write(UC_X86_REG_FS_BASE, addr)
        return 0
    if code == ARCH_SET_GS:
        ctx.uc.reg_write(UC_X86_REG_GS_BASE, addr)
        return 0
    if code in (ARCH_GET_FS, ARCH_GET_GS):
        reg = UC_X86_REG_FS_BASE if code == ARCH_GET_FS else UC_X86_REG_GS_BASE
        try:
            ctx.write_u64(addr, ctx.uc.reg_read(reg))
        except GuestFault:
            return -EFAULT
        return 0
    return -EINVAL
