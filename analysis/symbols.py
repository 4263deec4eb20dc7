"""Addresses to names, by one set of rules for every reader (report, CLI, viewer), and
instructions to source lines.

The naming rules of `Symbolizer.name`, in order:
1. An address in the heap, the stack or an mmap region (when the map is given) is named by
   its region, never by a symbol: `heap+0x18` (from the initial break), `stack top-0x40`
   (below the end of [stack]), `mmap#2+0x10` (anonymous mappings numbered from 1 in address
   order), `[vdso]+0x10` (a named mapping by its name).
2. Otherwise by the nearest real label at or below it: `name` or `name+0x10`. Linker markers
   (`_end`, `__bss_start`, `_edata`...) never name an address. At one address a global label
   wins over a local one; past a local label, the local label names it in full
   (`_start.loop+0x3`, as nasm stores `.loop` under `_start`).
3. No name (None) more than 0x10000 bytes past the label. A sized object names the bytes
   after its end too (`increment+0x7`): nasm sizes a label by its first item only, and a
   read past a datum is what the reader wants to see named.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from tracer.format.regions import Segment
from tracer.format.symbols import Symbol

MAX_OFFSET = 0x10000
_REGION_KINDS = ("heap", "stack", "mmap", "vdso")

__all__ = ["MAX_OFFSET", "SourceLine", "Symbol", "Symbolizer"]


@dataclass(frozen=True)
class SourceLine:
    file: str
    line: int


class Symbolizer:
    """Answers "which symbol / source line is this address" for one trace."""

    def __init__(self, symbols: pa.Table, lines: pa.Table, regions: Sequence[Segment] = (),
                 heap_start: int | None = None):
        """
        Args:
            symbols: the trace's `symbols` table.
            lines: the trace's `lines` table.
            regions: the memory map to name heap, stack and mmap addresses by (rule 1);
                empty: symbols only.
            heap_start: the initial break (`heap+0`); default: the heap's lowest address.
        """
        rows = [Symbol(r["name"], r["addr"], r["size"], r["type"], r["section"] or "")
                for r in symbols.to_pylist() if r["name"] and r["type"] != "file"]
        self.symbols = sorted((s for s in rows if not s.is_marker),
                              key=lambda s: (s.addr, s.is_local_label, -s.size))
        self._addrs = [s.addr for s in self.symbols]
        line_rows = sorted(lines.to_pylist(), key=lambda r: r["addr"])
        self._line_addrs = [r["addr"] for r in line_rows]
        self._lines = [SourceLine(r["file"], r["line"]) for r in line_rows]
        self._by_name = {s.name: s for s in rows}
        self._regions = [r for r in regions if r.kind in _REGION_KINDS]
        heaps = [r.start for r in self._regions if r.kind == "heap"]
        self._heap_start = heap_start if heap_start is not None else min(heaps, default=0)
        anonymous = sorted(r.start for r in self._regions if r.kind == "mmap" and not r.name)
        self._mmap_number = {start: i + 1 for i, start in enumerate(anonymous)}

    def by_name(self, name: str) -> Symbol | None:
        """The symbol called `name` (linker markers included: they are addresses too)."""
        return self._by_name.get(name)

    def symbol_at(self, addr: int) -> Symbol | None:
        """The symbol at or before `addr` (None below the first symbol); at one address, a
        global label before a local one."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        first = bisect.bisect_left(self._addrs, self._addrs[i])
        return self.symbols[first]

    def name(self, addr: int) -> str | None:
        """The name of `addr` by the module's rules (None: no rule names it)."""
        region = next((r for r in self._regions if r.start <= addr < r.end), None)
        if region is not None:
            return self._region_name(region, addr)
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        # The nearest label: the last one at the highest address <= addr; at that address a
        # global label (sorted first) wins.
        sym = self.symbols[bisect.bisect_left(self._addrs, self._addrs[i])]
        off = addr - sym.addr
        if off > MAX_OFFSET:
            return None
        return sym.name if off == 0 else f"{sym.name}+{off:#x}"

    def _region_name(self, region: Segment, addr: int) -> str:
        if region.kind == "heap":
            base, label = self._heap_start, "heap"
        elif region.kind == "stack":
            return f"stack top-{region.end - addr:#x}"
        elif region.name:
            base, label = region.start, region.name
        else:
            base, label = region.start, f"mmap#{self._mmap_number[region.start]}"
        off = addr - base
        return label if off == 0 else f"{label}+{off:#x}"

    def instruction_text(self, mnemonic: str, op_str: str, next_rip: int) -> str:
        """An instruction with the addresses in its operands named: a branch target
        (`call fib`), an absolute or RIP-relative memory operand (`[increment]`), and a
        displacement or immediate that is exactly a label's address (`[rax*8 + table]`,
        `mov rsi, msg`). Other numbers stay.

        Args:
            mnemonic, op_str: as capstone prints them.
            next_rip: the address of the next instruction (RIP-relative operands).
        """
        branch = mnemonic.startswith(("j", "call", "loop"))

        def memory(m: re.Match) -> str:
            addr = int(m.group(2), 16)
            if m.group(1):
                addr = (next_rip + (addr if m.group(1).strip() == "rip +" else -addr)) \
                    & 0xFFFF_FFFF_FFFF_FFFF
            return f"[{self.name(addr) or m.group(0)[1:-1]}]"

        def immediate(m: re.Match) -> str:
            addr = int(m.group(0), 16)
            name = self.name(addr) if branch else self.exact(addr)
            return name or m.group(0)

        def displacement(m: re.Match) -> str:
            return m.group(1) + (self.exact(int(m.group(2), 16)) or m.group(2)) + "]"

        text = re.sub(r"\[(rip [+-] )?(0x[0-9a-f]+)\]", memory, op_str)
        text = re.sub(r"(\[[^\]]* \+ )(0x[0-9a-f]+)\]", displacement, text)
        text = re.sub(r"(?<![\w\[])0x[0-9a-f]+(?![^\[]*\])", immediate, text)
        return f"{mnemonic} {text}".strip()

    def describe(self, addr: int) -> str:
        """The name of `addr`, or its bare hex address when no rule names it."""
        return self.name(addr) or f"{addr:#x}"

    def exact(self, addr: int) -> str | None:
        """The label that starts exactly at `addr` (a global one first), if any."""
        i = bisect.bisect_left(self._addrs, addr)
        return self.symbols[i].name if i < len(self._addrs) and self._addrs[i] == addr else None

    def function_at(self, rip: int) -> str:
        """The function (non-local label) holding `rip`; nasm names local labels `fn.label`."""
        i = bisect.bisect_right(self._addrs, rip) - 1
        while i >= 0 and self.symbols[i].is_local_label:
            i -= 1
        return self.symbols[i].name if i >= 0 else "?"

    def line_at(self, rip: int) -> SourceLine | None:
        """The source line of the instruction at `rip`, from the DWARF line table.

        None for code the table does not cover: an instruction inside a sized function
        (a C library's, compiled without debug information) that holds no entry of the
        table is not on the line of the last entry before it."""
        i = bisect.bisect_right(self._line_addrs, rip) - 1
        if i < 0:
            return None
        entry = self._line_addrs[i]
        here, there = self._function_symbol(rip), self._function_symbol(entry)
        if here is not None and entry < here.addr:
            return None
        if there is not None and not there.addr <= rip < there.addr + there.size:
            return None
        return self._lines[i]

    def _function_symbol(self, rip: int) -> Symbol | None:
        """The sized function symbol covering `rip`, if any (nasm labels have no size)."""
        i = bisect.bisect_right(self._addrs, rip) - 1
        for sym in reversed(self.symbols[max(0, i - 8):i + 1]):
            if sym.type == "func" and sym.size and sym.addr <= rip < sym.addr + sym.size:
                return sym
        return None

    def line_no(self, rip: int) -> int | None:
        line = self.line_at(rip)
        return line.line if line else None
