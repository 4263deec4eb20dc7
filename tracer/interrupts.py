"""What an x86 interrupt means for a Linux user process: an `int 0x80` syscall, or the
signal that ends it and the address of the instruction to blame; and likewise for the faults
the native hooks raise themselves before an instruction runs (NativeFault). Shared by the
recorder and the replay engine, so both end a run at the same place."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from unicorn import Uc

_EXCEPTIONS = {
    0: ("SIGFPE", "divide error"),
    1: ("SIGTRAP", "debug trap"),
    4: ("SIGSEGV", "overflow trap"),
    5: ("SIGSEGV", "bound range exceeded"),
    6: ("SIGILL", "invalid opcode"),
    13: ("SIGSEGV", "general protection fault"),
    16: ("SIGFPE", "x87 floating-point error"),
    17: ("SIGBUS", "alignment check"),
    19: ("SIGFPE", "SIMD floating-point exception"),
}


@dataclass(frozen=True)
class Interrupt:
    """`i386_syscall` is true for `int 0x80`; otherwise the run ends with `signal`."""

    i386_syscall: bool
    rip: int          # the address of the instruction that raised it
    signal: str | None
    cause: str | None


def classify_interrupt(uc: Uc, intno: int) -> Interrupt:
    """Reads RIP (and the bytes before it) in Unicorn's interrupt hook and classifies.

    A software `int n` (CD nn) leaves RIP after itself; CPU exceptions point at the faulting
    instruction. Linux lets user code use only int3, into and int 0x80; any other `int n`
    hits a gate of privilege 0 and raises #GP (SIGSEGV).
    """
    from unicorn.x86_const import UC_X86_REG_RIP

    rip = uc.reg_read(UC_X86_REG_RIP)
    software = rip >= 2 and bytes(uc.mem_read(rip - 2, 2)) == bytes([0xCD, intno])
    if software and intno == 0x80:
        return Interrupt(True, rip - 2, None, None)
    if intno == 3:
        return Interrupt(False, rip - (2 if software else 1), "SIGTRAP", "breakpoint (int3)")
    if software and intno != 4:
        return Interrupt(False, rip - 2, "SIGSEGV",
                         f"general protection fault: int {intno:#x} is not allowed in user mode")
    signal, cause = _EXCEPTIONS.get(intno, ("SIGSEGV", f"CPU exception {intno}"))
    return Interrupt(False, rip, signal, cause)


class NativeFault(IntEnum):
    """Faults the native hooks raise before the instruction runs, where Unicorn would run
    it (recorder.c FAULT_*; tests/test_native_recorder.py checks the numbers)."""

    PRIVILEGED = 1    # #GP at CPL 3: hlt, cli, in/out, mov to CR/DR, ...
    INVALID = 2       # #UD: undefined encodings Unicorn accepts, sysenter
    DEBUG_TRAP = 3    # int1 (icebp)
    MISALIGNED = 4    # #GP: an SSE operand that must be aligned is not


@dataclass(frozen=True)
class NativeFaultSignal:
    """The signal Linux delivers for a NativeFault, and why, in words."""

    signal: str
    cause: str


def native_fault_signal(fault: NativeFault, text: str, address: int | None = None,
                        align: int | None = None) -> NativeFaultSignal:
    """The signal and cause of `fault` raised by the instruction `text` (its disassembly).

    Args:
        fault: what the hooks found.
        text: the instruction, e.g. "movaps xmm0, xmmword ptr [rax]".
        address: the operand's address, for MISALIGNED.
        align: the alignment the operand needs, for MISALIGNED.
    """
    if fault == NativeFault.PRIVILEGED:
        return NativeFaultSignal("SIGSEGV", f"general protection fault: `{text}` is "
                                 "privileged (not allowed in user mode)")
    if fault == NativeFault.INVALID:
        if text.startswith("sysenter"):
            return NativeFaultSignal("SIGILL", "invalid opcode: `sysenter` does not exist in "
                                     "64-bit mode (on AMD CPUs; use `syscall`)")
        return NativeFaultSignal("SIGILL", f"invalid opcode: {text}")  # no instruction
    if fault == NativeFault.DEBUG_TRAP:
        return NativeFaultSignal("SIGTRAP", "debug trap (int1)")
    where = f" {address:#x}" if address is not None else ""
    need = f"{align}-byte " if align else ""
    return NativeFaultSignal("SIGSEGV", f"general protection fault: `{text}` needs a "
                             f"{need}aligned memory operand; the address{where} is not")
