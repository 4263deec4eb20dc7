"""Memory at any step, rebuilt from the trace alone: the initial image, then every recorded
write (CPU stores with their values, the kernel's bytes) up to the step, on the map of that
step. Also: who wrote a byte, an address's whole access history, the symbolizer at a step.

Step convention: the state "at step N" is the state before instruction N executes, so it
includes the effects of steps 0..N-1 (a syscall's kernel writes belong to its step)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa

from analysis.symbols import Symbolizer
from analysis.trace import Trace
from analysis.write_index import Write, WriteIndex
from tracer.format.regions import (
    RegionEvent, RegionMap, Segment, initial_event_count, mremap_move,
)


def segments_at(trace: Trace, step: int) -> list[Segment]:
    """The memory map before instruction `step` executes, with where each range's bytes
    come from (the regions events of every earlier syscall applied to the initial map)."""
    events = [RegionEvent.from_row(r) for r in trace.regions.to_pylist()]
    syscalls = trace.syscalls.select(["step", "name", "args", "ret", "detail"]).to_pylist()
    n_initial = initial_event_count(events, syscalls)
    moves = {r["step"]: mremap_move(r["name"], r["args"], r["ret"]) for r in syscalls}
    current = RegionMap()
    for i, ev in enumerate(events):
        initial = i < n_initial
        if not initial and ev.step >= step:
            break
        if initial or ev.action == "grow":
            current = current.apply(ev)
        else:
            current = current.apply(ev, fresh=ev.step, move=moves.get(ev.step))
    return list(current.segments)


@dataclass(frozen=True)
class MemoryView:
    """Bytes of [start, start+len) at a step; `mapped[i]` False where nothing was mapped."""

    start: int
    step: int
    data: bytes
    mapped: tuple[bool, ...]

    def to_json(self) -> dict:
        """The `trace mem --json` document."""
        return {"addr": self.start, "step": self.step, "hex": self.data.hex(),
                "mapped": list(self.mapped)}


class MemoryReader:
    """Reads memory at any step through a built write index. Holds no step of its own."""

    def __init__(self, trace: Trace, index: WriteIndex):
        self.trace = trace
        self.index = index

    @cached_property
    def _image(self) -> list[tuple[int, bytes]]:
        rows = self.trace.table("memory_image", ["start", "data"]).to_pylist()
        return sorted((r["start"], r["data"]) for r in rows)

    def _initial_byte_source(self, start: int, length: int) -> bytearray:
        out = bytearray(length)
        for img_start, data in self._image:
            lo, hi = max(start, img_start), min(start + length, img_start + len(data))
            if lo < hi:
                out[lo - start:hi - start] = data[lo - img_start:hi - img_start]
        return out

    def read(self, start: int, length: int, step: int) -> MemoryView:
        """Memory [start, start+length) before instruction `step` executes."""
        segs = segments_at(self.trace, step)
        buf = self._initial_byte_source(start, length)
        mapped = bytearray(length)
        pieces = []  # (lo, hi, fresh_since) of each mapped piece of the range
        for s in segs:
            lo, hi = max(start, s.start), min(start + length, s.end)
            if lo < hi:
                mapped[lo - start:hi - start] = b"\1" * (hi - lo)
                pieces.append((lo, hi, s.fresh_since))
                if s.moved_from is not None:  # the bytes at the old place, as mremap found them
                    buf[lo - start:hi - start] = self.read(
                        s.moved_from + (lo - s.start), hi - lo, s.fresh_since).data
                elif s.fresh_since is not None:
                    buf[lo - start:hi - start] = bytes(hi - lo)
        for w in self.index.latest_writes(start, length, step):
            lo, hi = max(start, w.addr), min(start + length, w.addr + w.size)
            for plo, phi, fresh in pieces:
                a, b = max(lo, plo), min(hi, phi)
                if a < b and (fresh is None or w.step >= fresh):
                    buf[a - start:b - start] = w.data[a - w.addr:b - w.addr]
        out = bytes(b if m else 0 for b, m in zip(buf, mapped))
        return MemoryView(start, step, out, tuple(bool(m) for m in mapped))

    def who_wrote(self, addr: int, step: int) -> Write | None:
        """The last write into byte `addr` before instruction `step` executes; None when
        the byte still holds its initial value (or the zeros of a fresh mapping), or is not
        mapped at that step."""
        segs = [s for s in segments_at(self.trace, step) if s.start <= addr < s.end]
        if not segs:
            return None
        seg = segs[0]
        fresh = seg.fresh_since
        best = None
        for w in self.index.latest_writes(addr, 1, step):
            if w.covers(addr) and (fresh is None or w.step >= fresh):
                if best is None or w.step >= best.step:
                    best = w
        if best is None and seg.moved_from is not None:
            # Not written since mremap moved it here: whoever wrote it at its old address.
            return self.who_wrote(seg.moved_from + (addr - seg.start), fresh)
        return best


def access_history(trace: Trace, start: int, length: int = 1) -> pa.Table:
    """Every access (CPU and kernel) touching [start, start+length), in execution order."""
    import pyarrow.compute as pc  # imported here: it costs the other queries 0.2 s

    parts = []
    end = start + length
    for batch in trace.files.batches("accesses"):
        addr = batch.column("addr")
        last = pc.add(addr, pc.cast(batch.column("size"), pa.uint64()))
        mask = pc.and_(pc.less(addr, pa.scalar(end, pa.uint64())),
                       pc.greater(last, pa.scalar(start, pa.uint64())))
        if pc.any(mask).as_py():
            parts.append(batch.filter(mask))
    schema = trace.files.record_batch_reader("accesses").schema
    return pa.Table.from_batches(parts, schema=schema)


def symbolizer_at(trace: Trace, step: int) -> Symbolizer:
    """The trace's symbolizer, naming heap, stack and mmap addresses by the map at `step`."""
    return Symbolizer(trace.symbols, trace.lines, segments_at(trace, step), trace.initial_brk)
