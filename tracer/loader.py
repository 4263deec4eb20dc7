"""Loads a static ELF into an AddressSpace the way Linux's binfmt_elf does with ASLR off:
segments, bss, the initial break, and the initial stack (strings, argv, envp, auxv)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from unicorn import Uc

from tracer.address_space import (
    MMAP_BASE, PAGE, STACK_EXPAND, STACK_LIMIT, STACK_TOP, VDSO_IMAGE_PAGES, VDSO_PAGES,
    AddressSpace,
    page_down, page_up,
)
from tracer.elf import PF_W, PF_X, ElfProgram
from tracer.errors import ProgramError

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = 0, 3, 4, 5, 6, 7, 8, 9
AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK = 11, 12, 13, 14, 15, 16, 17
AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_MINSIGSTKSZ = 23, 25, 26, 31, 51
AT_RSEQ_FEATURE_SIZE, AT_RSEQ_ALIGN, AT_SYSINFO_EHDR = 27, 28, 33

GUEST_UID = 1000
DEFAULT_ENV = ("HOME=/home/user", "LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin",
               "PWD=/home/user", "SHELL=/bin/sh", "TERM=xterm", "USER=user")


@dataclass(frozen=True)
class LoadedProcess:
    entry: int
    rsp: int
    brk: int
    stack_top: int
    auxv: tuple[tuple[int, int], ...]
    random_bytes: bytes


def _segment_kind(program: ElfProgram, index: int) -> str:
    seg = program.segments[index]
    if seg.flags & PF_X:
        return "text"
    if seg.flags & PF_W:
        return "data"
    return "rodata" if seg.sections else "elf"


def load_elf(space: AddressSpace, uc: Uc, program: ElfProgram) -> int:
    """Maps every PT_LOAD segment; returns the initial program break.

    Whole file pages are mapped, so bytes past a segment's end inside its last page are what
    the file holds there (Linux maps the file page); where memsz > filesz the rest of that
    page is zeroed and further pages are anonymous (.bss).
    """
    elf_brk = 0
    for i, seg in enumerate(program.segments):
        kind = _segment_kind(program, i)
        start = page_down(seg.vaddr)
        file_end = page_up(seg.vaddr + seg.filesz)
        mem_end = page_up(seg.vaddr + seg.memsz)
        name = " ".join(seg.sections) or program.path.name
        if file_end > start:
            space.map(start, file_end, seg.perms, kind, name)
            file_start = page_down(seg.offset)
            image = program.data[file_start:file_start + (file_end - start)]
            image = image.ljust(file_end - start, b"\0")
            if seg.memsz > seg.filesz:
                cut = seg.vaddr + seg.filesz - start
                image = image[:cut] + bytes(len(image) - cut)
            uc.mem_write(start, image)
        if mem_end > file_end:
            space.map(file_end, mem_end, seg.perms, "bss", ".bss")
        elf_brk = max(elf_brk, seg.vaddr + seg.memsz)
    return page_up(elf_brk)


def build_stack(space: AddressSpace, uc: Uc, program: ElfProgram, argv: list[str],
                env: list[str], random_bytes: bytes) -> LoadedProcess:
    """Maps the stack and writes the initial layout exactly as create_elf_tables does."""
    strings = sum(len(a.encode()) + 1 for a in (*argv, *env)) + len(argv[0].encode()) + 1
    if strings > STACK_LIMIT // 4:
        # execve(2) refuses these with E2BIG: they may take at most a quarter of the stack.
        raise ProgramError(f"the arguments and environment take {strings:,} bytes; Linux "
                           f"allows at most {STACK_LIMIT // 4:,} (execve would fail with E2BIG)")
    space.map_stack(initial_stack_start(strings))
    # [vvar] and [vdso] sit just below mmap_base on Linux 6.x. We map pages there (zero-filled:
    # vmtrace has no vDSO image) so that mmap places regions where Linux does and AT_SYSINFO_EHDR
    # makes the auxv, hence the initial RSP, exactly Linux's.
    vdso = MMAP_BASE - VDSO_IMAGE_PAGES * PAGE
    space.map(MMAP_BASE - VDSO_PAGES * PAGE, vdso, "r--", "vdso", "[vvar]")
    space.map(vdso, MMAP_BASE, "r-x", "vdso", "[vdso]")

    p = STACK_TOP - 8

    def push_bytes(data: bytes) -> int:
        nonlocal p
        p -= len(data)
        uc.mem_write(p, data)
        return p

    execfn = push_bytes(argv[0].encode() + b"\0")
    env_ptrs = [push_bytes(s.encode() + b"\0") for s in reversed(env)][::-1]
    argv_ptrs = [push_bytes(s.encode() + b"\0") for s in reversed(argv)][::-1]
    p &= ~0xF
    platform = push_bytes(b"x86_64\0")
    rand_addr = push_bytes(random_bytes)
    phdr = _phdr_address(program)
    auxv = [
        (AT_SYSINFO_EHDR, vdso), (AT_MINSIGSTKSZ, 0xD30), (AT_HWCAP, 0x178BFBFF), (AT_PAGESZ, PAGE), (AT_CLKTCK, 100),
        (AT_PHDR, phdr), (AT_PHENT, program.phentsize), (AT_PHNUM, program.phnum),
        (AT_BASE, 0), (AT_FLAGS, 0), (AT_ENTRY, program.entry), (AT_UID, GUEST_UID),
        (AT_EUID, GUEST_UID), (AT_GID, GUEST_UID), (AT_EGID, GUEST_UID), (AT_SECURE, 0),
        (AT_RANDOM, rand_addr), (AT_HWCAP2, 0x2), (AT_EXECFN, execfn),
        (AT_PLATFORM, platform), (AT_RSEQ_FEATURE_SIZE, 0x1C), (AT_RSEQ_ALIGN, 0x20),
        (AT_NULL, 0),
    ]
    words = [len(argv), *argv_ptrs, 0, *env_ptrs, 0]
    for key, value in auxv:
        words += [key, value]
    items = len(argv) + 1 + len(env) + 1 + 1
    sp = ((p - 2 * len(auxv) * 8) - items * 8) & ~0xF
    blob = struct.pack(f"<{len(words)}Q", *words)
    uc.mem_write(sp, blob)
    return LoadedProcess(entry=program.entry, rsp=sp, brk=space.brk, stack_top=STACK_TOP,
                         auxv=tuple(auxv), random_bytes=random_bytes)


def initial_stack_start(strings: int) -> int:
    """Where Linux's [stack] VMA starts at entry: execve copies the execfn, environment and
    argument strings (`strings` bytes) below the top word of the stack, into a VMA covering
    their pages; setup_arg_pages then expands it by 128 KiB (fs/exec.c), or to
    RLIMIT_STACK if that is smaller. Typically 132 KiB."""
    args_start = page_down(STACK_TOP - 8 - strings)
    if STACK_TOP - args_start + STACK_EXPAND > STACK_LIMIT:
        return STACK_TOP - STACK_LIMIT
    return args_start - STACK_EXPAND


def _phdr_address(program: ElfProgram) -> int:
    for seg in program.segments:
        if seg.offset <= program.phoff < seg.offset + seg.filesz:
            return program.phoff - seg.offset + seg.vaddr
    return 0
