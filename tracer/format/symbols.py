"""The one `Symbol` type: a row of the trace's `symbols` table, as the ELF reader makes it and
every reader sees it. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass

# Linker-made markers: they name a position, not a datum or a function, so they never name
# an address (`_end+0xfd8` says nothing about the bytes there).
LINKER_MARKERS = frozenset({"__bss_start", "_edata", "_end", "_etext", "__executable_start",
                            "_GLOBAL_OFFSET_TABLE_", "__ehdr_start", "_DYNAMIC"})


@dataclass(frozen=True)
class Symbol:
    """A named address: a label, function or object (`size` 0 where the ELF gives none)."""

    name: str
    addr: int
    size: int
    type: str             # func, object, notype...
    section: str | None

    @property
    def is_local_label(self) -> bool:
        """nasm's local label `.loop` under `fn`, stored as `fn.loop`."""
        return "." in self.name.lstrip(".")

    @property
    def is_marker(self) -> bool:
        return self.name in LINKER_MARKERS
