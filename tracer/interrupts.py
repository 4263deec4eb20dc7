"""What an x86 interrupt means for a Linux user process: an `int 0x80` syscall, or the
signal that ends it and the address of the instruction to blame; and likewise for the faults
the native hooks raise themselves before an instruction runs (NativeFault). Shared by the
recorder and the replay engine, so both end a run at the same place."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from unicorn import (
    UC_MEM_FETCH_PROT, UC_MEM_FETCH_UNMAPPED, UC_MEM_READ_PROT, UC_MEM_READ_UNMAPPED,
    UC_MEM_WRITE_PROT, UC_MEM_WRITE_UNMAPPED, Uc,
)

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
        shown = text if text.startswith("the bytes") else f"`{text}`"
        return NativeFaultSignal("SIGILL", f"invalid opcode: {shown}")
    if fault == NativeFault.DEBUG_TRAP:
        return NativeFaultSignal("SIGTRAP", "debug trap (int1)")
    where = f" {address:#x}" if address is not None else ""
    need = f"{align}-byte " if align else ""
    return NativeFaultSignal("SIGSEGV", f"general protection fault: `{text}` needs a "
                             f"{need}aligned memory operand; the address{where} is not")


def error_signal(message: str) -> NativeFaultSignal:
    """The signal for an instruction Unicorn's emu_start refused with a UcError (`message`)
    that no hook classified: an invalid opcode, or else a fault we name by the error."""
    if "INSN_INVALID" in message or "Invalid instruction" in message:
        return NativeFaultSignal("SIGILL", "invalid opcode")
    return NativeFaultSignal("SIGSEGV", message)


def is_canonical(address: int) -> bool:
    """True when bits 63..47 of a 64-bit address are all equal (48-bit virtual addresses)."""
    top = address >> 47
    return top == 0 or top == (1 << 17) - 1


# Unicorn (QEMU's soft TLB) keeps the low 52 bits of a virtual address: a fault hook gets
# 0xffffffd48912d for 0xfffffffffd48912d (canonical, kernel half) and 0x1000 for the
# non-canonical 0xf0000000001000.
_KEPT = (1 << 52) - 1
_STACK_OPS = ("push", "pop", "call", "ret", "enter", "leave", "iret")


@dataclass(frozen=True)
class DataFault:
    """Where a load or store faulted, as the CPU computed it (64 bits), and whether the
    reference went through the stack segment (RSP or RBP as base, push/pop/call/ret...)."""

    address: int
    via_stack: bool

    def non_canonical_signal(self) -> NativeFaultSignal | None:
        """#SS (Linux: SIGBUS) or #GP (SIGSEGV) when the address is not canonical. In
        64-bit mode a DS/ES/SS/CS override changes nothing; FS and GS do."""
        if is_canonical(self.address):
            return None
        if self.via_stack:
            return NativeFaultSignal("SIGBUS", f"stack-segment fault: the address "
                                     f"{self.address:#x} is not canonical")
        return NativeFaultSignal("SIGSEGV", f"general protection fault: the address "
                                 f"{self.address:#x} is not canonical")


def data_fault(code: bytes, rip: int, register, reported: int) -> DataFault:
    """The full address of a faulting load or store, from the instruction's operands.

    Args:
        code: the bytes at `rip` (the faulting instruction first).
        rip: its address.
        register: reads a register by capstone name ("rsp", "fs_base", ...).
        reported: the address Unicorn's hook reported (its low 52 bits).
    """
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs
    from capstone.x86 import X86_OP_MEM

    cs = Cs(CS_ARCH_X86, CS_MODE_64)
    cs.detail = True
    insn = next(cs.disasm(code, rip, 1), None)
    if insn is None:
        return DataFault(reported, False)
    for op in insn.operands:
        if op.type != X86_OP_MEM:
            continue
        m = op.mem
        base = insn.reg_name(m.base) if m.base else None
        segment = insn.reg_name(m.segment) if m.segment else None
        ea = m.disp
        if base in ("rip", "eip"):
            ea += insn.address + insn.size
        elif base:
            ea += register(base)
        if m.index:
            ea += register(insn.reg_name(m.index)) * m.scale
        ea &= 0xFFFF_FFFF if 0x67 in bytes(insn.prefix) else 0xFFFF_FFFF_FFFF_FFFF
        if segment in ("fs", "gs"):
            ea += register(f"{segment}_base")
        delta = (reported - ea) & _KEPT
        if delta < 64:  # this operand (a 16-byte access faults in its second half too)
            stack = base in ("rsp", "esp", "rbp", "ebp") and segment not in ("fs", "gs")
            return DataFault((ea + delta) & 0xFFFF_FFFF_FFFF_FFFF, stack)
    if insn.mnemonic.split()[-1].startswith(_STACK_OPS):
        rsp = register("rsp")
        delta = (reported - rsp + 64) & _KEPT
        if delta < 128:
            return DataFault((rsp + delta - 64) & 0xFFFF_FFFF_FFFF_FFFF, True)
    return DataFault(reported, False)


def register_reader(uc: Uc):
    """A `register(name)` for `data_fault`: reads a register of the engine by its name."""
    from unicorn import x86_const

    def read(name: str) -> int:
        return uc.reg_read(getattr(x86_const, f"UC_X86_REG_{name.upper()}"))

    return read


def full_rip(uc: Uc, reported: int) -> int:
    """The full address of a faulting instruction fetch: RIP holds all 64 bits where the
    hook got the low 52."""
    from unicorn.x86_const import UC_X86_REG_RIP

    rip = uc.reg_read(UC_X86_REG_RIP)
    return rip if (rip - reported) & _KEPT == 0 else reported


# Unicorn's invalid-memory access types: (what the access was, was the page unmapped).
_INVALID_ACCESS = {
    UC_MEM_READ_UNMAPPED: ("read", True), UC_MEM_WRITE_UNMAPPED: ("write", True),
    UC_MEM_FETCH_UNMAPPED: ("execute", True), UC_MEM_READ_PROT: ("read", False),
    UC_MEM_WRITE_PROT: ("write", False), UC_MEM_FETCH_PROT: ("execute", False),
}


@dataclass(frozen=True)
class MemoryFault:
    """A load, store or fetch Unicorn's invalid-memory hook reported, as the CPU saw it."""

    access: str       # read, write, execute ("access" for a type Unicorn may add)
    unmapped: bool    # no page there (else the page forbids the access)
    rip: int          # the faulting instruction; for a fetch, the address fetched
    address: int      # all 64 bits of the address
    non_canonical: NativeFaultSignal | None  # #GP/#SS for a non-canonical data address

    @property
    def fetch(self) -> bool:
        return self.access == "execute"


def memory_fault(uc: Uc, access: int, reported: int) -> MemoryFault:
    """Classifies an invalid access in Unicorn's UC_HOOK_MEM_INVALID hook (`access` its
    type, `reported` the address it got)."""
    kind, unmapped = _INVALID_ACCESS.get(access, ("access", False))
    if kind == "execute":
        address = full_rip(uc, reported)
        from unicorn.x86_const import UC_X86_REG_RIP

        rip = uc.reg_read(UC_X86_REG_RIP)
        # An instruction whose last bytes lie in the page that faults: Linux reports RIP at
        # its start and the address of the fetch that failed (tracer/fetch_ahead.py).
        start = rip if rip < address < rip + 16 else address
        return MemoryFault(kind, unmapped, start, address, None)
    from unicorn.x86_const import UC_X86_REG_RIP

    rip = uc.reg_read(UC_X86_REG_RIP)
    where = data_fault(code_at(uc, rip), rip, register_reader(uc), reported)
    return MemoryFault(kind, unmapped, rip, where.address, where.non_canonical_signal())


def code_at(uc: Uc, rip: int) -> bytes:
    """Up to 16 bytes at `rip` (fewer where the mapping ends)."""
    from unicorn import UcError

    for size in (16, 8, 4, 2, 1):
        try:
            return bytes(uc.mem_read(rip, size))
        except UcError:
            continue
    return b""
