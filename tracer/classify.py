"""Classifies instructions once per address (capstone): which of an instruction's memory
accesses are implicit (push/pop/call/ret/leave/enter/string ops) and why it moved RSP."""

from __future__ import annotations

from dataclasses import dataclass

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


_RSP_REGS = {"rsp", "esp", "sp", "spl"}
_STACK_CAUSES = {RSP_CAUSES.index(c) for c in ("push", "pop", "call", "ret", "leave", "enter")}
MAY_CHANGE_RSP = 1 << 8
PRIVILEGED = 1 << 9
# Instructions that raise #GP in user mode (CPL 3, IOPL 0) on Linux. Unicorn runs at CPL 0
# and would execute them, so the recorder stops before them and reports SIGSEGV.
_PRIVILEGED = {"hlt", "cli", "sti", "in", "out", "insb", "insw", "insd", "outsb", "outsw",
               "outsd", "lgdt", "lidt", "lldt", "ltr", "invlpg", "invd", "wbinvd", "rdmsr",
               "wrmsr", "clts", "lmsw", "swapgs", "sysret", "sysexit", "vmcall", "invpcid",
               "monitor", "mwait", "rdpmc"}


def flags_of(c: InstructionClass, may_change_rsp: bool) -> int:
    """Packs a class into the native recorder's flag word (layout in recorder.c)."""
    return (c.read_source | c.write_source << 2 | c.rsp_cause << 4
            | (MAY_CHANGE_RSP if may_change_rsp else 0))


class InstructionClassifier:
    """Classifies each new instruction address once, for the native recorder."""

    def __init__(self) -> None:
        self._cs = Cs(CS_ARCH_X86, CS_MODE_64)
        self._cs.detail = True

    def flags(self, rip: int, code: bytes) -> int:
        insn = next(self._cs.disasm(code, rip, 1), None)
        if insn is None:
            # Undecodable: the CPU will raise #UD; check RSP after it to be safe.
            return flags_of(InstructionClass(EXPLICIT, EXPLICIT, RSP_CAUSES.index("other")),
                            True)
        _, written = insn.regs_access()
        cls = classify(insn.mnemonic, insn.op_str)
        # capstone's regs_access() does not list RSP for enter, iretq, retf or push/pop of a
        # segment register: every stack instruction is flagged by its class as well.
        writes_rsp = (any(insn.reg_name(r) in _RSP_REGS for r in written)
                      or cls.rsp_cause in _STACK_CAUSES)
        base = insn.mnemonic.split()[-1]
        privileged = base in _PRIVILEGED or (base == "mov" and ("cr" in insn.op_str or
                                                                "dr" in insn.op_str.split(",")[0]))
        return (flags_of(cls, writes_rsp)
                | (PRIVILEGED if privileged else 0))
