"""What an x86 interrupt means for a Linux user process: an `int 0x80` syscall, or the
signal that ends it and the address of the instruction to blame. Shared by the recorder
and the replay engine, so both end a run at the same place."""

from __future__ import annotations

from dataclasses import dataclass

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
