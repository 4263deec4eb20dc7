"""Keyframes: the full CPU state and every non-zero page of memory every K steps, so that
the state at any step is one keyframe restore plus fewer than K re-executed instructions.

Stored beside the trace (the caller picks the directory) as Arrow IPC files; pages are
deduplicated by content across keyframes, so an unchanged page is stored once."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import unicorn
from unicorn import UC_ARCH_X86, UC_MODE_64
from unicorn.unicorn_py3.unicorn import UcContext

from tracer.format import TraceFiles
from tracer.format.schema import KEYFRAMES, PAGES
from tracer.replay.inputs import RecordedInputs, load_inputs
from tracer.format.regions import PAGE
from tracer.native import nonzero_pages
from tracer.replay.machine import ReplayError, ReplayMachine

KEYFRAMES_FILE = "keyframes.arrow"
PAGES_FILE = "pages.arrow"
DEFAULT_EVERY = 1 << 16  # a seek replays at most 65,536 steps (a few ms); 10 M steps: 156 keyframes, +1 MB

_KEYFRAMES = KEYFRAMES
_PAGES = PAGES


def build_keyframes(files: TraceFiles, directory: Path, every: int = DEFAULT_EVERY,
                    inputs: RecordedInputs | None = None) -> dict[str, int]:
    """Re-executes the run once and writes a keyframe every `every` steps.

    Returns:
        `keyframes`, `pages` (distinct pages stored) and `page_refs`.
    """
    frames, pages, stats = collect_keyframes(files, every, inputs)
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / KEYFRAMES_FILE, frames)
    _write(directory / PAGES_FILE, pages)
    return stats


def collect_keyframes(files: TraceFiles, every: int = DEFAULT_EVERY,
                      inputs: RecordedInputs | None = None
                      ) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """Re-executes the run once and takes a keyframe every `every` steps.

    Returns:
        The keyframes and pages tables, and `keyframes`, `pages` (distinct pages stored),
        `page_refs` and `every`.
    """
    inputs = inputs or load_inputs(files)
    machine = ReplayMachine(inputs)
    machine.load_initial()
    page_ids: dict[bytes, int] = {}
    frames = {name: [] for name in _KEYFRAMES.names}
    refs = 0
    step = 0
    last = inputs.instructions
    while True:
        addrs, ids = _snapshot_pages(machine, page_ids)
        refs += len(addrs)
        for name, value in (("step", step), ("context", bytes(machine.uc.context_save())),
                            ("cursor", machine.cursor), ("heap_end", machine.heap_end),
                            ("page_addr", addrs), ("page_id", ids)):
            frames[name].append(value)
        if step + every > last:
            break
        machine.run(every)
        step += every
        if machine.ending is not None:
            break
    pages = sorted(page_ids, key=page_ids.get)
    return (pa.table(frames, schema=_KEYFRAMES), pa.table({"data": pages}, schema=_PAGES),
            {"keyframes": len(frames["step"]), "pages": len(pages), "page_refs": refs,
             "every": every})


def _write(path: Path, table: pa.Table) -> None:
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema,
                                                               options=options) as writer:
        writer.write_table(table)


def _snapshot_pages(machine: ReplayMachine, page_ids: dict[bytes, int]
                    ) -> tuple[list[int], list[int]]:
    addrs: list[int] = []
    ids: list[int] = []
    for start, end, _prot in machine.mapped():
        raw = machine.uc.mem_read(start, end - start)  # a bytearray
        for k in nonzero_pages(raw, PAGE):
            pid = page_ids.setdefault(bytes(raw[k * PAGE:(k + 1) * PAGE]), len(page_ids))
            addrs.append(start + k * PAGE)
            ids.append(pid)
    return addrs, ids


@dataclass(frozen=True)
class Keyframes:
    """An opened keyframe store."""

    directory: Path

    def steps(self) -> list[int]:
        """The steps that have a keyframe, in order."""
        table = pa.ipc.open_file(pa.memory_map(str(self.directory / KEYFRAMES_FILE))).read_all()
        return table.column("step").to_pylist()

    def nearest(self, step: int) -> dict:
        """The last keyframe at or before `step`, as a row (step, context, cursor, ...)."""
        table = pa.ipc.open_file(pa.memory_map(str(self.directory / KEYFRAMES_FILE))).read_all()
        steps = table.column("step").to_pylist()  # (to_numpy would import pandas)
        i = bisect.bisect_right(steps, step) - 1
        return table.slice(i, 1).to_pylist()[0]

    def pages(self, ids: list[int]) -> list[bytes]:
        """The bytes of the stored pages with these ids."""
        table = pa.ipc.open_file(pa.memory_map(str(self.directory / PAGES_FILE))).read_all()
        data = table.column("data")
        # Row by row: Array.take would load pyarrow.compute (and pandas), slower than this.
        return [data[i].as_py() for i in ids]


class TraceKeyframes:
    """The keyframes a fast recording keeps inside its trace (keyframes.arrows, pages.arrows),
    with the queries of `Keyframes`."""

    def __init__(self, files: TraceFiles):
        """Reads them (checked against meta.json's `files`).

        Raises:
            TraceFormatError: the trace has none, or they are damaged.
        """
        from tracer.format.errors import TraceFormatError
        from tracer.format.schema import KEYFRAMES_FILE, PAGES_FILE

        self._frames = files.fast_table(KEYFRAMES_FILE, KEYFRAMES)
        self._pages = files.fast_table(PAGES_FILE, PAGES)
        if self._frames is None or self._pages is None:
            raise TraceFormatError(f"{files.path} has no keyframes ({KEYFRAMES_FILE})")
        self._steps = self._frames.column("step").to_pylist()
        if not self._steps or self._steps[0] != 0:
            raise TraceFormatError(f"{files.path / KEYFRAMES_FILE} is damaged: it has no "
                                   "keyframe at step 0")

    def steps(self) -> list[int]:
        """The steps that have a keyframe, in order."""
        return list(self._steps)

    def nearest(self, step: int) -> dict:
        """The last keyframe at or before `step`, as a row (step, context, cursor, ...)."""
        i = bisect.bisect_right(self._steps, step) - 1
        return self._frames.slice(i, 1).to_pylist()[0]

    def pages(self, ids: list[int]) -> list[bytes]:
        """The bytes of the stored pages with these ids."""
        data = self._pages.column("data")
        return [data[i].as_py() for i in ids]


def check_step(step: int, last: int) -> int:
    """Returns `step` when a run of `last` steps has it (0 to `last`: the state at `last`
    is the final one).

    Raises:
        ReplayError: the step is outside the run.
    """
    if not 0 <= step <= last:
        raise ReplayError(f"step {step:,} is outside the run (steps 0 to {last:,}; the state "
                          "at step N is the state before instruction N executes)")
    return step


def machine_at(files: TraceFiles, step: int, keyframes: Keyframes | None,
               inputs: RecordedInputs | None = None) -> ReplayMachine:
    """A replay engine holding the state before instruction `step` executes.

    Args:
        files: the trace.
        step: 0 .. the number of instructions the run executed.
        keyframes: the trace's keyframes; None re-executes from step 0.
        inputs: the trace's inputs, if already loaded.

    Raises:
        ReplayError: the step is outside the run.
    """
    inputs = inputs or load_inputs(files)
    check_step(step, inputs.instructions)
    machine = ReplayMachine(inputs)
    if keyframes is None:
        machine.load_initial()
        machine.run(step)
        return machine
    frame = keyframes.nearest(step)
    restore_keyframe(machine, frame, keyframes.pages(frame["page_id"]))
    machine.run(step - frame["step"])
    return machine


def restore_keyframe(machine: ReplayMachine, frame: dict, pages: list[bytes]) -> None:
    """Puts a fresh replay engine in the state of a keyframe row (its map as the region
    events before its step leave it, its non-zero pages, CPU context and syscall cursor).

    Raises:
        ReplayError: the keyframe does not fit the trace's memory map.
    """
    machine.map_regions(machine.inputs.regions_before(frame["step"]))
    for addr, data in zip(frame["page_addr"], pages):
        try:
            machine.uc.mem_write(addr, data)
        except unicorn.UcError:
            raise ReplayError(f"the keyframe at step {frame['step']:,} holds a page at "
                              f"{addr:#x} that is not mapped at that step: it is damaged"
                              ) from None
    context = UcContext.__new__(UcContext)
    context.__setstate__((frame["context"], len(frame["context"]), UC_ARCH_X86, UC_MODE_64))
    machine.uc.context_restore(context)
    machine.cursor = frame["cursor"]


UNICORN_VERSION = unicorn.__version__
