"""The disassembly pane: instructions around RIP, operands named by the symbolizer
(`call fib`, `[increment]`) rather than bare addresses."""

from __future__ import annotations

from capstone import CS_ARCH_X86, CS_MODE_64, Cs

_MAX_INSN = 15
_LOOKBACK = 256      # bytes before RIP searched for the start of its function


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
    cs = Cs(CS_ARCH_X86, CS_MODE_64)
    label = symbols.name(rip) or ""
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
                     "symbolic": symbols.instruction_text(insn.mnemonic, insn.op_str,
                                                          insn.address + insn.size),
                     "label": symbols.exact(insn.address),
                     "current": insn.address == rip})
    return rows
