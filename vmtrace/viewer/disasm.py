"""The disassembly pane: instructions around RIP, operands named by symbols (`call fib`,
`[increment]`) rather than bare addresses."""

from __future__ import annotations

import re

from capstone import CS_ARCH_X86, CS_MODE_64, Cs
from capstone import x86 as cx

_MAX_INSN = 15
_LOOKBACK = 256      # bytes before RIP searched for the start of its function
_BRANCH_GROUPS = (cx.X86_GRP_CALL, cx.X86_GRP_JUMP)
_MEMORY_OPERAND = re.compile(r"\[[^\]]*\]")


def _disassembler() -> Cs:
    cs = Cs(CS_ARCH_X86, CS_MODE_64)
    cs.detail = True
    return cs


def symbolic_text(insn, symbols) -> str:
    """`mnemonic operands` with a direct branch target or a memory operand's absolute
    address (RIP-relative or absolute) replaced by its symbol when it has one."""
    op_str = insn.op_str
    if any(insn.group(g) for g in _BRANCH_GROUPS) and len(insn.operands) == 1 \
            and insn.operands[0].type == cx.X86_OP_IMM:
        name = symbols.symbolize(insn.operands[0].imm & (2**64 - 1))
        if name:
            op_str = name
    else:
        for op in insn.operands:
            if op.type != cx.X86_OP_MEM or op.mem.index != 0:
                continue
            if op.mem.base == cx.X86_REG_RIP:
                target = insn.address + insn.size + op.mem.disp
            elif op.mem.base == 0:
                target = op.mem.disp
            else:
                continue
            name = symbols.symbolize(target & (2**64 - 1))
            if name:
                op_str = _MEMORY_OPERAND.sub(f"[{name}]", op_str, count=1)
    return f"{insn.mnemonic} {op_str}".strip()


def _decode(cs: Cs, image, start: int, end: int) -> list:
    code = None
    while code is None and end > start:  # the image may end before `end`
        code = image.read(start, end - start)
        end -= 16 if code is None else 0
    return [] if code is None else list(cs.disasm(code, start))


def window(image, symbols, rip: int, before: int, after: int) -> list[dict]:
    """Up to `before` instructions before RIP, RIP's, and `after` more.

    Decoding starts at the symbol RIP is in (x86 cannot be decoded backwards); when that is
    far or decodes out of step with RIP, the window starts at RIP.
    """
    cs = _disassembler()
    label = symbols.symbolize(rip) or ""
    offset = int(label.split("+0x")[1], 16) if "+0x" in label else 0
    start = rip - offset if offset <= _LOOKBACK else rip
    insns = _decode(cs, image, start, rip + (after + 1) * _MAX_INSN)
    at = next((i for i, insn in enumerate(insns) if insn.address == rip), None)
    if at is None:
        insns = _decode(cs, image, rip, rip + (after + 1) * _MAX_INSN)
        at = 0 if insns and insns[0].address == rip else None
    if at is None:
        return []
    rows = []
    shown = insns[max(0, at - before):at + after + 1]
    # A page of code ends in zero padding, which decodes as `add [rax], al`: not shown.
    padding = next((i for i, insn in enumerate(shown)
                    if insn.address > rip and not any(insn.bytes)), None)
    for insn in shown[:padding]:
        rows.append({"address": insn.address, "bytes": bytes(insn.bytes).hex(),
                     "text": f"{insn.mnemonic} {insn.op_str}".strip(),
                     "symbolic": symbolic_text(insn, symbols),
                     "label": symbols.exact(insn.address),
                     "current": insn.address == rip})
    return rows
