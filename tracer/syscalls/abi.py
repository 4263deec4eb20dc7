"""The x86-64 Linux syscall ABIs as data: which registers carry what, and which number table
names the calls. Shared by the recorder and the replay engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from unicorn.x86_const import (
    UC_X86_REG_EFLAGS, UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
    UC_X86_REG_RAX, UC_X86_REG_RBP, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDI,
    UC_X86_REG_RDX, UC_X86_REG_RSI,
)

from tracer.syscalls.numbers import SYSCALL_NAMES, SYSCALL_NAMES_I386

U64 = (1 << 64) - 1


@dataclass(frozen=True)
class SyscallAbi:
    name: str                  # as syscalls.arrows' `abi` column: x86_64 or i386
    number: int
    args: tuple[int, ...]
    arg_mask: int              # the bits of each argument the kernel reads
    result: int
    # `syscall` itself loads RCX with the return address and R11 with RFLAGS.
    clobbered_rip: int | None
    clobbered_flags: int | None
    names: Mapping[int, str]   # the number table (tracer/syscalls/numbers.py)

    def read_call(self, uc) -> tuple[int, tuple[int, ...]]:
        """The syscall number and arguments in a Unicorn engine's registers, as Linux reads
        them."""
        return (syscall_number(uc.reg_read(self.number)),
                tuple(uc.reg_read(r) & self.arg_mask for r in self.args))

    def write_result(self, uc, result: int, rip: int) -> None:
        """Returns `result` from the syscall instruction at `rip`, as the CPU and the kernel
        leave the registers."""
        uc.reg_write(self.result, result & U64)
        if self.clobbered_rip is not None:
            uc.reg_write(self.clobbered_rip, rip + 2)
        if self.clobbered_flags is not None:
            uc.reg_write(self.clobbered_flags, uc.reg_read(UC_X86_REG_EFLAGS))

    def name_of(self, nr: int) -> str:
        """The syscall's name, or `syscall_NR` for a number the table lacks."""
        return self.names.get(nr, f"syscall_{nr}")


X86_64 = SyscallAbi(
    name="x86_64",
    number=UC_X86_REG_RAX,
    args=(UC_X86_REG_RDI, UC_X86_REG_RSI, UC_X86_REG_RDX, UC_X86_REG_R10, UC_X86_REG_R8,
          UC_X86_REG_R9),
    arg_mask=U64,
    result=UC_X86_REG_RAX,
    clobbered_rip=UC_X86_REG_RCX,
    clobbered_flags=UC_X86_REG_R11,
    names=SYSCALL_NAMES,
)

# `int 0x80` from a 64-bit process: the i386 convention, arguments truncated to 32 bits.
I386 = SyscallAbi(
    name="i386",
    number=UC_X86_REG_RAX,
    args=(UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI, UC_X86_REG_RDI,
          UC_X86_REG_RBP),
    arg_mask=0xFFFFFFFF,
    result=UC_X86_REG_RAX,
    clobbered_rip=None,
    clobbered_flags=None,
    names=SYSCALL_NAMES_I386,
)

ABIS = {abi.name: abi for abi in (X86_64, I386)}


def syscall_number(rax: int) -> int:
    """The syscall number Linux reads from RAX, in either ABI: the low 32 bits, sign-extended
    (entry_64.S passes `movslq %eax`; do_int80_syscall_32 casts orig_ax to int). So
    0x100000000 is `read` (0), and -1 is a number no table has (-ENOSYS)."""
    low = rax & 0xFFFFFFFF
    return low - (1 << 32) if low & 0x80000000 else low
