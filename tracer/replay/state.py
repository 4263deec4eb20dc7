"""The machine state at a step, as plain data: registers, decoded flags, the instruction at
RIP (capstone). Stateless: a function of (trace, step)."""

from __future__ import annotations

from dataclasses import dataclass

from capstone import CS_ARCH_X86, CS_MODE_64, Cs

from tracer.format import TraceFiles
from tracer.replay.inputs import RecordedInputs
from tracer.replay.keyframes import Keyframes, machine_at

# EFLAGS bits a user program sees (Intel SDM vol. 1, 3.4.3).
FLAG_BITS = {"CF": 0, "PF": 2, "AF": 4, "ZF": 6, "SF": 7, "TF": 8, "IF": 9, "DF": 10,
             "OF": 11}


@dataclass(frozen=True)
class Instruction:
    """One decoded instruction."""

    address: int
    size: int
    bytes: bytes
    mnemonic: str
    op_str: str

    @property
    def text(self) -> str:
        """`mnemonic operands`, as capstone prints them."""
        return f"{self.mnemonic} {self.op_str}".strip()


@dataclass(frozen=True)
class MachineState:
    """Registers and the next instruction before instruction `step` executes."""

    step: int
    registers: dict[str, int]
    flags: dict[str, bool]
    instruction: Instruction | None
    ended: bool   # the run had already ended before this step


def decode_flags(eflags: int) -> dict[str, bool]:
    """The user-visible EFLAGS bits by name (CF, PF, AF, ZF, SF, TF, IF, DF, OF)."""
    return {name: bool(eflags >> bit & 1) for name, bit in FLAG_BITS.items()}


def disassemble(code: bytes, address: int) -> Instruction | None:
    """The first instruction of `code` (capstone), or None if it does not decode."""
    cs = Cs(CS_ARCH_X86, CS_MODE_64)
    insn = next(cs.disasm(code, address, 1), None)
    if insn is None:
        return None
    return Instruction(insn.address, insn.size, bytes(insn.bytes), insn.mnemonic, insn.op_str)


def machine_state(files: TraceFiles, step: int, keyframes: Keyframes | None,
                  inputs: RecordedInputs | None = None) -> MachineState:
    """Registers and the next instruction before instruction `step` executes.

    Raises:
        ReplayError: the step is outside the run.
    """
    machine = machine_at(files, step, keyframes, inputs)
    regs = machine.registers()
    try:
        code = bytes(machine.uc.mem_read(regs["rip"], 16))
    except Exception:  # RIP in unmapped memory (a fetch fault is the next event)
        code = b""
    return MachineState(step=step, registers=regs, flags=decode_flags(regs["eflags"]),
                        instruction=disassemble(code, regs["rip"]) if code else None,
                        ended=machine.ending is not None)
