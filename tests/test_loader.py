"""Loader fidelity: the initial stack (argc, argv, envp, auxv, AT_RANDOM, alignment) compared
field by field with the one Linux builds for the same ELF, the bytes of segments' last pages
compared with the ELF file, .bss zero, the initial break, and byte-identical re-recordings."""

from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass

import pytest

from cases import all_cases, prepare  # noqa: F401  (prepare is a fixture)
from conftest import record
from oracles import elf_initial_break, read_table, symbol_address

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_PLATFORM, AT_CLKTCK, AT_SECURE, AT_RANDOM, AT_EXECFN = 15, 17, 23, 25, 31
AT_SYSINFO_EHDR = 33
STACK_TOP = 0x7FFFFFFFF000
# auxv entries whose values do not depend on the host's CPU, user or kernel build
PORTABLE_AUXV = (AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY,
                 AT_CLKTCK, AT_SECURE, AT_RANDOM, AT_EXECFN, AT_PLATFORM)


def _case(stem: str):
    return next(c for c in all_cases() if c.source.stem == stem)


@dataclass(frozen=True)
class InitialStack:
    rsp: int
    argv: list[bytes]
    env: list[bytes]
    auxv: list[tuple[int, int]]
    dump: bytes

    def at(self, addr: int, size: int) -> bytes:
        assert self.rsp <= addr and addr + size <= STACK_TOP, hex(addr)
        return self.dump[addr - self.rsp:addr - self.rsp + size]

    def c_string(self, addr: int) -> bytes:
        offset = addr - self.rsp
        return self.dump[offset:self.dump.index(b"\0", offset)]


def parse_stack_dump(out: bytes) -> InitialStack:
    """Parses what tests/programs/stack_dump.asm prints: RSP, then [RSP, stack top)."""
    rsp = struct.unpack_from("<Q", out)[0]
    dump = out[8:]
    assert len(dump) == STACK_TOP - rsp

    def word(i: int) -> int:
        return struct.unpack_from("<Q", dump, 8 * i)[0]

    argc = word(0)
    i = 1
    argv = [word(i + k) for k in range(argc)]
    i += argc
    assert word(i) == 0
    i += 1
    env = []
    while word(i):
        env.append(word(i))
        i += 1
    i += 1
    auxv = []
    while True:
        auxv.append((word(i), word(i + 1)))
        i += 2
        if auxv[-1][0] == AT_NULL:
            break
    stack = InitialStack(rsp, [], [], auxv, dump)
    return InitialStack(rsp, [stack.c_string(a) for a in argv],
                        [stack.c_string(a) for a in env], auxv, dump)


@pytest.fixture(scope="module")
def stacks(prepare):
    run = prepare(_case("stack_dump"))
    ours_out = b"".join(read_table(run.trace, "output")["data"].to_pylist())
    return parse_stack_dump(run.native.stdout), parse_stack_dump(ours_out), run


def test_argc_argv_and_environment_are_what_linux_puts_there(stacks):
    native, ours, run = stacks
    assert ours.argv == native.argv == [b"./stack_dump", b"a1", b"bb2"]
    assert ours.env == native.env
    assert [s.decode() for s in ours.env] == run.meta["env"]


def test_rsp_is_16_byte_aligned_at_entry(stacks):
    native, ours, _ = stacks
    assert native.rsp % 16 == 0 and ours.rsp % 16 == 0


def test_auxv_matches_linux(stacks):
    native, ours, run = stacks
    theirs = dict(native.auxv)
    mine = dict(ours.auxv)
    for key in PORTABLE_AUXV:
        assert mine.get(key) == theirs.get(key), f"AT_{key}"
    assert mine[AT_ENTRY] == symbol_address(run.exe, "_start")
    assert mine[AT_PAGESZ] == 4096
    # Same entries in the same order; the vDSO pointer where Linux maps [vdso] (vmtrace maps
    # zero-filled pages there: no vDSO image).
    common = set(mine) & set(theirs)
    assert [k for k, _ in ours.auxv if k in common] == [k for k, _ in native.auxv
                                                       if k in common]
    assert set(theirs) == set(mine)
    assert mine[AT_SYSINFO_EHDR] == theirs[AT_SYSINFO_EHDR]


def test_auxv_pointers_point_at_what_linux_puts_there(stacks):
    native, ours, run = stacks
    mine = dict(ours.auxv)
    assert ours.c_string(mine[AT_EXECFN]) == b"./stack_dump"
    assert ours.c_string(mine[AT_PLATFORM]) == b"x86_64"
    # AT_RANDOM: 16 bytes on the stack, between the auxv and the strings
    random_bytes = ours.at(mine[AT_RANDOM], 16)
    assert len(random_bytes) == 16 and random_bytes != bytes(16)
    assert [list(kv) for kv in ours.auxv] == run.meta["initial"]["auxv"]
    # AT_PHDR points at the program headers, as they are in the file
    phdrs = run.exe.read_bytes()[64:64 + mine[AT_PHENT] * mine[AT_PHNUM]]
    image = read_table(run.trace, "memory_image").to_pylist()
    first = next(r for r in image if r["start"] <= mine[AT_PHDR] < r["start"] + len(r["data"]))
    offset = mine[AT_PHDR] - first["start"]
    assert first["data"][offset:offset + len(phdrs)] == phdrs


def test_initial_rsp_equals_linux(stacks):
    native, ours, _ = stacks
    assert ours.rsp == native.rsp


def test_initial_rsp_is_where_meta_says(stacks):
    _, ours, run = stacks
    assert run.meta["initial"]["rsp"] == ours.rsp


# -- segments -------------------------------------------------------------------------------
def _load_segments(exe) -> list[tuple[int, int, int, int]]:
    """(offset, vaddr, filesz, memsz) of each PT_LOAD, from readelf."""
    out = subprocess.run(["readelf", "-lW", str(exe)], capture_output=True, text=True,
                         check=True).stdout
    return [(int(p[1], 16), int(p[2], 16), int(p[4], 16), int(p[5], 16))
            for p in (line.split() for line in out.splitlines()) if p and p[0] == "LOAD"]


def test_bytes_past_a_segments_end_are_the_files_bytes(prepare):
    run = prepare(_case("segment_tail"))
    file = run.exe.read_bytes()
    offset, vaddr, filesz, memsz = _load_segments(run.exe)[-1]
    assert memsz == filesz, "the data segment should have no .bss"
    page = vaddr & ~0xFFF
    expected = file[offset - (vaddr - page):][:4096].ljust(4096, b"\0")
    ours = b"".join(read_table(run.trace, "output")["data"].to_pylist())
    assert ours == expected
    assert ours[vaddr - page + filesz:].strip(b"\0"), "the tail should hold file bytes"
    assert ours == run.native.stdout


def test_bss_and_the_rest_of_its_file_page_are_zero(prepare):
    run = prepare(_case("bss_zero"))
    offset, vaddr, filesz, memsz = _load_segments(run.exe)[-1]
    assert memsz > filesz
    page = vaddr & ~0xFFF
    ours = b"".join(read_table(run.trace, "output")["data"].to_pylist())
    head = vaddr - page + filesz
    assert ours[vaddr - page:head] == run.exe.read_bytes()[offset:offset + filesz]
    assert ours[head:] == bytes(len(ours) - head)
    assert len(ours) == vaddr + memsz - page
    assert ours == run.native.stdout


@pytest.mark.parametrize("stem", ["hello", "bss_zero", "segment_tail", "brk_ops"])
def test_initial_break_is_the_page_aligned_end_of_bss(prepare, stem):
    run = prepare(_case(stem))
    assert run.meta["initial"]["brk"] == elf_initial_break(run.exe)
    assert run.info["brk"]["start"] == elf_initial_break(run.exe)


def test_initial_break_equals_linuxs(prepare):
    run = prepare(_case("brk_ops"))
    native_first_brk = next(c.ret for c in run.strace.syscalls if c.name == "brk")
    assert run.meta["initial"]["brk"] == native_first_brk


def test_memory_map_at_entry_matches_the_elf(prepare):
    run = prepare(_case("bss_zero"))
    regions = {r["kind"]: r for r in run.info["regions"]}
    offset, vaddr, filesz, memsz = _load_segments(run.exe)[1]
    assert regions["text"]["start"] == vaddr & ~0xFFF and regions["text"]["perms"] == "r-x"
    assert regions["data"]["perms"] == "rw-" and regions["bss"]["perms"] == "rw-"
    assert regions["bss"]["end"] == elf_initial_break(run.exe)
    assert regions["stack"]["end"] == STACK_TOP


# -- determinism ----------------------------------------------------------------------------
def test_recording_twice_gives_byte_identical_event_files(tmp_path):
    """getrandom, clock_gettime, nanosleep, uname and stdin all come out the same."""
    program = _case("misc_syscalls").source
    stdin = tmp_path / "in.txt"
    stdin.write_bytes(b"some input\n")
    for name in ("one", "two"):
        record(program, tmp_path / name, "--stdin", str(stdin), "--", "x", "y")
    arrows = sorted(p.name for p in (tmp_path / "one").glob("*.arrows"))
    assert "accesses.arrows" in arrows and "kernel_writes.arrows" in arrows
    for name in arrows:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_another_seed_changes_only_the_random_bytes(tmp_path):
    program = _case("misc_syscalls").source
    one = record(program, tmp_path / "one", "--seed", "1")
    two = record(program, tmp_path / "two", "--seed", "2")
    assert one["stdout"] == two["stdout"] == "pucrnfg\n"
    assert one["accesses"] == two["accesses"]
    writes = [read_table(tmp_path / n, "kernel_writes")["data"].to_pylist() for n in
              ("one", "two")]
    assert writes[0] != writes[1]
