"""tracer/elf.py reads ELF files with struct (issue 13: pyelftools cost `trace record` ~27 ms
of start-up to import). It must read every program as pyelftools read it (segments,
sections, symbols, the DWARF line table), and a damaged file must be a ProgramError, never
another exception."""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, PROGRAMS
from tracer.elf import ElfProgram, LineEntry, Segment, read_elf
from tracer.errors import ProgramError
from tracer.format.symbols import Symbol

ASM = sorted([*EXAMPLES.glob("*.asm"), *PROGRAMS.rglob("*.asm")])
C = [PROGRAMS / "c" / "hello.c", PROGRAMS / "c" / "floats.c"]


def elftools_read(path: Path) -> ElfProgram:
    """What tracer/elf.py's read_elf answered with pyelftools (session 18), for a valid
    static executable: the oracle."""
    from elftools.elf.elffile import ELFFile

    data = path.read_bytes()
    elf = ELFFile(io.BytesIO(data))
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
    symbols = []
    table = elf.get_section_by_name(".symtab")
    names = {i: s.name for i, s in enumerate(elf.iter_sections())}
    for sym in (table.iter_symbols() if table is not None else ()):
        kind = sym["st_info"]["type"]
        if not sym.name or kind in ("STT_FILE", "STT_SECTION"):
            continue
        shndx = sym["st_shndx"]
        symbols.append(Symbol(sym.name, sym["st_value"], sym["st_size"],
                              kind.removeprefix("STT_").lower(),
                              names.get(shndx) if isinstance(shndx, int) else None))
    symbols.sort(key=lambda s: (s.addr, s.name))
    lines: dict[int, LineEntry] = {}
    if elf.has_dwarf_info():
        dwarf = elf.get_dwarf_info()
        for cu in dwarf.iter_CUs():
            program = dwarf.line_program_for_CU(cu)
            if program is None:
                continue
            header = program.header
            shift = 1 if header["version"] < 5 else 0
            files, dirs = header["file_entry"], header["include_directory"]
            for entry in program.get_entries():
                state = entry.state
                if state is None or state.end_sequence:
                    continue
                if not 0 <= state.file - shift < len(files):
                    continue
                fe = files[state.file - shift]
                name = fe.name.decode(errors="replace")
                if fe.dir_index and fe.dir_index - shift < len(dirs):
                    name = f"{dirs[fe.dir_index - shift].decode(errors='replace')}/{name}"
                lines.setdefault(state.address, LineEntry(state.address, name, state.line))
    return ElfProgram(path=path, data=data, entry=elf["e_entry"], phoff=elf["e_phoff"],
                      phentsize=elf["e_phentsize"], phnum=elf["e_phnum"],
                      segments=tuple(segments), symbols=tuple(symbols),
                      lines=tuple(sorted(lines.values(), key=lambda e: e.addr)),
                      sections=tuple(sections))


def _assemble(source: Path, into: Path, name: str | None = None) -> Path | None:
    """`source` built as `trace record` builds it (nasm -g -F dwarf, ld); None for the
    sources that are meant not to build."""
    name = name or source.stem
    obj, exe = into / f"{name}.o", into / name
    nasm = subprocess.run(["nasm", "-f", "elf64", "-g", "-F", "dwarf", "-i",
                           f"{source.parent}/", str(source), "-o", str(obj)],
                          capture_output=True)
    if nasm.returncode or subprocess.run(["ld", "-o", str(exe), str(obj)],
                                         capture_output=True).returncode:
        return None
    return exe


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> list[Path]:
    into = tmp_path_factory.mktemp("elves")
    out = [exe for i, source in enumerate(ASM)
           if (exe := _assemble(source, into, f"{i}-{source.stem}")) is not None]
    for source in C:
        exe = into / f"c-{source.stem}"
        subprocess.run(["gcc", "-static", "-g", "-O0", str(source), "-o", str(exe)],
                       check=True, capture_output=True)
        out.append(exe)
    # older DWARF, and debug sections compressed (SHF_COMPRESSED; .zdebug_* with zlib-gnu)
    for i, flags in enumerate((["-gdwarf-4", "-gz"], ["-gdwarf-2", "-O2", "-gz=zlib-gnu"])):
        exe = into / f"c-floats-{i}"
        subprocess.run(["gcc", "-static", *flags, str(C[1]), "-o", str(exe)], check=True,
                       capture_output=True)
        out.append(exe)
    if shutil.which("musl-gcc"):
        exe = into / "musl-hello"
        subprocess.run(["musl-gcc", "-static", "-g", "-O0", str(C[0]), "-o", str(exe)],
                       check=True, capture_output=True)
        out.append(exe)
    return out


def test_every_program_reads_as_pyelftools_read_it(built):
    assert len(built) > 50
    with_lines = 0
    for exe in built:
        ours, theirs = read_elf(exe), elftools_read(exe)
        assert ours == theirs, exe.name
        with_lines += bool(ours.lines)
    assert with_lines == len(built)  # nasm's DWARF and gcc's (version 5) both read


def test_the_record_path_does_not_import_pyelftools(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; from tracer.elf import "
         "read_elf; read_elf(Path(sys.argv[1])); print('elftools' in sys.modules)",
         str(_assemble(EXAMPLES / "hello.asm", tmp_path))],
        capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def _damaged(data: bytes, rng: random.Random) -> bytes:
    """`data` with a few header or table bytes changed, or cut short."""
    out = bytearray(data)
    how = rng.randrange(4)
    if how == 0:
        return bytes(out[:rng.randrange(len(out))])
    # aim at the headers and the tables at the end (sections, symbols, DWARF) more often
    for _ in range(rng.randint(1, 8)):
        if how == 1:
            at = rng.randrange(min(len(out), 64 + 56 * 4))
        elif how == 2:
            at = rng.randrange(max(0, len(out) - 4096), len(out))
        else:
            at = rng.randrange(len(out))
        out[at] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
    return bytes(out)


@pytest.mark.parametrize("program", ["hello", "c-hello"])
def test_damaged_elves_are_program_errors(built, tmp_path, program):
    exe = next(e for e in built if e.name.endswith(f"-{program}" if program == "hello"
                                                   else program))
    data = exe.read_bytes()
    rng = random.Random(13)
    path = tmp_path / "damaged"
    agreed = 0
    for _ in range(300 if program == "hello" else 40):
        path.write_bytes(_damaged(data, rng))
        try:
            read_elf(path)
        except ProgramError:
            pass
        else:
            agreed += 1
    assert agreed  # not all rejected: a changed byte in code is no damage to the headers


def test_header_fields_that_would_loop_or_allocate_are_refused(tmp_path):
    from raw_elf import elf

    good = elf(b"\x0f\x05")
    cases = {
        "phnum PN_XNUM, no sections": good[:56] + struct.pack("<H", 0xFFFF) + good[58:],
        "phentsize 0": good[:54] + struct.pack("<H", 0) + good[56:],
        "section table past the end": good[:40] + struct.pack("<Q", 1 << 40) + good[48:],
        "header cut short": good[:20],
        "class byte only": good[:5],
    }
    for name, data in cases.items():
        path = tmp_path / "x"
        path.write_bytes(data)
        with pytest.raises(ProgramError, match="not a valid ELF file"):
            read_elf(path)
        assert name


def test_a_forged_compressed_size_is_refused_not_allocated(built, tmp_path):
    from tracer.elf_file import ElfFile

    exe = next(e for e in built if e.name == "c-floats-0")  # -gz: SHF_COMPRESSED sections
    data = bytearray(exe.read_bytes())
    info = ElfFile(bytes(data)).section(".debug_info")
    assert info is not None and info.flags & 0x800
    struct.pack_into("<Q", data, info.offset + 8, 1 << 40)  # Elf64_Chdr.ch_size: 1 TiB
    path = tmp_path / "forged"
    path.write_bytes(bytes(data))
    with pytest.raises(ProgramError, match="cannot inflate"):
        read_elf(path)
