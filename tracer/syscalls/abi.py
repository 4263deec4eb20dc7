"""The x86-64 Linux syscall ABI as data: which registers carry what."""

from __future__ import annotations

from dataclasses import dataclass

from unicorn.x86_const import (
    UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11, UC_X86_REG_RAX,
    UC_X86_REG_RBP, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI, UC_X86_REG_RDX,
    UC_X86_REG_RSI,
)


@dataclass(frozen=True)
class SyscallAbi:
    number: int
    args: tuple[int, ...]
    result: int
    # `syscall` itself loads RCX with the return address and R11 with RFLAGS.
    clobbered_rip: int | None
    clobbered_flags: int | None


X86_64 = SyscallAbi(
    number=UC_X86_REG_RAX,
    args=(UC_X86_REG_RDI, UC_X86_REG_RSI, UC_X86_REG_RDX, UC_X86_REG_R10, UC_X86_REG_R8,
          UC_X86_REG_R9),
    result=UC_X86_REG_RAX,
    clobbered_rip=UC_X86_REG_RCX,
    clobbered_flags=UC_X86_REG_R11,
)

# `int 0x80` from a 64-bit process: the i386 convention, arguments truncated to 32 bits.
I386 = SyscallAbi(
    number=UC_X86_REG_RAX,
    args=(UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI, UC_X86_REG_RDI,
          UC_X86_REG_RBP),
    result=UC_X86_REG_RAX,
    clobbered_rip=None,
    clobbered_flags=None,
)


def syscall_number(rax: int) -> int:
    """The syscall number Linux reads from RAX, in either ABI: the low 32 bits, sign-extended
    (entry_64.S passes `movslq %eax`; do_int80_syscall_32 casts orig_ax to int). So
    0x100000000 is `read` (0), and -1 is a number no table has (-ENOSYS)."""
    low = rax & 0xFFFFFFFF
    return low - (1 << 32) if low & 0x80000000 else low
