"""Where does recording time go? Runs one program in-process several ways, from no hooks to the
full recorder, and prints the time of each stage (the "timing variants" behind bench/notes.md).

    python bench/profile_record.py ELF [--repeat 3]

Variants: Unicorn with no hooks; the native hooks with chunks freed unread; plus Arrow batches
built and dropped; plus writing with zstd (the recorder), lz4, or no compression; and a
prototype of a zero-copy drain (Arrow arrays on the C buffers) writing zstd, with Arrow's
thread pool or on the drain thread alone."""

from __future__ import annotations

import argparse
import ctypes
import gc
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from unicorn import UC_ARCH_X86, UC_HOOK_INSN, UC_MODE_64, Uc
from unicorn.x86_const import UC_X86_INS_SYSCALL, UC_X86_REG_EFLAGS, UC_X86_REG_RIP, UC_X86_REG_RSP

import tracer.format.writer as writer_module
from tracer.address_space import AddressSpace
from tracer.elf import read_elf
from tracer.event_stream import _SOURCES, EventStream
from tracer.format.schema import TABLES
from tracer.format.writer import TableWriter
from tracer.loader import DEFAULT_ENV, build_stack, load_elf
from tracer.syscalls.abi import X86_64
from tracer.syscalls.context import ExitProcess, ProcessState, StdinFile, SyscallContext
from tracer.syscalls.registry import dispatch


class _NullWriter:
    """A TableWriter stand-in that drops batches (measures building them, not writing)."""

    def __init__(self, table: str):
        self.schema = TABLES[table]

    def write(self, batch) -> None:
        pass

    def bytes_written(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _wrap(ptr, nbytes: int) -> pa.Buffer:
    return pa.foreign_buffer(ctypes.cast(ptr, ctypes.c_void_p).value, nbytes)


def _bits(flags: np.ndarray) -> pa.Buffer | None:
    return None if flags.all() else pa.py_buffer(np.packbits(flags, bitorder="little"))


class _TimedStream(EventStream):
    """EventStream that sums the drain thread's busy time; `mode` picks how far it goes."""

    def __init__(self, *args, mode: str, **kwargs):
        self.mode = mode
        self.busy_s = 0.0
        super().__init__(*args, **kwargs)

    def _write_chunk(self, c) -> None:
        start = time.perf_counter()
        if self.mode == "zero-copy":
            self._write_zero_copy(c)
        elif self.mode != "discard":
            super()._write_chunk(c)
        self.busy_s += time.perf_counter() - start

    def _write_zero_copy(self, c) -> None:
        """A prototype of the proposed drain: Arrow arrays straight on the chunk's C buffers
        (written before the chunk is freed); only the bit columns are computed, with numpy."""
        n = c.n_acc
        if n:
            def u64(ptr, validity=None):
                return pa.Array.from_buffers(pa.uint64(), n, [validity, _wrap(ptr, 8 * n)])

            u8 = lambda ptr: np.ctypeslib.as_array(ptr, (n,))  # noqa: E731 (views, no copy)
            write, source, has_value = u8(c.acc_write), u8(c.acc_source), u8(c.acc_has_value)
            size = np.ctypeslib.as_array(c.acc_size, (n,))
            hi_valid = (size == 16) & (source != 2)
            batch = pa.RecordBatch.from_arrays([
                u64(c.acc_step), u64(c.acc_rip), u64(c.acc_addr),
                pa.Array.from_buffers(pa.uint32(), n, [None, _wrap(c.acc_size, 4 * n)]),
                pa.Array.from_buffers(pa.bool_(), n,
                                      [None, pa.py_buffer(np.packbits(write, bitorder="little"))]),
                pa.DictionaryArray.from_arrays(
                    pa.Array.from_buffers(pa.int8(), n, [None, _wrap(c.acc_source, n)]),
                    _SOURCES),
                u64(c.acc_value, _bits(has_value.astype(bool))),
                u64(c.acc_value_hi, pa.py_buffer(np.packbits(hi_valid, bitorder="little"))),
            ], schema=self._accesses.schema)
            self._accesses.write(batch)
        if c.n_rsp:
            EventStream._write_chunk(self, _RspOnly(c))


class _RspOnly:
    """A view of a chunk with its access rows hidden (their batch is already written)."""

    def __init__(self, c):
        self._c = c
        self.n_acc = 0

    def __getattr__(self, name):
        return getattr(self._c, name)


def _engine(elf: Path):
    program = read_elf(elf)
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    space = AddressSpace(uc)
    space.set_initial_brk(load_elf(space, uc, program))
    loaded = build_stack(space, uc, program, [f"./{elf.name}"], list(DEFAULT_ENV), bytes(16))
    uc.reg_write(UC_X86_REG_RSP, loaded.rsp)
    uc.reg_write(UC_X86_REG_EFLAGS, 0x202)
    process = ProcessState(stdin=StdinFile(b""), allow_read=())
    process.files.update({0: process.stdin, 1: "stdout", 2: "stderr"})

    class Sink:
        def kernel_access(self, addr, data, is_write):
            pass

    def on_syscall(uc: Uc, _user) -> None:
        rip = uc.reg_read(UC_X86_REG_RIP)
        args = tuple(uc.reg_read(r) for r in X86_64.args)
        ctx = SyscallContext(uc=uc, space=space, process=process, sink=Sink(), step=0,
                             output=lambda fd, data: None, random=bytes, now_ns=lambda: 0,
                             mapped_file_data=lambda addr, data: None)
        try:
            ret = dispatch(ctx, uc.reg_read(X86_64.number), args, rip)
        except ExitProcess:
            uc.emu_stop()
            return
        uc.reg_write(X86_64.result, ret & 0xFFFF_FFFF_FFFF_FFFF)
        uc.reg_write(X86_64.clobbered_rip, rip + 2)

    uc.hook_add(UC_HOOK_INSN, on_syscall, aux1=UC_X86_INS_SYSCALL)
    return uc, loaded


def run_variant(elf: Path, variant: str, keep: Path | None = None) -> dict:
    uc, loaded = _engine(elf)
    out = keep or Path(tempfile.mkdtemp(prefix="vmtrace-profile-"))
    stream = None
    if variant != "no-hook":
        mode = {"hooks, chunks freed": "discard", "+ Arrow batches": "arrow",
                "zero-copy batches + zstd": "zero-copy",
                "zero-copy + zstd, 1 thread": "zero-copy"}.get(variant, "write")
        if mode in ("write", "zero-copy"):
            codec = "zstd" if mode == "zero-copy" else variant.split()[-1]
            # use_threads=False: compress on the drain thread itself, not on Arrow's pool,
            # which competes with the emulator thread for the second core.
            writer_module._OPTIONS = pa.ipc.IpcWriteOptions(
                compression=None if codec == "none" else codec,
                use_threads=not variant.endswith("1 thread"))
            acc, rsp = TableWriter(out, "accesses"), TableWriter(out, "rsp")
        else:
            acc, rsp = _NullWriter("accesses"), _NullWriter("rsp")
        stream = _TimedStream(uc, acc, rsp, loaded.rsp, None, None, batch_events=1 << 18,
                              mode=mode)
    collections = [0]

    def count(phase, _info):
        if phase == "start":
            collections[0] += 1

    gc.callbacks.append(count)
    start = time.perf_counter()
    uc.emu_start(loaded.entry, 0xFFFF_FFFF_FFFF_FFFF)
    emu = time.perf_counter() - start
    result = {"variant": variant, "emu_s": emu}
    if stream is not None:
        stream.finish(uc.reg_read(UC_X86_REG_RSP))
        result["total_s"] = time.perf_counter() - start
        result["drain_busy_s"] = stream.busy_s
        result["events"] = stream.totals[0]
        stream.close()
        if stream.mode in ("write", "zero-copy"):
            acc.close()
            rsp.close()
            result["bytes_per_event"] = acc.path.stat().st_size / max(result["events"], 1)
    else:
        result["total_s"] = emu
    gc.callbacks.remove(count)
    result["gc_runs"] = collections[0]
    if keep is None:
        for f in out.iterdir():
            f.unlink()
        out.rmdir()
    return result


def check_zero_copy(elf: Path) -> bool:
    """The zero-copy prototype writes the same tables as the recorder's own drain."""
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "a"), Path(tmp, "b")
        a.mkdir()
        b.mkdir()
        run_variant(elf, "+ write zstd", keep=a)
        run_variant(elf, "zero-copy batches + zstd", keep=b)
        return all(pa.ipc.open_stream(a / f).read_all().equals(
                   pa.ipc.open_stream(b / f).read_all()) for f in ("accesses.arrows", "rsp.arrows"))


VARIANTS = ("no-hook", "hooks, chunks freed", "+ Arrow batches", "+ write zstd",
            "+ write lz4", "+ write none", "zero-copy batches + zstd",
            "zero-copy + zstd, 1 thread")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elf", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check", action="store_true",
                        help="only check that the zero-copy prototype writes identical tables")
    args = parser.parse_args()
    if args.check:
        same = check_zero_copy(args.elf)
        print("zero-copy prototype tables identical:", same)
        sys.exit(0 if same else 1)
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeat):
        for v in VARIANTS:  # interleaved, so noise from other processes lands on all alike
            results[v].append(run_variant(args.elf, v))
    base = statistics.median(r["total_s"] for r in results["no-hook"])
    print(f"{'variant':<26} {'emu s':>7} {'total s':>8} {'÷no-hook':>9} {'drain busy s':>13} "
          f"{'Mev/s':>7} {'B/event':>8} {'gc runs':>8}   (medians of {args.repeat}; "
          f"{threading.active_count()} threads left)")
    for v, rs in results.items():
        def med(key):
            vals = [r[key] for r in rs if key in r]
            return statistics.median(vals) if vals else None
        total, events = med("total_s"), med("events")
        print(f"{v:<26} {med('emu_s'):7.2f} {total:8.2f} {total / base:8.1f}x "
              f"{med('drain_busy_s') or 0:13.2f} "
              f"{(events or 0) / total / 1e6:7.2f} {med('bytes_per_event') or 0:8.2f} "
              f"{med('gc_runs'):8.0f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
