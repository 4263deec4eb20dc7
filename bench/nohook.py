"""The emulation ceiling: runs a static ELF in Unicorn with tracer's loader and syscall layer
but no code or memory hooks, so it measures what Unicorn alone costs for the program.

The one hook is on the `syscall` instruction (Python once per syscall, as in the recorder);
the run stops at exit/exit_group. Prints one JSON line: exit code, emulation seconds."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from unicorn import UC_ARCH_X86, UC_HOOK_INSN, UC_MODE_64, Uc
from unicorn.x86_const import UC_X86_INS_SYSCALL, UC_X86_REG_EFLAGS, UC_X86_REG_RIP, UC_X86_REG_RSP

from tracer.address_space import AddressSpace
from tracer.cpu import start_like_linux
from tracer.elf import read_elf
from tracer.loader import DEFAULT_ENV, build_stack, load_elf
from tracer.syscalls.abi import X86_64
from tracer.syscalls.context import ExitProcess, ProcessState, StdinFile, SyscallContext
from tracer.syscalls.registry import dispatch


class _NoSink:
    """Kernel-side accesses are not recorded here."""

    def kernel_access(self, addr: int, data: bytes, is_write: bool) -> None:
        pass


def run(elf: Path) -> dict:
    """Loads and runs `elf` to its exit.

    Args:
        elf: a static x86-64 ELF.

    Returns:
        `{"exit_code": int | None, "emulation_s": float}`.
    """
    program = read_elf(elf)
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    start_like_linux(uc)  # as the recorder does: x87/SSE control words, CPUID
    space = AddressSpace(uc)
    space.set_initial_brk(load_elf(space, uc, program))
    rng = random.Random(0)
    loaded = build_stack(space, uc, program, [f"./{elf.name}"], list(DEFAULT_ENV),
                         rng.randbytes(16))
    uc.reg_write(UC_X86_REG_RSP, loaded.rsp)
    uc.reg_write(UC_X86_REG_EFLAGS, 0x202)
    process = ProcessState(stdin=StdinFile(b""), allow_read=())
    process.files.update({0: process.stdin, 1: "stdout", 2: "stderr"})
    result: dict = {"exit_code": None}

    def on_syscall(uc: Uc, _user) -> None:
        rip = uc.reg_read(UC_X86_REG_RIP)
        nr = uc.reg_read(X86_64.number)
        args = tuple(uc.reg_read(r) for r in X86_64.args)
        ctx = SyscallContext(uc=uc, space=space, process=process, sink=_NoSink(), step=0,
                             output=lambda fd, data: None, random=rng.randbytes,
                             now_ns=lambda: 0, mapped_file_data=lambda addr, data: None)
        try:
            ret = dispatch(ctx, nr, args, rip)
        except ExitProcess as done:
            result["exit_code"] = done.code
            uc.emu_stop()
            return
        uc.reg_write(X86_64.result, ret & 0xFFFF_FFFF_FFFF_FFFF)
        uc.reg_write(X86_64.clobbered_rip, rip + 2)
        uc.reg_write(X86_64.clobbered_flags, uc.reg_read(UC_X86_REG_EFLAGS))

    uc.hook_add(UC_HOOK_INSN, on_syscall, aux1=UC_X86_INS_SYSCALL)
    start = time.perf_counter()
    uc.emu_start(loaded.entry, 0xFFFF_FFFF_FFFF_FFFF)
    result["emulation_s"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("elf", type=Path)
    result = run(parser.parse_args().elf)
    print(json.dumps(result))
    sys.exit(0 if result["exit_code"] is not None else 1)


if __name__ == "__main__":
    main()
