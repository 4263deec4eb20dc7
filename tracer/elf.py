"""Reads a static x86-64 ELF executable: loadable segments, symbols and the DWARF line table.

With struct alone (tracer/elf_file.py; the line table: tracer/dwarf_lines.py): pyelftools,
which gave the same answers (tests/test_elf_reader.py compares them on every program), cost
`trace record` ~27 ms of start-up to import. Every malformed header, table or string is a
ProgramError."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tracer.dwarf_lines import line_table
from tracer.elf_file import (PT_INTERP, PT_LOAD, SHF_ALLOC, SHN_ABS, SHN_COMMON, SHN_UNDEF,
                             SHT_DYNSYM, SHT_STRTAB, SHT_SYMTAB, SYMBOL, ElfFile, MalformedElf,
                             unpack)
from tracer.errors import ProgramError
from tracer.format.symbols import Symbol

PF_X, PF_W, PF_R = 1, 2, 4


@dataclass(frozen=True)
class Segment:
    """One PT_LOAD program header."""

    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int
    sections: tuple[str, ...]

    @property
    def perms(self) -> str:
        return (("r" if self.flags & PF_R else "-") + ("w" if self.flags & PF_W else "-")
                + ("x" if self.flags & PF_X else "-"))


@dataclass(frozen=True)
class LineEntry:
    addr: int
    file: str
    line: int


@dataclass(frozen=True)
class ElfProgram:
    path: Path
    data: bytes
    entry: int
    phoff: int
    phentsize: int
    phnum: int
    segments: tuple[Segment, ...]
    symbols: tuple[Symbol, ...]
    lines: tuple[LineEntry, ...]
    sections: tuple[tuple[str, int, int], ...]  # (name, addr, size) of allocated sections

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


# pyelftools' names for the values its messages quoted (other values are shown as numbers).
_MACHINES = {0: "EM_NONE", 2: "EM_SPARC", 3: "EM_386", 8: "EM_MIPS", 20: "EM_PPC",
             21: "EM_PPC64", 22: "EM_S390", 40: "EM_ARM", 43: "EM_SPARCV9", 50: "EM_IA_64",
             62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV", 258: "EM_LOONGARCH"}
_TYPES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
_SYMBOL_TYPES = {0: "notype", 1: "object", 2: "func", 3: "section", 4: "file", 5: "common",
                 6: "tls", 7: "num", 8: "relc", 9: "srelc", 10: "loos", 12: "hios",
                 13: "loproc", 15: "hiproc"}


def read_elf(path: Path) -> ElfProgram:
    """Parses and validates a program for emulation.

    Raises:
        ProgramError: missing, not ELF, not 64-bit x86-64, dynamically linked, or malformed.
    """
    if not path.exists():
        raise ProgramError(f"{path}: no such file")
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        raise ProgramError(f"{path} is not an ELF executable nor a .asm file")
    if len(data) < 5:
        raise ProgramError(f"{path} is not a valid ELF file (its header is cut short)")
    if data[4] != 2:
        raise ProgramError(f"{path} is a 32-bit ELF; vmtrace runs x86-64 (64-bit) programs")
    try:
        elf = ElfFile(data)
        if elf.machine != 62:
            raise ProgramError(f"{path} is built for {_MACHINES.get(elf.machine, elf.machine)}"
                               ", not x86-64")
        if elf.type not in (2, 3):
            raise ProgramError(f"{path} is not an executable (ELF type "
                               f"{_TYPES.get(elf.type, elf.type)})")
        program_headers = elf.segments()
        if any(seg[0] == PT_INTERP for seg in program_headers):
            raise ProgramError(f"{path} is dynamically linked; vmtrace runs static executables: "
                               "link it with -static (gcc -static ...), or record the C "
                               "source itself (trace record prog.c)")
        if elf.type == 3:
            raise ProgramError(f"{path} is position-independent; link it with plain `ld` "
                               "(no -pie), or gcc -static (not -static-pie), so it loads at "
                               "its fixed addresses")
        sections = [(s.name, s.addr, s.size) for s in elf.sections()
                    if s.flags & SHF_ALLOC and s.addr]
        segments = []
        for type_, flags, offset, vaddr, _, filesz, memsz, _ in program_headers:
            if type_ != PT_LOAD:
                continue
            lo, hi = vaddr, vaddr + memsz
            inside = tuple(n for n, a, s in sections if lo <= a < hi or (s == 0 and a == lo))
            segments.append(Segment(vaddr, offset, filesz, memsz, flags, inside))
        if not segments:
            raise ProgramError(f"{path} has no loadable segments")
        lines = tuple(LineEntry(addr, file, line) for addr, file, line in line_table(elf))
        return ElfProgram(path=path, data=data, entry=elf.entry, phoff=elf.phoff,
                          phentsize=elf.phentsize, phnum=elf.phnum,
                          segments=tuple(segments), symbols=_symbols(elf), lines=lines,
                          sections=tuple(sections))
    except (MalformedElf, RecursionError, MemoryError, OverflowError) as exc:
        raise ProgramError(f"{path} is not a valid ELF file ({exc})") from None


def _symbols(elf: ElfFile) -> tuple[Symbol, ...]:
    table = elf.section(".symtab")
    if table is None:
        return ()
    if table.type not in (SHT_SYMTAB, SHT_DYNSYM) or not table.entsize:
        raise MalformedElf(f".symtab is no symbol table (type {table.type}, "
                           f"entry size {table.entsize})")
    headers = elf.sections()
    if not 0 <= table.link < len(headers):
        raise MalformedElf(f".symtab links to no section ({table.link})")
    strings = headers[table.link]
    if strings.type != SHT_STRTAB:
        raise MalformedElf(f".symtab links to section {table.link}, not a string table")
    elf.check_table("symbols", table.offset, table.size // table.entsize, table.entsize,
                     SYMBOL.size)
    out = []
    for i in range(table.size // table.entsize):
        name_offset, info, _, shndx, value, size = unpack(
            SYMBOL, elf.data, table.offset + i * table.entsize)
        kind = info & 0xF
        if kind in (3, 4):  # STT_SECTION, STT_FILE
            continue
        name = elf.string(strings.offset, name_offset)
        if not name:
            continue
        section = (headers[shndx].name if shndx < len(headers)
                   and shndx not in (SHN_UNDEF, SHN_ABS, SHN_COMMON) else None)
        out.append(Symbol(name, value, size, _SYMBOL_TYPES.get(kind, str(kind)), section))
    out.sort(key=lambda s: (s.addr, s.name))
    return tuple(out)
