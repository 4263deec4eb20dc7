"""Classifies instructions once per address (capstone): which of an instruction's memory
accesses are implicit (push/pop/call/ret/leave/enter/string ops), why it moved RSP, and
where Linux on a real CPU ends the process although Unicorn would run on (privileged and
undefined instructions, int1, SSE operands that must be aligned)."""

from __future__ import annotations

from dataclasses import dataclass

from capstone import CS_AC_WRITE, CS_ARCH_X86, CS_MODE_64, Cs
from capstone.x86 import X86_OP_IMM, X86_OP_MEM, X86_OP_REG

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
INVALID = 1 << 10       # #UD on the CPU (SIGILL) where Unicorn would run it
DEBUG_TRAP = 1 << 11    # int1 (icebp): SIGTRAP
ALIGNED = 1 << 12       # its memory operand must be aligned (see `aligned_operand`)
# The RSP change is known from the instruction alone: bits 16-23 hold it as a signed byte,
# and the recorder adds it instead of reading RSP (recorder.c F_RSP_DELTA).
RSP_DELTA = 1 << 15
# What the block-mode recorder may predict about an instruction's memory accesses instead of
# reading RIP in each memory hook (recorder.c `predict`): it makes none, or exactly one of a
# known size (bits 26-27: log2 of the bytes). Anything else, or any doubt, is neither.
NO_MEMORY = 1 << 24
ONE_ACCESS = 1 << 25
# Mnemonics (or their starts) that access memory with no memory operand.
_IMPLICIT_ACCESS = ("push", "pop", "call", "ret", "iret", "leave", "enter", "lcall", "ljmp",
                    "lret", "int", "into", "bound", "xlat", "syscall", "sysenter", "sysexit",
                    "sysret", "ud", "monitor", "mwait", "umonitor", "clzero", "movdir",
                    "enqcmd", "maskmov", "vmaskmov", *_STRING_OPS)
# Instructions that read their one memory operand once and write no memory.
_READS_ONE = {"mov", "movzx", "movsx", "movsxd", "cmp", "test", "add", "sub", "and", "or",
              "xor", "adc", "sbb", "imul"}
# Instructions that write their one memory operand once and read no memory.
_WRITES_ONE = {"mov"}
# Instructions that name no memory operand but always make one 8-byte stack access.
_STACK_ONE = {"push", "pop", "call", "ret", "leave"}


def access_flags(insn) -> int:
    """NO_MEMORY, or ONE_ACCESS with the size, or 0 (the recorder reads RIP)."""
    base = insn.mnemonic
    if " " in base or bytes(insn.prefix) != b"\0\0\0\0":
        return 0  # a prefix (rep, lock, segment, operand or address size): no prediction
    ops = insn.operands
    memory = [op for op in ops if op.type == X86_OP_MEM]
    if not memory:
        if base.startswith(_IMPLICIT_ACCESS):
            if base in _STACK_ONE and _plain_stack_operands(insn):
                return ONE_ACCESS | _SIZE_BITS[8]
            return 0
        return NO_MEMORY
    if len(memory) != 1 or memory[0].size not in _SIZE_BITS:
        return 0
    if base in ("lea", "nop"):
        return NO_MEMORY  # an address, never read
    first = ops[0]
    if (first.type == X86_OP_REG and base in _READS_ONE) or (
            base in ("cmp", "test") and len(ops) == 2):
        return ONE_ACCESS | _SIZE_BITS[memory[0].size]
    if first.type == X86_OP_MEM and base in _WRITES_ONE and len(ops) == 2:
        return ONE_ACCESS | _SIZE_BITS[memory[0].size]
    return 0


_SIZE_BITS = {1: 0 << 26, 2: 1 << 26, 4: 2 << 26, 8: 3 << 26}


def _plain_stack_operands(insn) -> bool:
    """push/pop of a 64-bit general register or an immediate, a near call to an immediate
    or a register, ret (with or without an immediate), leave: one 8-byte stack access."""
    ops = insn.operands
    if insn.mnemonic in ("leave", "ret"):
        return all(op.type == X86_OP_IMM for op in ops)
    if len(ops) != 1:
        return False
    op = ops[0]
    if op.type == X86_OP_IMM:
        return insn.mnemonic in ("push", "call")
    return (op.type == X86_OP_REG and op.size == 8
            and insn.reg_name(op.reg) not in ("fs", "gs", "cs", "ds", "es", "ss"))


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


# Legacy-SSE instructions whose 16-byte memory operand may be unaligned (Intel SDM vol. 2,
# "exceptions type 4" and its exceptions); every other one raises #GP when it is not
# 16-byte aligned, arithmetic included (`addps xmm0, [mem]`).
_UNALIGNED_OK = {"movups", "movupd", "movdqu", "lddqu", "pcmpestri", "pcmpestrm", "pcmpistri",
                 "pcmpistrm"}
# VEX-encoded instructions that still require alignment (to their operand size; "exceptions
# type 1"); VEX arithmetic does not.
_VEX_ALIGNED = {"vmovaps", "vmovapd", "vmovdqa", "vmovntps", "vmovntpd", "vmovntdq",
                "vmovntdqa"}
_PREFIXES = {0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65}


@dataclass(frozen=True)
class AlignedOperand:
    """A memory operand that must be `align`-byte aligned, as register names (None when
    absent): address = segment base + (disp + base + index * scale), cut to 32 bits with
    an address-size prefix. A RIP-relative operand is folded into `disp`."""

    align: int
    base: str | None
    index: str | None
    scale: int
    disp: int
    segment: str | None   # "fs" or "gs"
    addr32: bool
    write: bool


# Instructions a `lock` prefix is allowed on, and then only with a memory destination;
# anything else raises #UD (Intel SDM vol. 2, LOCK). capstone decodes some misuses.
_LOCKABLE = {"add", "adc", "and", "btc", "btr", "bts", "cmpxchg", "cmpxchg8b", "cmpxchg16b",
             "dec", "inc", "neg", "not", "or", "sbb", "sub", "xor", "xadd", "xchg"}
# Control registers that exist: moving to or from them at CPL 3 is #GP (SIGSEGV); any other
# CRn is #UD (SIGILL) first. Every debug register move is #GP.
_CONTROL_REGISTERS = {"cr0", "cr2", "cr3", "cr4", "cr8"}
# #UD on the CPUs vmtrace models (checked on an AMD EPYC): sysenter in 64-bit mode, and the
# TSX instructions (absent on AMD, disabled on most Intel CPUs). Unicorn runs them.
_UNAVAILABLE = {"sysenter", "xbegin", "xend", "xabort", "xtest"}


def _opcode_start(code: bytes) -> int:
    i = 0
    while i < len(code) and (code[i] in _PREFIXES or 0x40 <= code[i] <= 0x4F):
        i += 1
    return i


def _vex_encoded(code: bytes) -> bool:
    i = _opcode_start(code)
    return i < len(code) and code[i] in (0xC4, 0xC5, 0x62)  # VEX2, VEX3, EVEX in 64-bit mode


def _undecodable_is_invalid(code: bytes) -> bool:
    """For bytes capstone cannot decode: True where the CPU raises #UD but Unicorn may run
    them (a `lock` prefix, a VEX encoding, 8F with a reg field other than 0: AMD's XOP
    prefix, which current CPUs lack). capstone misses a few undocumented forms the CPU runs
    (the x87 aliases such as `df c9`), so other bytes are left to Unicorn, which raises its
    own invalid-instruction error where it agrees."""
    i = _opcode_start(code)
    return 0xF0 in code[:i] or _vex_encoded(code) or (i < len(code) and code[i] == 0x8F)


def aligned_operand(insn) -> AlignedOperand | None:
    """The memory operand of a capstone instruction (detail on) that the CPU checks for
    alignment, or None. Unicorn (QEMU 5) never checks; Linux delivers SIGSEGV."""
    mems = [op for op in insn.operands if op.type == X86_OP_MEM]
    if len(mems) != 1:
        return None
    mem = mems[0]
    if _vex_encoded(bytes(insn.bytes)):
        if insn.mnemonic not in _VEX_ALIGNED:
            return None
    elif (mem.size != 16 or insn.mnemonic in _UNALIGNED_OK
          or not any(op.type == X86_OP_REG and insn.reg_name(op.reg).startswith("xmm")
                     for op in insn.operands)):
        return None
    m = mem.mem
    base = insn.reg_name(m.base) if m.base else None
    index = insn.reg_name(m.index) if m.index else None
    segment = insn.reg_name(m.segment) if m.segment else None
    disp = m.disp
    addr32 = 0x67 in bytes(insn.prefix)
    if base in ("rip", "eip"):
        disp, base = insn.address + insn.size + disp, None
    return AlignedOperand(
        align=mem.size, base=base, index=index, scale=m.scale if index else 0,
        disp=disp & 0xFFFF_FFFF_FFFF_FFFF, segment=segment if segment in ("fs", "gs") else None,
        addr32=addr32, write=bool(mem.access & CS_AC_WRITE))


class InstructionClassifier:
    """Classifies each new instruction address once, for the native recorder."""

    def __init__(self) -> None:
        self._cs = Cs(CS_ARCH_X86, CS_MODE_64)
        self._cs.detail = True

    def classify(self, rip: int, code: bytes) -> tuple[int, AlignedOperand | None]:
        """The flag word of the instruction at the start of `code`, and its alignment-checked
        memory operand when the flags include ALIGNED."""
        insn = next(self._cs.disasm(code, rip, 1), None)
        if insn is None:
            if _undecodable_is_invalid(code):
                return INVALID, None
            # Undecodable here, maybe not for the CPU: Unicorn decides; check RSP after it.
            return flags_of(InstructionClass(EXPLICIT, EXPLICIT, RSP_CAUSES.index("other")),
                            True), None
        operand = aligned_operand(insn)
        return self._flags(insn) | (ALIGNED if operand else 0), operand

    def flags(self, rip: int, code: bytes) -> int:
        """The flag word alone (see `classify`)."""
        return self.classify(rip, code)[0]

    def _flags(self, insn) -> int:
        _, written = insn.regs_access()
        cls = classify(insn.mnemonic, insn.op_str)
        # capstone's regs_access() does not list RSP for enter, iretq, retf or push/pop of a
        # segment register: every stack instruction is flagged by its class as well.
        writes_rsp = (any(insn.reg_name(r) in _RSP_REGS for r in written)
                      or cls.rsp_cause in _STACK_CAUSES)
        base = insn.mnemonic.split()[-1]
        registers = {insn.reg_name(op.reg) for op in insn.operands if op.type == X86_OP_REG}
        special = {r for r in registers if r[:2] in ("cr", "dr") and r[2:].isdigit()}
        privileged = base in _PRIVILEGED or (base == "mov" and bool(special))
        # #UD (SIGILL): _UNAVAILABLE, a CRn that does not exist, a misplaced `lock`; int1
        # (icebp, F1) is a debug trap that Linux turns into SIGTRAP.
        no_such_cr = any(r.startswith("cr") for r in special - _CONTROL_REGISTERS)
        locked_wrong = 0xF0 in bytes(insn.prefix) and not (
            base in _LOCKABLE and insn.operands and insn.operands[0].type == X86_OP_MEM)
        invalid = base in _UNAVAILABLE or (base == "mov" and no_such_cr) or locked_wrong
        return (flags_of(cls, writes_rsp)
                | (INVALID if invalid else PRIVILEGED if privileged else 0)
                | (DEBUG_TRAP if base == "int1" else 0)
                | rsp_delta_flags(insn, registers)
                | access_flags(insn))


def rsp_delta_flags(insn, registers: set[str]) -> int:
    """RSP_DELTA and the change, for the instructions whose change to RSP is fixed: near
    push/pop of a general register, memory or immediate (8 bytes in 64-bit mode), call
    (-8), ret (+8, or +8+n for `ret n`), and `add rsp, imm` / `sub rsp, imm` (a frame's
    allocation). 0 for any other, including an operand-size prefix, push/pop of RSP or a
    segment register, leave and enter: the recorder reads RSP after those."""
    mnemonic = insn.mnemonic
    if mnemonic in ("add", "sub"):
        ops = insn.operands
        if (len(ops) != 2 or ops[0].type != X86_OP_REG or insn.reg_name(ops[0].reg) != "rsp"
                or ops[1].type != X86_OP_IMM):
            return 0
        delta = ops[1].imm if mnemonic == "add" else -ops[1].imm
        if not -128 <= delta <= 127:
            return 0
        return RSP_DELTA | (delta & 0xFF) << 16
    if mnemonic not in ("push", "pop", "call", "ret") or 0x66 in bytes(insn.prefix):
        return 0
    if registers & (_RSP_REGS | {"cs", "ds", "es", "ss", "fs", "gs"}) and mnemonic != "call":
        return 0
    if mnemonic == "ret":
        if not insn.operands:
            delta = 8
        elif len(insn.operands) == 1 and insn.operands[0].type == X86_OP_IMM:
            delta = 8 + insn.operands[0].imm
        else:
            return 0
    else:
        delta = -8 if mnemonic in ("push", "call") else 8
    if not -128 <= delta <= 127:
        return 0
    return RSP_DELTA | (delta & 0xFF) << 16
