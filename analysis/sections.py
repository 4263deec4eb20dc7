"""ELF section extents of the program that ran (read from the trace's program.elf).

The trace's region table is page-granular; findings about an access running past the end
of `.data` need the byte-exact section ends, which only the ELF section headers have."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.construct.core import ConstructError
from elftools.elf.elffile import ELFFile

from tracer.format import TraceFormatError

_SHF_ALLOC = 0x2


@dataclass(frozen=True)
class Section:
    name: str
    start: int
    end: int
    zeroed: bool  # SHT_NOBITS (.bss): no bytes in the file, zero at start


def read_sections(elf: bytes | None) -> list[Section]:
    """The allocated sections of an ELF file, in address order.

    Args:
        elf: the bytes of the trace's program.elf (`TraceFiles.program_bytes`), or None
            (a killed recording may have none): no sections.

    Raises:
        TraceFormatError: the bytes are not an ELF file pyelftools can read.
    """
    if elf is None:
        return []
    try:
        parsed = ELFFile(io.BytesIO(elf))
        out = [Section(s.name, s["sh_addr"], s["sh_addr"] + s["sh_size"],
                       s["sh_type"] == "SHT_NOBITS")
               for s in parsed.iter_sections()
               if s["sh_flags"] & _SHF_ALLOC and s["sh_size"] > 0]
    except (ELFError, ConstructError, struct.error, ValueError, KeyError, IndexError,
            EOFError, AttributeError, TypeError) as exc:
        # program.elf matched meta.json's checksum, so meta.json named a broken ELF.
        raise TraceFormatError(f"the trace's program.elf cannot be read as an ELF file "
                            f"({exc})") from None
    return sorted(out, key=lambda s: s.start)
