"""Connects the native recorder to the trace files: installs the C hooks on a Unicorn engine
and, on a second thread, turns each full chunk of events into Arrow batches on disk.

Python runs here once per chunk (about a million events), never per access."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import pyarrow as pa
from unicorn import Uc, UcError
from unicorn import x86_const

from tracer import native
from tracer.block_decode import block_decoder
from tracer.fetch_ahead import NO_END
from tracer.classify import KERNEL, AlignedOperand, InstructionClassifier
from tracer.format.build import array
from tracer.ending import StopReason
from tracer.format.layout import DELTA_COLUMNS, STORED
from tracer.format.schema import RSP_CAUSES, SOURCES
from tracer.format.writer import TableWriter
from tracer.interrupts import NativeFault
from tracer.limits import TraceBudget



class NativeStopCode(IntEnum):
    """Why the native hooks stopped the run (recorder.c STOP_*; tests/test_native_recorder.py
    checks the numbers)."""

    NONE = 0
    MAX_STEPS = 1   # the max_steps given to vm_new
    REQUESTED = 2   # request_stop: its cause says why
    FAULT = 3       # a fault raised before the instruction ran (NativeStop)


_SOURCES = array(SOURCES, pa.string())
_CAUSES = array(RSP_CAUSES, pa.string())


def _address(ptr) -> int:
    return ctypes.cast(ptr, ctypes.c_void_p).value or 0


def _numeric(ptr, n: int, itemsize: int, type_: pa.DataType,
             validity: pa.Buffer | None = None) -> pa.Array:
    """An Arrow array over a C column without copying it (the chunk outlives the write)."""
    data = pa.foreign_buffer(_address(ptr), n * itemsize)
    return pa.Array.from_buffers(type_, n, [validity, data])


def _bitmap(pack: Callable[[int], int], n: int) -> pa.Buffer | None:
    """A bitmap `pack(address)` fills in for n rows (recorder.c vm_pack_bits and kin); None
    when every bit is set (no validity bitmap needed). The drain thread packs in C: the
    record process never loads numpy (see vmtrace/cli.py)."""
    bits = pa.allocate_buffer((n + 7) // 8)
    return None if pack(bits.address) == n else bits


def _register_id(name: str | None) -> int:
    if name is None:
        return 0
    if name in ("fs", "gs"):
        name += "_base"
    return getattr(x86_const, f"UC_X86_REG_{name.upper()}")


def _fill_operand(out, operand: AlignedOperand) -> None:
    """Writes a classified operand into recorder.c's `mem_operand`."""
    out.disp = operand.disp
    out.base = _register_id(operand.base)
    out.index = _register_id(operand.index)
    out.seg_base = _register_id(operand.segment)
    out.scale = operand.scale
    out.align = operand.align
    out.write = int(operand.write)
    out.addr32 = int(operand.addr32)

@dataclass(frozen=True)
class StackGrowth:
    """The stack VMA grew down to `start` at `step` (an access below it, in its limit)."""

    step: int
    start: int


@dataclass(frozen=True)
class NativeStop:
    """A fault the native hooks raised before an instruction ran (recorder.c FAULT_*)."""

    fault: NativeFault
    rip: int
    address: int | None  # the misaligned operand, for an alignment fault
    is_write: bool


@dataclass(frozen=True)
class Progress:
    """How far a recording has got, reported after each chunk is written."""

    steps: int
    events: int
    bytes_written: int
    seconds: float


class EventStream:
    """Owns the native recorder for one run: its hooks, its queue and its drain thread."""

    def __init__(self, uc: Uc, accesses: TableWriter, rsp: TableWriter, initial_rsp: int,
                 max_steps: int | None, budget: TraceBudget | None,
                 batch_events: int = 1 << 20, max_pending: int = 4,
                 progress: Callable[[Progress], None] | None = None,
                 stack: tuple[int, int] | None = None, blocks: bool = False):
        """`stack`: (lowest address the stack may grow to, start of its VMA), to report
        each growth (`take_growth`); None tracks none. `blocks`: count steps per
        translated block (recorder.c `vm_new_blocks`, same tables, no per-instruction
        hook); the caller then runs the engine with `run`, which resumes where the block
        hook stopped it to put a block on the exact path."""
        self._lib = native.load()
        self._progress = progress
        self._started = time.monotonic()
        self._events_written = 0
        self._uc = uc
        self._accesses = accesses
        self._rsp = rsp
        classifier = InstructionClassifier()

        def classify(rip: int, code, length: int, operand) -> int:
            flags, aligned = classifier.classify(rip, ctypes.string_at(code, length))
            if aligned is not None:
                _fill_operand(operand.contents, aligned)
            return flags

        # Kept on self: the C side calls it for every new instruction address.
        self._classify = native.CLASSIFY_FN(classify)
        self._budget = budget
        self._stop_lock = threading.Lock()
        self._stop_cause: StopReason | None = None
        self.error: BaseException | None = None
        handle = ctypes.c_void_p(uc._uch.value)
        cap_rsp = max(batch_events // 4, 1024)
        # Where the drain thread puts the stored halves of the difference columns
        # (tracer/format/layout.py), by (table, column), reused for every chunk (each batch is
        # written before the next is built). Allocated at a chunk's size when first needed:
        # Arrow's allocator touches what it allocates, ~60 ms for full-size chunks at the
        # start of every recording, however short.
        self._halves: dict[tuple[str, str], tuple[pa.Buffer, pa.Buffer]] = {}
        if blocks:
            self._decode = block_decoder(classifier)
            self._r = self._lib.vm_new_blocks(handle, batch_events, cap_rsp, max_pending,
                                              max_steps or 0, initial_rsp, self._classify,
                                              self._decode)
            self._f = self._lib.vm_fast(self._r)
        else:
            self._r = self._lib.vm_new(handle, batch_events, cap_rsp, max_pending,
                                       max_steps or 0, initial_rsp, self._classify)
            self._f = None
        if stack is not None:
            self._lib.vm_set_stack(self._r, *stack)
        status = (self._lib.vm_install_blocks if blocks else self._lib.vm_install)(self._r)
        if status != 0:
            raise RuntimeError(f"installing the native hooks failed (unicorn error {status})")
        if max_steps == 0:
            # The C side reads 0 as "no limit"; replaying a trace that stopped before its
            # first step needs a stop before it.
            self.request_stop(StopReason.MAX_STEPS)
        self._thread = threading.Thread(target=self._drain, name="vmtrace-drain", daemon=True)
        self._thread.start()

    # -- called from the emulator thread --------------------------------------------------
    def run(self, start: int, keep_going: Callable[[], bool] = lambda: True,
            run_until: Callable[[], int | None] = lambda: None) -> None:
        """Emulates from `start` until the program stops; in block mode it resumes each
        time the block hook stopped before a block to put it on the exact path (as long as
        `keep_going()`: no ending, no hook error). After a UcError, `run_until()` may name
        an instruction to run up to and resume from (tracer/fetch_ahead.py); else the
        UcError propagates."""
        uc, rip, until = self._uc, start, NO_END
        while True:
            try:
                uc.emu_start(rip, until)
            except UcError:
                until = run_until()
                if until is None:
                    raise
                rip = uc.reg_read(x86_const.UC_X86_REG_RIP)
                continue
            rip = uc.reg_read(x86_const.UC_X86_REG_RIP)
            if until != NO_END and rip == until and keep_going():
                until = NO_END  # stopped where asked: resume from there
                continue
            until = NO_END
            if not keep_going() or not self.resume_pending():
                return

    def resume_pending(self) -> bool:
        """After emu_start returned: when the block hook stopped it to put a block on the
        exact path, does so and returns True (the caller resumes at RIP)."""
        if self._f is None or not self._lib.fr_pending(self._f):
            return False
        status = self._lib.fr_apply(self._f)
        if status != 0:
            raise RuntimeError(f"adding the exact step hook failed (unicorn error {status})")
        return True

    def invalidate(self, start: int, end: int) -> None:
        """The code in [start, end) may have changed (a region event): block mode decodes
        its blocks again when they next run."""
        if self._f is not None:
            self._lib.fr_invalidate(self._f, start, end)

    @property
    def step(self) -> int:
        """Index of the instruction being executed."""
        return self._lib.vm_step(self._r)

    @property
    def instructions(self) -> int:
        return self._lib.vm_steps(self._r)

    @property
    def stopped_by_limit(self) -> StopReason | None:
        """Why the native hook stopped the run: `max-steps`, or the cause given to
        `request_stop`; None when it did not stop it (or the drain thread failed)."""
        code = self._lib.vm_stop_reason(self._r)
        if code == NativeStopCode.MAX_STEPS:
            return StopReason.MAX_STEPS
        if code == NativeStopCode.REQUESTED and self._stop_cause != StopReason.ERROR:
            return self._stop_cause
        return None

    def request_stop(self, cause: StopReason) -> None:
        """Stops the run before its next instruction; any thread may call it, the first
        cause is the one reported."""
        with self._stop_lock:
            if self._stop_cause is None:
                self._stop_cause = cause
            self._lib.vm_request_stop(self._r)

    @property
    def native_stop(self) -> NativeStop | None:
        """The fault the run stopped before (privileged, undefined, int1, misaligned)."""
        if self._lib.vm_stop_reason(self._r) != NativeStopCode.FAULT:
            return None
        fault = NativeFault(self._lib.vm_stop_fault(self._r))
        address = (self._lib.vm_stop_address(self._r) if fault == NativeFault.MISALIGNED
                   else None)
        return NativeStop(fault, self._lib.vm_stop_rip(self._r), address,
                          bool(self._lib.vm_stop_write(self._r)))

    def take_growth(self) -> list[StackGrowth]:
        """The stack growths since the last call, oldest first."""
        n = self._lib.vm_growth_pending(self._r)
        if not n:
            return []
        steps, starts = (ctypes.c_uint64 * n)(), (ctypes.c_uint64 * n)()
        got = self._lib.vm_take_growth(self._r, steps, starts, n)
        return [StackGrowth(a, b) for a, b in zip(steps[:got], starts[:got])]

    def kernel_access(self, addr: int, data: bytes, is_write: bool) -> None:
        size = len(data)
        value = int.from_bytes(data[:8].ljust(8, b"\0"), "little") if size <= 8 else 0
        self._lib.vm_append_kernel(self._r, addr, size, int(is_write), value, int(size <= 8))

    def discard_current(self) -> None:
        """Forgets the accesses of the instruction being executed (it faulted)."""
        self._lib.vm_discard_current(self._r)

    def check_rsp(self, rsp: int) -> None:
        """Records an RSP change made by the instruction before (at syscalls and the end)."""
        self._lib.vm_check_rsp(self._r, rsp)

    def finish(self, final_rsp: int) -> None:
        """Records the last RSP change, flushes the partial chunk, waits for the writer."""
        self._lib.vm_check_rsp(self._r, final_rsp)
        if self._f is not None and self._lib.vm_misattributed(self._r):
            # Unicorn restores RIP before every memory hook; an access at a RIP outside its
            # block would be given the wrong step: say so rather than write it.
            self.error = self.error or RuntimeError(
                f"{self._lib.vm_misattributed(self._r)} accesses came from no instruction of "
                f"their block (block mode): this is a bug in vmtrace")
        self._lib.vm_close(self._r)
        self._thread.join()
        self._lib.vm_uninstall(self._r)

    def exec_counts(self) -> tuple[list[int], list[int]]:
        """(RIPs in increasing order, how many times each ran): one entry per distinct
        instruction address, a few thousand even for a libc program."""
        n = self._lib.vm_exec_count_size(self._r)
        keys, counts = (ctypes.c_uint64 * n)(), (ctypes.c_uint64 * n)()
        got = self._lib.vm_exec_counts(self._r, keys, counts, n)
        pairs = sorted(zip(keys[:got], counts[:got]))
        return [rip for rip, _ in pairs], [count for _, count in pairs]

    def close(self) -> None:
        self._lib.vm_free(self._r)
        self._r = None

    def access_counts(self) -> dict[str, dict[str, int]]:
        """Access rows by source and direction, as `end.access_counts` in meta.json (only
        the sources that occur)."""
        counts = {}
        for code, name in enumerate(SOURCES):
            read = self._lib.vm_count_by_kind(self._r, code, 0)
            write = self._lib.vm_count_by_kind(self._r, code, 1)
            if read or write:
                counts[name] = {"read": read, "write": write}
        return counts

    @property
    def lowest_rsp(self) -> int:
        """The lowest RSP the run reached (the initial one if it never went lower)."""
        return self._lib.vm_lowest_rsp(self._r)

    @property
    def totals(self) -> tuple[int, int]:
        return self._lib.vm_total_accesses(self._r), self._lib.vm_total_rsp(self._r)

    # -- the drain thread ---------------------------------------------------------------
    def _drain(self) -> None:
        try:
            while True:
                chunk_ptr = self._lib.vm_take(self._r)
                if not chunk_ptr:
                    return
                try:
                    last_step = chunk_ptr.contents.last_step
                    self._write_chunk(chunk_ptr.contents)
                finally:
                    self._lib.vm_release(self._r, chunk_ptr)
                written = self._accesses.bytes_written() + self._rsp.bytes_written()
                cause = None
                if self._budget is not None:
                    cause = self._budget.report("events", written)
                    written = self._budget.total  # every file of the trace
                if cause is not None:
                    self.request_stop(cause)
                if self._progress is not None:
                    self._progress(Progress(
                        steps=last_step, events=self._events_written, bytes_written=written,
                        seconds=time.monotonic() - self._started))
        except BaseException as exc:  # surfaced by the recorder after the run
            self.error = exc
            self.request_stop(StopReason.ERROR)  # not a limit: `error` is raised instead
            # Keep draining so the emulator thread never blocks on a full queue.
            while (chunk_ptr := self._lib.vm_take(self._r)):
                self._lib.vm_chunk_free(chunk_ptr)

    def _column(self, table: str, name: str, ptr, n: int, stored: bool) -> list[pa.Array]:
        """A C uint64 column: as is, or in the stored layout (its differences' low and high
        int32 halves, tracer/format/layout.py)."""
        if not stored:
            return [_numeric(ptr, n, 8, pa.uint64())]
        halves = self._halves.get((table, name))
        if halves is None or halves[0].size < n * 4:
            halves = self._halves[table, name] = (pa.allocate_buffer(n * 4),
                                                  pa.allocate_buffer(n * 4))
        low, high = halves
        self._lib.vm_split(_address(ptr), n, low.address, high.address)
        return [pa.Array.from_buffers(pa.int32(), n, [None, half.slice(0, n * 4)])
                for half in (low, high)]

    @staticmethod
    def _emit(sink, table: str, columns: dict[str, list[pa.Array]], stored: bool) -> None:
        """Writes one batch: in the stored layout to a TableWriter, else (a sink that only
        has `write`, such as replay verification's) with the table's own schema."""
        if stored:
            arrays = [c[0] for c in columns.values()]
            arrays += [columns[name][1] for name in DELTA_COLUMNS[table]]
            sink.write_stored(pa.RecordBatch.from_arrays(arrays, schema=STORED[table]))
        else:
            sink.write(pa.RecordBatch.from_arrays([c[0] for c in columns.values()],
                                                  schema=sink.schema))

    def _write_chunk(self, c: native.Chunk) -> None:
        u64, n = pa.uint64(), c.n_acc
        if n:
            stored = hasattr(self._accesses, "write_stored")
            lib = self._lib
            is_write = pa.allocate_buffer((n + 7) // 8)
            lib.vm_pack_bits(_address(c.acc_write), n, is_write.address)
            has_value = _bitmap(lambda out: lib.vm_pack_bits(_address(c.acc_has_value), n, out), n)
            wide = _bitmap(lambda out: lib.vm_wide_bits(_address(c.acc_size),
                                                        _address(c.acc_source), n, KERNEL, out), n)
            self._emit(self._accesses, "accesses", {
                "step": self._column("accesses", "step", c.acc_step, n, stored),
                "rip": self._column("accesses", "rip", c.acc_rip, n, stored),
                "addr": [_numeric(c.acc_addr, n, 8, u64)],
                "size": [_numeric(c.acc_size, n, 4, pa.uint32())],
                "is_write": [pa.Array.from_buffers(pa.bool_(), n, [None, is_write])],
                "source": [pa.DictionaryArray.from_arrays(
                    _numeric(c.acc_source, n, 1, pa.int8()), _SOURCES)],
                "value": [_numeric(c.acc_value, n, 8, u64, has_value)],
                "value_hi": [_numeric(c.acc_value_hi, n, 8, u64, wide)],
            }, stored)
            self._events_written += n
        m = c.n_rsp
        if m:
            stored = hasattr(self._rsp, "write_stored")
            self._emit(self._rsp, "rsp", {
                "step": self._column("rsp", "step", c.rsp_step, m, stored),
                "rip": self._column("rsp", "rip", c.rsp_rip, m, stored),
                "old": self._column("rsp", "old", c.rsp_old, m, stored),
                "new": self._column("rsp", "new", c.rsp_new, m, stored),
                "cause": [pa.DictionaryArray.from_arrays(
                    _numeric(c.rsp_cause, m, 1, pa.int8()), _CAUSES)],
            }, stored)
