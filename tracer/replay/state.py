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
    return state_of(machine_at(files, step, keyframes, inputs), step)


def state_of(machine, step: int) -> MachineState:
    """The `MachineState` of a replay engine that holds the state before `step`."""
    regs = machine.registers()
    try:
        code = bytes(machine.uc.mem_read(regs["rip"], 16))
    except Exception:  # RIP in unmapped memory (a fetch fault is the next event)
        code = b""
    return MachineState(step=step, registers=regs, flags=decode_flags(regs["eflags"]),
                        instruction=disassemble(code, regs["rip"]) if code else None,
                        ended=machine.ending is not None)


class SteppingReplay:
    """Machine states of one trace for a client that moves step by step (the viewer, the
    explorer): the replay engine is kept between questions, so the next step replays one
    instruction instead of a keyframe interval, and the last few answers are kept (a step
    change asks for the step and the one before it). Thread-safe: Unicorn is not
    re-entrant, so the engine is used under a lock."""

    KEEP = 8

    def __init__(self, files: TraceFiles, keyframes: Keyframes | None, inputs: RecordedInputs):
        import threading

        self._files, self._keyframes, self._inputs = files, keyframes, inputs
        self._keyframe_steps = [] if keyframes is None else keyframes.steps()
        self._lock = threading.Lock()
        self._machine = None
        self._machine_step = -1
        self._recent: dict[int, MachineState] = {}

    def state(self, step: int) -> MachineState:
        """The state before instruction `step` executes.

        Raises:
            ReplayError: the step is outside the run.
        """
        import bisect

        with self._lock:
            if step in self._recent:
                return self._recent[step]
            kf = self._keyframe_steps
            nearest = kf[bisect.bisect_right(kf, step) - 1] if kf else 0
            m = self._machine
            if m is None or step < self._machine_step or nearest > self._machine_step:
                m = machine_at(self._files, step, self._keyframes, self._inputs)
            else:
                m.run(step - self._machine_step)
            self._machine, self._machine_step = m, step
            st = self._recent[step] = state_of(m, step)
            while len(self._recent) > self.KEEP:
                del self._recent[next(iter(self._recent))]
            return st
