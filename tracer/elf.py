"""Reads a static x86-64 ELF executable: loadable segments, symbols and the DWARF line table."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

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


def read_elf(path: Path) -> ElfProgram:
    """Parses and validates a program for emulation.

    Raises:
        ProgramError: missing, not ELF, not 64-bit x86-64, or dynamically linked.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    if not path.exists():
        raise ProgramError(f"{path}: no such file")
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        raise ProgramError(f"{path} is not an ELF executable nor a .asm file")
    if data[4] != 2:
        raise ProgramError(f"{path} is a 32-bit ELF; vmtrace runs x86-64 (64-bit) programs")
    try:
        import io

        elf = ELFFile(io.BytesIO(data))
        if elf["e_machine"] != "EM_X86_64":
            raise ProgramError(f"{path} is built for {elf['e_machine']}, not x86-64")
        if elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
            raise ProgramError(f"{path} is not an executable (ELF type {elf['e_type']})")
        if any(seg["p_type"] == "PT_INTERP" for seg in elf.iter_segments()):
            raise ProgramError(f"{path} is dynamically linked; vmtrace runs static executables: "
                               "link it with -static (gcc -static ...), or record the C "
                               "source itself (trace record prog.c)")
        if elf["e_type"] == "ET_DYN":
            raise ProgramError(f"{path} is position-independent; link it with plain `ld` "
                               "(no -pie), or gcc -static (not -static-pie), so it loads at "
                               "its fixed addresses")
        sections = [(s.name, s["sh_addr"], s["sh_size"]) for s in elf.iter_sections()
                    if s["sh_flags"] & 2 and s["sh_addr"]]
        segments = []
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD":
                continue
            lo, hi = seg["p_vaddr"], seg["p_vaddr"] + seg["p_memsz"]
            inside = tuple(n for n, a, s in sections if lo <= a < hi or (s == 0 and a == lo))
            segments.append(Segment(seg["p_vaddr"], seg["p_offset"], seg["p_filesz"],
                                    seg["p_memsz"], seg["p_flags"], inside))
        if not segments:
            raise ProgramError(f"{path} has no loadable segments")
        symbols = _symbols(elf)
        lines = _lines(elf)
        return ElfProgram(path=path, data=data, entry=elf["e_entry"], phoff=elf["e_phoff"],
                          phentsize=elf["e_phentsize"], phnum=elf["e_phnum"],
                          segments=tuple(segments), symbols=symbols, lines=lines,
                          sections=tuple(sections))
    except ELFError as exc:
        raise ProgramError(f"{path} is not a valid ELF file ({exc})") from None


def _symbols(elf) -> tuple[Symbol, ...]:
    table = elf.get_section_by_name(".symtab")
    if table is None:
        return ()
    names = {i: s.name for i, s in enumerate(elf.iter_sections())}
    out = []
    for sym in table.iter_symbols():
        kind = sym["st_info"]["type"]
        if not sym.name or kind in ("STT_FILE", "STT_SECTION"):
            continue
        shndx = sym["st_shndx"]
        section = names.get(shndx) if isinstance(shndx, int) else None
        out.append(Symbol(sym.name, sym["st_value"], sym["st_size"],
                          kind.removeprefix("STT_").lower(), section))
    out.sort(key=lambda s: (s.addr, s.name))
    return tuple(out)


def _lines(elf) -> tuple[LineEntry, ...]:
    if not elf.has_dwarf_info():
        return ()
    dwarf = elf.get_dwarf_info()
    out: dict[int, LineEntry] = {}
    for cu in dwarf.iter_CUs():
        program = dwarf.line_program_for_CU(cu)
        if program is None:
            continue
        header = program.header
        files = header["file_entry"]
        dirs = header["include_directory"]
        for entry in program.get_entries():
            state = entry.state
            if state is None or state.end_sequence:
                continue
            index = state.file - (1 if program.header["version"] < 5 else 0)
            if not 0 <= index < len(files):
                continue
            fe = files[index]
            name = fe.name.decode(errors="replace")
            if fe.dir_index and fe.dir_index - (1 if header["version"] < 5 else 0) < len(dirs):
                directory = dirs[fe.dir_index - (1 if header["version"] < 5 else 0)]
                name = f"{directory.decode(errors='replace')}/{name}"
            out.setdefault(state.address, LineEntry(state.address, name, state.line))
    return tuple(sorted(out.values(), key=lambda e: e.addr))
