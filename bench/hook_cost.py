"""What do Unicorn's hooks cost by themselves? Runs one program with empty C hooks (a code hook,
memory hooks, or both) and no recording at all, next to no hooks; the floor under any recorder.

    python bench/hook_cost.py ELF [--repeat 3]

The C hooks are compiled into bench/out/ against the unicorn wheel, as tracer.native does."""

from __future__ import annotations

import argparse
import ctypes
import statistics
import subprocess
import time
from pathlib import Path

from unicorn import (
    UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_MEM_READ, UC_HOOK_MEM_READ_AFTER, UC_HOOK_MEM_WRITE,
)
from unicorn.x86_const import UC_X86_REG_RSP

from profile_record import _engine
from tracer.native import _unicorn_dirs

SOURCE = r"""
#include <stdint.h>
#include <unicorn/unicorn.h>
uint64_t n_code, n_mem, sink;
static void on_code(uc_engine *uc, uint64_t a, uint32_t s, void *u) { n_code++; sink += a; }
static void on_code_rsp(uc_engine *uc, uint64_t a, uint32_t s, void *u) {
    uint64_t rsp; uc_reg_read(uc, UC_X86_REG_RSP, &rsp); n_code++; sink += rsp; }
static void on_mem(uc_engine *uc, uc_mem_type t, uint64_t a, int s, int64_t v, void *u) {
    n_mem++; sink += a ^ (uint64_t)v; }
static void on_mem_rip(uc_engine *uc, uc_mem_type t, uint64_t a, int s, int64_t v, void *u) {
    uint64_t rip; uc_reg_read(uc, UC_X86_REG_RIP, &rip); n_mem++; sink += a ^ rip; }
int add_hook(uc_engine *uc, int type, int which) {
    uc_hook h;
    void *cb = which == 0 ? (void *)on_code : which == 1 ? (void *)on_code_rsp
             : which == 2 ? (void *)on_mem : (void *)on_mem_rip;
    return uc_hook_add(uc, &h, type, cb, 0, 1, 0);
}
"""

OUT = Path(__file__).resolve().parent / "out"


def _library() -> ctypes.CDLL:
    OUT.mkdir(exist_ok=True)
    src, lib = OUT / "hook_cost.c", OUT / "hook_cost.so"
    src.write_text(SOURCE)
    include, libdir = _unicorn_dirs()
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", f"-I{include}", str(src), "-o", str(lib),
                    f"-L{libdir}", "-l:libunicorn.so.2", f"-Wl,-rpath,{libdir}"], check=True)
    dll = ctypes.CDLL(str(lib))
    dll.add_hook.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    return dll


VARIANTS = {
    "no hooks": [],
    "code hook (empty)": [(UC_HOOK_CODE, 0)],
    "code hook reading RSP": [(UC_HOOK_CODE, 1)],
    "mem hooks READ+WRITE": [(UC_HOOK_MEM_READ, 2), (UC_HOOK_MEM_WRITE, 2)],
    "mem hooks READ_AFTER+WRITE": [(UC_HOOK_MEM_READ_AFTER, 2), (UC_HOOK_MEM_WRITE, 2)],
    "code + READ_AFTER + WRITE": [(UC_HOOK_CODE, 0), (UC_HOOK_MEM_READ_AFTER, 2),
                                  (UC_HOOK_MEM_WRITE, 2)],
    # A block hook in place of the code hook: what a recorder that derives steps per
    # block (and reads RIP only in the memory hooks) would stand on.
    "block hook (empty)": [(UC_HOOK_BLOCK, 0)],
    "block + READ_AFTER + WRITE": [(UC_HOOK_BLOCK, 0), (UC_HOOK_MEM_READ_AFTER, 2),
                                   (UC_HOOK_MEM_WRITE, 2)],
    "block + mem hooks reading RIP": [(UC_HOOK_BLOCK, 0), (UC_HOOK_MEM_READ_AFTER, 3),
                                      (UC_HOOK_MEM_WRITE, 3)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elf", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dll = _library()
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeat):
        for name, hooks in VARIANTS.items():
            uc, loaded = _engine(args.elf)
            for kind, which in hooks:
                assert dll.add_hook(uc._uch.value, kind, which) == 0
            start = time.perf_counter()
            uc.emu_start(loaded.entry, 0xFFFF_FFFF_FFFF_FFFF)
            times[name].append(time.perf_counter() - start)
            uc.reg_read(UC_X86_REG_RSP)
    base = statistics.median(times["no hooks"])
    print(f"{'variant':<28} {'emu s':>7} {'÷no hooks':>10}   (medians of {args.repeat})")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:<28} {t:7.2f} {t / base:9.1f}x")


if __name__ == "__main__":
    main()
