"""ELF section extents of the program that ran (read from the trace's program.elf).

The trace's region table is page-granular; findings about an access running past the end
of `.data` need the byte-exact section ends, which only the ELF section headers have."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

_SHF_ALLOC = 0x2


@dataclass(frozen=True)
class Section:
    name: str
    start: int
    end: int
    zeroed: bool  # SHT_NOBITS (.bss): no bytes in the file, zero at start


def read_sections(elf_path: Path) -> list[Section]:
    """The allocated sections of an ELF file, in address order (empty if it is absent)."""
    if not elf_path.exists():
        return []
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        out = [Section(s.name, s["sh_addr"], s["sh_addr"] + s["sh_size"],
                       s["sh_type"] == "SHT_NOBITS")
               for s in elf.iter_sections()
               if s["sh_flags"] & _SHF_ALLOC and s["sh_size"] > 0]
    return sorted(out, key=lambda s: s.start)
