"""The headers, sections and string tables of a 64-bit little-endian ELF file, read with
struct from its bytes. Every read is bounds-checked: what does not fit is MalformedElf."""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

PT_LOAD, PT_INTERP = 1, 3
SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS, SHT_DYNSYM = 2, 3, 8, 11
SHF_ALLOC, SHF_COMPRESSED = 0x2, 0x800
SHN_UNDEF, SHN_ABS, SHN_COMMON, SHN_XINDEX = 0, 0xFFF1, 0xFFF2, 0xFFFF

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
SYMBOL = struct.Struct("<IBBHQQ")  # Elf64_Sym
_CHDR = struct.Struct("<IIQQ")


class MalformedElf(Exception):
    """Bytes that are not what the ELF (or DWARF) format says; tracer/elf.py's read_elf
    turns it into the one ProgramError."""


def unpack(layout: struct.Struct, data: bytes, offset: int) -> tuple:
    """`layout` read at `offset`, or MalformedElf where the bytes end first."""
    if offset < 0 or offset + layout.size > len(data):
        raise MalformedElf(f"{layout.size} bytes at offset {offset:#x} are past the end")
    return layout.unpack_from(data, offset)


class SectionHeader(NamedTuple):
    """One section header, with its name (a NamedTuple: a frozen dataclass costs start-up
    ~0.7 ms to define)."""

    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int


class ElfFile:
    """The headers of a 64-bit little-endian ELF file, read on demand from its bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        if len(data) < 6 or data[5] != 1:
            raise MalformedElf("not a little-endian ELF header")
        (_, self.type, self.machine, _, self.entry, self.phoff, self.shoff, _, _,
         self.phentsize, self.phnum, self.shentsize, self.shnum,
         self.shstrndx) = unpack(_EHDR, data, 0)
        self._sections: list[SectionHeader] | None = None

    def _raw_section(self, n: int) -> tuple:
        return unpack(_SHDR, self.data, self.shoff + n * self.shentsize)

    def check_table(self, what: str, offset: int, count: int, entsize: int,
                     size: int) -> None:
        # Bounded before anything is read: a count of 2^32 must not become a loop.
        if count and (entsize < size or offset + (count - 1) * entsize + size > len(self.data)):
            raise MalformedElf(f"{count} {what} of {entsize} bytes at {offset:#x} do not fit "
                               "in the file")

    def segments(self) -> list[tuple]:
        """Every program header: (type, flags, offset, vaddr, paddr, filesz, memsz, align)."""
        count = self.phnum
        if count == 0xFFFF:  # PN_XNUM: the count is section 0's sh_info
            if not self.shoff:
                raise MalformedElf("PN_XNUM program headers, but no section 0 to count them")
            count = self._raw_section(0)[7]
        self.check_table("program headers", self.phoff, count, self.phentsize, _PHDR.size)
        return [unpack(_PHDR, self.data, self.phoff + i * self.phentsize)
                for i in range(count)]

    def sections(self) -> list[SectionHeader]:
        """Every section header, named from the section name string table."""
        if self._sections is None:
            self._sections = []
            if self.shoff:
                count = self.shnum or self._raw_section(0)[5]  # 0: section 0's sh_size
                self.check_table("section headers", self.shoff, count, self.shentsize,
                                  _SHDR.size)
                raw = [self._raw_section(i) for i in range(count)]
                index = raw[0][6] if self.shstrndx == SHN_XINDEX and raw else self.shstrndx
                if not 0 <= index < len(raw):
                    raise MalformedElf(f"no section {index} for the section names")
                names = raw[index][4]
                self._sections = [
                    SectionHeader(self.string(names, name) if index else "", type_, flags,
                                  addr, offset, size, link, entsize)
                    for name, type_, flags, addr, offset, size, link, _, _, entsize in raw]
        return self._sections

    def section(self, name: str) -> SectionHeader | None:
        """The section of that name (the last, where several have it), or None."""
        found = None
        for header in self.sections():
            if header.name == name:
                found = header
        return found

    def string(self, table_offset: int, offset: int) -> str:
        """The NUL-terminated UTF-8 string at `offset` of a string table ('' where it runs
        past the end of the file unterminated, as pyelftools read it)."""
        start = table_offset + offset
        end = self.data.find(b"\0", start)
        return "" if end < 0 else self.data[start:end].decode("utf-8", errors="replace")

    def contents(self, section: SectionHeader) -> bytes:
        """A section's bytes, decompressed where they are (SHF_COMPRESSED, zlib)."""
        if section.type == SHT_NOBITS:
            # No bytes in the file (pyelftools made sh_size zeros, which read as no line
            # table as well; a forged sh_size must not become an allocation).
            return b""
        if section.offset + section.size > len(self.data):
            raise MalformedElf(f"section {section.name} is past the end")
        raw = self.data[section.offset:section.offset + section.size]
        if not section.flags & SHF_COMPRESSED:
            return raw
        kind, _, size, _ = unpack(_CHDR, raw, 0)
        if kind != 1:
            raise MalformedElf(f"section {section.name}: unknown compression type {kind:#x}")
        return inflate(raw[_CHDR.size:], size, section.name)


def inflate(data: bytes, size: int, name: str) -> bytes:
    """zlib-compressed section bytes, at most `size` of them; MalformedElf where the size
    is more than zlib could make of them (a forged size must not become an allocation)."""
    if size > 1100 * len(data) + 1024:  # deflate's best ratio is ~1032:1
        raise MalformedElf(f"section {name}: {size} bytes cannot inflate from {len(data)}")
    try:
        return zlib.decompressobj().decompress(data, size)
    except zlib.error as exc:
        raise MalformedElf(f"section {name}: {exc}") from None
