"""Addresses to names: symbol+offset for data and code, source line for an instruction."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import pyarrow as pa

# Linker-made markers: they name a position, not a datum or a function.
_MARKERS = {"__bss_start", "_edata", "_end", "_etext", "__executable_start",
            "_GLOBAL_OFFSET_TABLE_"}


@dataclass(frozen=True)
class Symbol:
    name: str
    addr: int
    size: int
    type: str
    section: str


@dataclass(frozen=True)
class SourceLine:
    file: str
    line: int


class Symbolizer:
    """Answers "which symbol / source line is this address" for one trace."""

    def __init__(self, symbols: pa.Table, lines: pa.Table):
        rows = [Symbol(r["name"], r["addr"], r["size"], r["type"], r["section"] or "")
                for r in symbols.to_pylist() if r["name"] and r["name"] not in _MARKERS]
        self.symbols = sorted(rows, key=lambda s: (s.addr, -s.size))
        self._addrs = [s.addr for s in self.symbols]
        line_rows = sorted(lines.to_pylist(), key=lambda r: r["addr"])
        self._line_addrs = [r["addr"] for r in line_rows]
        self._lines = [SourceLine(r["file"], r["line"]) for r in line_rows]
        self._by_name = {s.name: s for s in self.symbols}

    def by_name(self, name: str) -> Symbol | None:
        return self._by_name.get(name)

    def symbol_at(self, addr: int) -> Symbol | None:
        """The symbol at or before `addr` (None below the first symbol)."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        return self.symbols[i] if i >= 0 else None

    def describe(self, addr: int) -> str:
        """`name+0x10` for an address, or the bare hex address if no symbol precedes it."""
        sym = self.symbol_at(addr)
        if sym is None:
            return f"{addr:#x}"
        off = addr - sym.addr
        return sym.name if off == 0 else f"{sym.name}+{off:#x}"

    def function_at(self, rip: int) -> str:
        """The function (non-local label) holding `rip`; nasm names local labels `fn.label`."""
        i = bisect.bisect_right(self._addrs, rip) - 1
        while i >= 0 and "." in self.symbols[i].name.lstrip("."):
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
