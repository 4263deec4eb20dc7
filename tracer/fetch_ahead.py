"""Code that runs into an unmapped page, where Unicorn and the CPU part ways.

Unicorn translates a whole block before it runs any of it. When an instruction after the
block's first cannot be fetched (the code runs off the end of its mapping), the fetch fault
is raised before any instruction of the block ran; the CPU runs them and faults at the
instruction that crosses into the unmapped page. Where a block ends depends on the hooks
installed (a code hook makes blocks shorter), so without this the recorder's modes and the
replay would also disagree with each other.

`crossing_instruction` tells the case apart in the fetch-fault hook; the caller then runs
again with Unicorn's `until` at that instruction (translation stops there), and resumes from
it: the fault then comes from the instruction itself, where Linux reports it."""

from __future__ import annotations

from unicorn import Uc, UcError
from unicorn.x86_const import UC_X86_REG_RIP

NO_END = 0xFFFF_FFFF_FFFF_FFFF  # emu_start's `until` when nothing should stop the run
_decoder = None


def crossing_instruction(uc: Uc, fault_address: int) -> int | None:
    """The address of the first instruction from RIP that does not lie wholly below
    `fault_address` (the fetch that failed), when it is not RIP's own; else None (RIP's
    instruction is the one that faults)."""
    global _decoder
    rip = uc.reg_read(UC_X86_REG_RIP)
    if not rip < fault_address <= rip + 0x10000:
        return None
    try:
        code = bytes(uc.mem_read(rip, fault_address - rip))
    except UcError:
        return None
    if _decoder is None:
        from capstone import CS_ARCH_X86, CS_MODE_64, Cs

        _decoder = Cs(CS_ARCH_X86, CS_MODE_64)
    end = rip
    for address, size, _mnemonic, _ops in _decoder.disasm_lite(code, rip):
        end = address + size
    return end if end > rip else None
