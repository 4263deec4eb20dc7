"""Classifies instructions once per address (capstone): which of an instruction's memory
accesses are implicit (push/pop/call/ret/leave/enter/string ops) and why it moved RSP."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from capstone import CS_ARCH_X86, CS_MODE_64, Cs

from tracer.format.schema import RSP_CAUSES, SOURCES

EXPLICIT, IMPLICIT, KERNEL = (SOURCES.index(s) for s in ("explicit", "implicit", "kernel"))

_STRING_OPS = ("movs", "stos", "lods", "scas", "cmps", "ins", "outs")
_ARITH = {"add", "sub", "and", "or", "xor", "inc", "dec", "neg", "not", "adc", "sbb",
          "shl", "shr", "sar", "sal", "rol", "ror", "imul", "mul", "div", "idiv"}


@dataclass(frozen=True)
class InstructionClass:
    read_source: int
    write_source: int
    rsp_cause: int


def classify(mnemonic: str, op_str: str) -> InstructionClass:
    """Classifies one instruction by its capstone mnemonic (with any rep prefix)."""
    words = mnemonic.split()
    base = words[-1] if words else ""
    if base.startswith(_STRING_OPS) or base in ("xlatb", "xlat"):
        return InstructionClass(IMPLICIT, IMPLICIT, RSP_CAUSES.index("other"))
    if base.startswith("push"):
        return InstructionClass(EXPLICIT, IMPLICIT, RSP_CAUSES.index("push"))
    if base.startswith("pop"):
        return InstructionClass(IMPLICIT, EXPLICIT, RSP_CAUSES.index("pop"))
    if base == "call":
        return InstructionClass(EXPLICIT, IMPLICIT, RSP_CAUSES.index("call"))
    if base.startswith("ret") or base.startswith("iret"):
        return InstructionClass(IMPLICIT, IMPLICIT, RSP_CAUSES.index("ret"))
    if base == "leave":
        return InstructionClass(IMPLICIT, IMPLICIT, RSP_CAUSES.index("leave"))
    if base == "enter":
        return InstructionClass(IMPLICIT, IMPLICIT, RSP_CAUSES.index("enter"))
    if base in _ARITH:
        return InstructionClass(EXPLICIT, EXPLICIT, RSP_CAUSES.index("arith"))
    if base in ("mov", "lea", "xchg", "cmovz", "movabs") or base.startswith("cmov"):
        return InstructionClass(EXPLICIT, EXPLICIT, RSP_CAUSES.index("mov"))
    return InstructionClass(EXPLICIT, EXPLICIT, RSP_CAUSES.index("other"))


class InstructionTable:
    """Classification per RIP, filled from instruction bytes as new addresses appear."""

    def __init__(self) -> None:
        self._cs = Cs(CS_ARCH_X86, CS_MODE_64)
        self._by_rip: dict[int, InstructionClass] = {}
        self._unknown = InstructionClass(EXPLICIT, EXPLICIT, RSP_CAUSES.index("other"))

    def learn(self, rip: int, code: bytes) -> None:
        if rip in self._by_rip:
            return
        insn = next(self._cs.disasm(code, rip, 1), None)
        self._by_rip[rip] = (classify(insn.mnemonic, insn.op_str) if insn is not None
                             else self._unknown)

    def get(self, rip: int) -> InstructionClass:
        return self._by_rip.get(int(rip), self._unknown)

    def sources(self, rips: np.ndarray, is_write: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        """Source index (explicit/implicit/kernel) for each access, vectorised per unique RIP."""
        unique, inverse = np.unique(rips, return_inverse=True)
        reads = np.fromiter((self.get(r).read_source for r in unique), np.int8, len(unique))
        writes = np.fromiter((self.get(r).write_source for r in unique), np.int8, len(unique))
        out = np.where(is_write, writes[inverse], reads[inverse]).astype(np.int8)
        out[kernel] = KERNEL
        return out

    def rsp_causes(self, rips: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(rips, return_inverse=True)
        causes = np.fromiter((self.get(r).rsp_cause for r in unique), np.int8, len(unique))
        return causes[inverse].astype(np.int8)
