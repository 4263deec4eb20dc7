"""The writes of a trace whose event tables are pending (recorded with `--fast`), slice by
slice: a question about memory near a step materialises only the keyframe slices it needs
(tracer/replay/materialise.py), each once, cached beside the trace like the replay index,
and answers it through the same write index (analysis/write_index.py)."""

from __future__ import annotations

import bisect
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from analysis.trace import Trace
from analysis.write_index import Write, WriteIndex, build_write_index
from tracer.format.cache import remove
from tracer.format.deltas import decode
from tracer.format.schema import FORMAT_VERSION
from tracer.replay.keyframes import TraceKeyframes
from tracer.replay.materialise import SliceTask, materialise_slice, plan_slices

_DONE = "done"


class _OneSlice:
    """What build_write_index reads, for one slice: its accesses and the syscalls and
    kernel writes of its steps."""

    def __init__(self, trace: Trace, accesses: Path, first: int, end: int):
        self.files = self
        self._trace, self._accesses, self._first, self._end = trace, accesses, first, end

    def batches(self, table: str, columns: list[str] | None = None):
        """(TraceFiles protocol) the slice's accesses."""
        assert table == "accesses"
        with pa.memory_map(str(self._accesses)) as source:
            for batch in pa.ipc.open_stream(source):
                # The slice's file is in the stored layout of this version (materialise).
                batch = decode("accesses", FORMAT_VERSION, batch, str(self._accesses))
                yield batch.select(columns) if columns else batch

    @property
    def syscalls(self) -> pa.Table:
        return self._trace.syscalls

    def table(self, name: str) -> pa.Table:
        """(Trace protocol) the kernel writes of the slice's steps."""
        assert name == "kernel_writes"
        t = self._trace.table(name)
        step = t.column("step")
        return t.filter(pc.and_(pc.greater_equal(step, self._first),
                                pc.less_equal(step, self._end)))


class SliceWrites:
    """The write-index queries (`latest_writes`, `next_write`) of a pending trace, from
    the slices (one per keyframe) that the question reaches, nearest first."""

    def __init__(self, trace: Trace, directory: Path):
        """Args:
            trace: a pending trace.
            directory: where its slices' indexes are kept (the trace's cache directory).
        """
        self._trace = trace
        self._dir = directory
        steps = TraceKeyframes(trace.files).steps()
        self._plan = plan_slices(steps, trace.meta.end.instructions, len(steps))
        self._firsts = [a for a, _ in self._plan]
        self._open: dict[int, WriteIndex] = {}
        self.materialised: list[int] = []  # slices this object replayed (the rest: cached)

    def _slice_of(self, step: int) -> int:
        return max(bisect.bisect_right(self._firsts, step) - 1, 0)

    def _index(self, k: int) -> WriteIndex:
        if k in self._open:
            return self._open[k]
        target = self._dir / f"slice-{k}"
        if not (target / _DONE).is_file():
            first, end = self._plan[k]
            tmp = target.with_name(target.name + f".building-{os.getpid()}")
            remove(tmp)
            tmp.mkdir(parents=True)
            done = materialise_slice(SliceTask(str(self._trace.path), k, first, end,
                                               k == len(self._plan) - 1, str(tmp)))
            build_write_index(_OneSlice(self._trace, Path(done.accesses_file), first, end),
                              tmp)
            os.unlink(done.accesses_file)
            os.unlink(done.rsp_file)
            (tmp / _DONE).write_text("")
            remove(target)
            try:
                os.replace(tmp, target)
            except OSError:  # another process built it meanwhile
                remove(tmp)
            self.materialised.append(k)
        self._open[k] = WriteIndex(target)
        return self._open[k]

    def latest_writes(self, start: int, length: int, before: int) -> list[Write]:
        """As WriteIndex.latest_writes: slices are read backwards from the one holding
        step `before - 1` until every byte of the range has a write (or step 0)."""
        out: list[Write] = []
        covered = bytearray(length)
        k = self._slice_of(max(before - 1, 0))
        while k >= 0 and before > 0:
            found = self._index(k).latest_writes(start, length, before)
            out.extend(found)
            for w in found:
                lo, hi = max(start, w.addr), min(start + length, w.addr + w.size)
                covered[lo - start:hi - start] = b"\1" * max(hi - lo, 0)
            if all(covered):
                break
            k -= 1
        out.sort(key=lambda w: w.step)
        return out

    def next_write(self, addr: int, from_step: int) -> Write | None:
        """As WriteIndex.next_write: slices are read forwards from the one holding
        `from_step` until one has a write into byte `addr`."""
        for k in range(self._slice_of(from_step), len(self._plan)):
            found = self._index(k).next_write(addr, from_step)
            if found is not None:
                return found
        return None
