"""Materialises the event tables of a fast recording (meta.json `events: pending`): each slice
of the run, from one keyframe to where the next slice begins, is re-executed with the
recorder's own native hooks (tracer/event_stream.py), and the slices' rows are joined in order
into accesses, rsp and exec_counts, exactly as a full recording writes them.

`materialise_slice` is a pure function of picklable arguments that writes files: what a
process pool here, or a cluster (vmtrace/commands/batch.py uses Ray), runs per slice."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from unicorn import UC_ARCH_X86, UC_MODE_64, Uc
from unicorn.unicorn_py3.unicorn import UcContext
from unicorn.x86_const import UC_X86_REG_RSP

from tracer.ending import TRUNCATING_STOPS, Fault, StopReason
from tracer.event_stream import EventStream
from tracer.format import TraceFiles
from tracer.format.errors import TraceFormatError
from tracer.format.deltas import _join, _split, encode
from tracer.format.layout import STORED, high_name
from tracer.format.journal import JournalEntry, JournalWriter, parse_journal
from tracer.format.schema import (
    CHECKSUMS_FILE, EVENT_TABLES, EVENTS_MATERIALISED, KERNEL_ACCESSES, KERNEL_ACCESSES_FILE, KEYFRAMES, KEYFRAMES_FILE, MATERIALISING_DIR,
    PAGES, PAGES_FILE, TABLES, file_name,
)
from tracer.format.regions import PAGE
from tracer.format.checksum import sha256_file
from tracer.format.writer import write_meta, write_table
from tracer.replay.inputs import RecordedInputs, RecordedSyscall, load_inputs
from tracer.replay.keyframes import restore_keyframe
from tracer.replay.machine import (PAST_THE_END, Ending, ReplayError, ReplayMachine,
                                    record_replayed_events, remake_kernel_accesses)
from tracer.registers import architectural_state

# As the recorder's TableWriter: the slices' batches go into the trace as they are.
_SLICE_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")
_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the IPC stream's end-of-stream marker


@dataclass(frozen=True)
class SliceTask:
    """One slice of a run to materialise: picklable, for a worker process or a cluster."""

    trace: str      # the trace directory
    index: int      # the slice's place in the run (0 first)
    first: int      # the step of the keyframe it starts from
    end: int        # the step it stops before: the next slice's keyframe, or the run's end
    last: bool      # the run's last slice: it ends as the run ended
    out: str        # the directory its files go to


@dataclass(frozen=True)
class SliceResult:
    """What one slice made: its files and the totals meta.json's `end` sums."""

    index: int
    first: int
    end: int
    accesses_file: str
    rsp_file: str
    accesses: int
    rsp_changes: int
    access_counts: dict[str, dict[str, int]]
    lowest_rsp: int
    exec_rips: list[int]
    exec_counts: list[int]
    seconds: float


@dataclass(frozen=True)
class MaterialiseResult:
    """A finished materialisation."""

    slices: int
    jobs: int
    accesses: int
    rsp_changes: int
    seconds: float


class _SliceSink:
    """Stands where the recorder's TableWriter stands: a stream file of its own, steps
    made absolute (the native hooks count from the slice's first step)."""

    def __init__(self, path: Path, table: str, offset: int):
        self.schema = TABLES[table]
        self._table = table
        self._offset = pa.scalar(offset, pa.uint64())
        self._sink = pa.OSFile(str(path), "wb")
        # In the stored layout, as the recorder's TableWriter writes it: the joined file
        # takes these batches' messages as they are.
        self._writer = pa.ipc.new_stream(self._sink, STORED[table], options=_SLICE_OPTIONS)
        self.rows = 0

    def bytes_written(self) -> int:
        """(TableWriter protocol) no size limit applies to a materialisation."""
        return 0

    def write(self, batch: pa.RecordBatch) -> None:
        step = pc.add(batch.column(0), self._offset)
        self._writer.write_batch(encode(self._table, pa.RecordBatch.from_arrays(
            [step, *batch.columns[1:]], schema=self.schema)))
        self.rows += batch.num_rows

    def write_stored(self, batch: pa.RecordBatch) -> None:
        """(TableWriter protocol) a batch the drain thread encoded already (in C): only its
        first `step` difference changes, since each batch's differences start from 0."""
        if batch.num_rows and self._offset.as_py():
            names = batch.schema.names
            i, j = names.index("step"), names.index(high_name("step"))
            low = batch.column(i).to_numpy().copy()
            high = batch.column(j).to_numpy().copy()
            first = _join(low[:1], high[:1]) + np.uint64(self._offset.as_py())
            low[:1], high[:1] = _split(first)
            batch = batch.set_column(i, batch.schema.field(i), pa.array(low, pa.int32()))
            batch = batch.set_column(j, batch.schema.field(j), pa.array(high, pa.int32()))
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self) -> None:
        self._writer.close()
        self._sink.close()


class _Kernel:
    """Re-makes each syscall's kernel-side accesses in recorded order, as `trace replay
    --verify` does: reads from the replay's memory, writes from the trace."""

    def __init__(self, rows: dict[int, list[tuple[int, int, bool]]], first: int,
                 events_ref: list):
        self._rows = rows
        self._first = first
        self._events_ref = events_ref
        self.problem: str | None = None

    def on_syscall(self, machine: ReplayMachine, recorded: RecordedSyscall | None, rip: int,
                   nr: int, args: tuple[int, ...], abi: str) -> bool:
        """Notes the RSP change before it (as the recorder) and checks it is the recorded
        syscall at the recorded step."""
        events: EventStream = self._events_ref[0]
        events.check_rsp(machine.uc.reg_read(UC_X86_REG_RSP))
        step = self._first + events.step
        if recorded is None or recorded.step != step or recorded.nr != nr or recorded.rip != rip:
            what = "none" if recorded is None else (f"{recorded.name} at step "
                                                    f"{recorded.step:,}")
            self.problem = (f"the replay made syscall {nr} at step {step:,} (RIP {rip:#x}) "
                            f"where the trace has {what}")
            return False
        return True

    def apply_kernel_effects(self, machine: ReplayMachine, recorded: RecordedSyscall) -> None:
        """Writes the syscall's recorded bytes and reports its kernel accesses."""
        events: EventStream = self._events_ref[0]
        remake_kernel_accesses(machine.uc, recorded, self._rows.get(recorded.step, ()),
                               events.kernel_access)


def _kernel_rows(files: TraceFiles, first: int, end: int) -> dict[int, list]:
    table = files.fast_table(KERNEL_ACCESSES_FILE, KERNEL_ACCESSES)
    if table is None:
        raise TraceFormatError(f"{files.path} is pending but has no {KERNEL_ACCESSES_FILE}: "
                               "the kernel side of its syscalls cannot be rebuilt")
    rows: dict[int, list] = defaultdict(list)
    for r in table.to_pylist():
        if first <= r["step"] <= end:
            rows[r["step"]].append((r["addr"], r["size"], r["is_write"]))
    return rows


def _stack_at(inputs: RecordedInputs, step: int) -> tuple[int, int] | None:
    """(floor, start) of the stack VMA before `step`, as the recorder's hooks hold it."""
    start = None
    for e in inputs.regions_before(step):
        if e.kind == "stack" and e.action in ("map", "grow"):
            start = e.start
    if start is None or inputs.stack_floor is None:
        return None
    return inputs.stack_floor, start


def _keyframe(frames: pa.Table, step: int, path: Path) -> dict:
    steps = frames.column("step").to_pylist()
    if step not in steps:
        raise TraceFormatError(f"{path / KEYFRAMES_FILE} has no keyframe at step {step:,}")
    return frames.slice(steps.index(step), 1).to_pylist()[0]


def _pages_of(frame: dict, pages: pa.Table, path: Path) -> list[bytes]:
    data = pages.column("data")
    try:
        return [data[i].as_py() for i in frame["page_id"]]
    except IndexError:
        raise TraceFormatError(f"{path / KEYFRAMES_FILE} is damaged: the keyframe at step "
                               f"{frame['step']:,} names a page {PAGES_FILE} lacks") from None


def materialise_slice(task: SliceTask) -> SliceResult:
    """Re-executes one slice with the recorder's hooks and writes its accesses and rsp rows
    (steps absolute) into `task.out`.

    Raises:
        ReplayError: the slice did not replay as recorded (its syscalls, its stack growth,
            where it ends: the next keyframe, or the recorded ending).
        TraceFormatError: the trace is not readable.
    """
    t0 = time.perf_counter()
    files = TraceFiles(task.trace)
    inputs = load_inputs(files)
    frames = files.fast_table(KEYFRAMES_FILE, KEYFRAMES)
    pages = files.fast_table(PAGES_FILE, PAGES)
    if frames is None or pages is None:
        raise TraceFormatError(f"{files.path} is pending but has no keyframes")
    events_ref: list = []
    kernel = _Kernel(_kernel_rows(files, task.first, task.end), task.first, events_ref)
    machine = ReplayMachine(
        inputs, observer=kernel,
        step_of=lambda fetch: task.first + (events_ref[0].instructions if fetch
                                            else events_ref[0].step),
        on_data_fault=lambda: events_ref[0].discard_current())
    if task.first == 0:
        # The recorded initial state itself, not a copy of it that could be edited.
        machine.load_initial()
    else:
        frame = _keyframe(frames, task.first, files.path)
        restore_keyframe(machine, frame, _pages_of(frame, pages, files.path))
    out = Path(task.out)
    accesses_path = out / f"slice-{task.index}.accesses.arrows"
    rsp_path = out / f"slice-{task.index}.rsp.arrows"
    accesses = _SliceSink(accesses_path, "accesses", task.first)
    rsp = _SliceSink(rsp_path, "rsp", task.first)
    end = files.meta.end
    truncated = end.stop_reason in TRUNCATING_STOPS
    # The last slice may run past the recorded end: a replay that should have stopped and
    # did not is caught (as `trace replay --verify`).
    limit = task.end - task.first + (PAST_THE_END if task.last and not truncated else 0)
    stack = _stack_at(inputs, task.first)
    events = record_replayed_events(machine, accesses, rsp, machine.registers()["rsp"], limit,
                                    stack)
    events_ref.append(events)
    try:
        machine.run()
    finally:
        events.finish(machine.registers()["rsp"])
        accesses.close()
        rsp.close()
    error = events.error
    instructions = task.first + events.instructions
    growth = [(task.first + g.step, g.start) for g in events.take_growth()] if stack else []
    native = events.native_stop
    if native is not None and machine.ending is None:
        access = None if native.address is None else ("write" if native.is_write else "read")
        machine.ending = Ending(StopReason.FAULT, fault=Fault(
            None, None, instructions, native.rip, native.address, access))
    limit_hit = events.stopped_by_limit
    rips, counts = events.exec_counts()
    result = SliceResult(
        index=task.index, first=task.first, end=task.end, accesses_file=str(accesses_path),
        rsp_file=str(rsp_path), accesses=accesses.rows, rsp_changes=rsp.rows,
        access_counts=events.access_counts(), lowest_rsp=events.lowest_rsp,
        exec_rips=rips, exec_counts=counts,
        seconds=time.perf_counter() - t0)
    events.close()
    if error is not None:
        raise error
    where = f"slice {task.index} (steps {task.first:,} to {task.end:,})"
    if kernel.problem is not None:
        raise ReplayError(f"{where} does not replay as recorded: {kernel.problem}")
    recorded_growth = [(e.step, e.start) for e in inputs.region_events
                       if e.action == "grow" and task.first <= e.step < task.end + task.last]
    if growth != recorded_growth:
        raise ReplayError(f"{where} does not replay as recorded: the stack grew "
                          f"{growth[:3]} where the trace says {recorded_growth[:3]}")
    if task.last:
        _check_ending(files, machine, instructions, limit_hit, where)
    else:
        _check_next_keyframe(frames, pages, machine, task, instructions, where)
    return result


def _keyframe_registers(frame: dict) -> tuple:
    """The program-visible CPU state a keyframe's saved context holds."""
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    context = UcContext.__new__(UcContext)
    context.__setstate__((frame["context"], len(frame["context"]), UC_ARCH_X86, UC_MODE_64))
    uc.context_restore(context)
    return architectural_state(uc)


def _check_next_keyframe(frames: pa.Table, pages: pa.Table, machine: ReplayMachine,
                         task: SliceTask, instructions: int, where: str) -> None:
    """A slice must end in the state its successor's keyframe holds: CPU context, syscall
    cursor and every page (so that a keyframe edited anywhere is refused)."""
    if machine.ending is not None or instructions != task.end:
        raise ReplayError(f"{where} ended at step {instructions:,}"
                          f"{' (' + machine.ending.stop_reason + ')' if machine.ending else ''}"
                          f", not at the next keyframe: the keyframes do not belong to "
                          "this run")
    nxt = _keyframe(frames, task.end, Path(task.trace))
    differ = []
    # Compared as the program sees it: the fast recorder saves its keyframes where a block
    # ends, the replay stops inside blocks, so QEMU's lazy-flag bytes in the context differ.
    if architectural_state(machine.uc) != _keyframe_registers(nxt):
        differ.append("its CPU state")
    if nxt["cursor"] != machine.cursor:
        differ.append("its syscall cursor")
    expected = dict(zip(nxt["page_addr"], _pages_of(nxt, pages, Path(task.trace))))
    for start, stop, _prot in machine.mapped():
        raw = bytes(machine.uc.mem_read(start, stop - start))
        for offset in range(0, len(raw), PAGE):
            page = raw[offset:offset + PAGE]
            want = expected.pop(start + offset, None)
            if page != (want if want is not None else bytes(PAGE)):
                differ.append(f"the page at {start + offset:#x}")
                break
        if len(differ) > 2:
            break
    if expected and len(differ) <= 2:
        differ.append(f"the page at {min(expected):#x}")
    if differ:
        raise ReplayError(f"{where} does not end where the keyframe at step {task.end:,} "
                          f"begins ({', '.join(differ)} differ): the keyframe is damaged or "
                          "not of this run")


def _check_ending(files: TraceFiles, machine: ReplayMachine, instructions: int,
                  limit_hit, where: str) -> None:
    from tracer.replay.verify import _compare_ending

    divergence = _compare_ending(files, machine, instructions, limit_hit)
    if divergence is not None:
        raise ReplayError(f"{where} does not end as the recording did: {divergence.what}")


# -- the whole trace ------------------------------------------------------------------------
def plan_slices(steps: list[int], instructions: int, slices: int) -> list[tuple[int, int]]:
    """Groups consecutive keyframes into about `slices` slices of equal length in steps.

    Returns:
        (first step, end step) of each slice, in order, covering 0 to `instructions`.
    """
    usable = [s for s in steps if s < instructions] or [0]
    if slices >= len(usable):
        return list(zip(usable, usable[1:] + [instructions]))
    chosen = {0}
    for k in range(1, slices):
        target = instructions * k // slices
        chosen.add(min(usable, key=lambda s: abs(s - target)))
    starts = sorted(chosen)
    return list(zip(starts, starts[1:] + [instructions]))


def _check_keyframes(files: TraceFiles) -> list[int]:
    frames = files.fast_table(KEYFRAMES_FILE, KEYFRAMES)
    pages = files.fast_table(PAGES_FILE, PAGES)
    if frames is None or pages is None:
        raise TraceFormatError(f"{files.path} is pending but has no keyframes "
                               f"({KEYFRAMES_FILE}, {PAGES_FILE}): it cannot be materialised")
    steps = frames.column("step").to_pylist()
    last = files.meta.end.instructions
    if not steps or steps[0] != 0 or any(b <= a for a, b in zip(steps, steps[1:])) \
            or steps[-1] > last:
        raise TraceFormatError(f"{files.path / KEYFRAMES_FILE} is damaged: its steps must start "
                               f"at 0 and increase, up to the run's {last:,} steps")
    return steps


def materialise(trace: str | Path, jobs: int | None = None,
                progress: Callable[[int, int], None] | None = None,
                slices: int | None = None) -> MaterialiseResult | None:
    """Rebuilds the event tables of a pending trace and marks it materialised.

    A materialisation killed at any point leaves the trace pending and readable; running
    it again completes it.

    Args:
        trace: the trace directory.
        jobs: worker processes (None: one per CPU; 1 runs in this process).
        progress: called with (slices done, slices) as slices finish.
        slices: how many slices to cut the run into (default: `jobs`).

    Returns:
        What was done, or None when the trace was not pending.

    Raises:
        TraceFormatError: the trace is not readable, or its keyframes are damaged.
        ReplayError: a slice did not replay as recorded.
    """
    t0 = time.perf_counter()
    files = TraceFiles(trace)
    if not files.pending:
        return None
    if not files.complete or files.meta.end is None:
        raise TraceFormatError(f"{files.path}: its fast recording did not complete, so its "
                               "event tables cannot be materialised (record it again)")
    files.verify()
    steps = _check_keyframes(files)
    jobs = max(1, jobs or os.cpu_count() or 1)
    plan = plan_slices(steps, files.meta.end.instructions, slices or jobs)
    directory = files.path
    work = directory / MATERIALISING_DIR
    shutil.rmtree(work, ignore_errors=True)
    (work / "out").mkdir(parents=True)
    _restore_journal(files)
    tasks = [SliceTask(str(directory), i, a, b, i == len(plan) - 1, str(work))
             for i, (a, b) in enumerate(plan)]
    results = _run(tasks, jobs, progress)
    _commit(files, work, results)
    shutil.rmtree(work, ignore_errors=True)
    return MaterialiseResult(slices=len(tasks), jobs=jobs,
                             accesses=sum(r.accesses for r in results),
                             rsp_changes=sum(r.rsp_changes for r in results),
                             seconds=time.perf_counter() - t0)


def _run(tasks: list[SliceTask], jobs: int, progress) -> list[SliceResult]:
    results: list[SliceResult] = []
    if jobs == 1 or len(tasks) == 1:
        for task in tasks:
            results.append(materialise_slice(task))
            if progress is not None:
                progress(len(results), len(tasks))
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # fork: a worker starts with the modules loaded (spawn re-imports them, ~0.5 s each).
    # The parent runs no emulation or drain thread here; Arrow re-creates its thread
    # pools in a forked child.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
        futures = [pool.submit(materialise_slice, t) for t in tasks]
        try:
            for future in as_completed(futures):
                results.append(future.result())
                if progress is not None:
                    progress(len(results), len(tasks))
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return sorted(results, key=lambda r: r.index)


def _splice(path: Path, journal: JournalWriter, parts: list[tuple[Path, int]]) -> dict:
    """Joins the slices' streams into one, their compressed batches copied as they are (no
    decoding in this one process): the schema and dictionary messages once, every record
    batch in order, one end-of-stream; a journal line per slice.

    Returns:
        The file's `files` entry (bytes, sha256), hashed as it was written.
    """
    whole = hashlib.sha256()
    with open(path, "wb") as f:
        position = 0
        have_schema = have_dictionary = False
        for part, rows in parts:
            digest = hashlib.sha256()
            start = position
            with pa.memory_map(str(part)) as source:
                for message in pa.ipc.MessageReader.open_stream(source):
                    kind = message.type
                    if kind == "schema":
                        if have_schema:
                            continue
                        have_schema = True
                    elif kind == "dictionary batch":
                        # Every slice's dictionaries are the same constants (the sources,
                        # the RSP causes): the first one serves the whole stream.
                        if have_dictionary:
                            continue
                        have_dictionary = True
                    data = message.serialize()
                    f.write(data)
                    digest.update(data)
                    whole.update(data)
                    position += len(data)
            os.unlink(part)
            if position > start:
                f.flush()
                journal.append(JournalEntry(path.name, start, position, rows,
                                            digest.hexdigest()))
        f.write(_EOS)
        f.flush()
        whole.update(_EOS)
        journal.append(JournalEntry(path.name, position, position + len(_EOS), 0,
                                    hashlib.sha256(_EOS).hexdigest()))
    return {"bytes": position + len(_EOS), "sha256": whole.hexdigest()}


def _restore_journal(files: TraceFiles) -> None:
    """Cuts checksums.txt back to the bytes meta.json vouches for (an interrupted
    materialisation may have appended lines) and removes event files it left."""
    journal = files.path / CHECKSUMS_FILE
    recorded = files.meta.files[CHECKSUMS_FILE].bytes
    if journal.stat().st_size > recorded:
        os.truncate(journal, recorded)
    for table in EVENT_TABLES:
        (files.path / file_name(table)).unlink(missing_ok=True)


def _commit(files: TraceFiles, work: Path, results: list[SliceResult]) -> None:
    """Joins the slices into the trace's tables, then switches meta.json to materialised:
    until that one rename the trace stays pending (and its event files are not read)."""
    out = work / "out"
    journal = JournalWriter(out)
    checksums = {}
    try:
        for table, attr, rows in (("accesses", "accesses_file", "accesses"),
                                  ("rsp", "rsp_file", "rsp_changes")):
            checksums[file_name(table)] = _splice(
                out / file_name(table), journal,
                [(Path(getattr(r, attr)), getattr(r, rows)) for r in results])
    finally:
        journal.close()
    rips = np.concatenate([np.asarray(r.exec_rips, np.uint64) for r in results])
    counts = np.concatenate([np.asarray(r.exec_counts, np.uint64) for r in results])
    keys, where = np.unique(rips, return_inverse=True)
    sums = np.zeros(len(keys), np.uint64)
    np.add.at(sums, where, counts)
    write_table(out, "exec_counts", {"rip": keys.tolist(), "count": sums.tolist()})
    # Lines of the staged journal name the files; they go to the trace's journal after the
    # files themselves are in place, so every line there covers bytes that are.
    lines = (out / CHECKSUMS_FILE).read_bytes()
    parse_journal(lines, True, out / CHECKSUMS_FILE)
    for table in EVENT_TABLES:
        os.replace(out / file_name(table), files.path / file_name(table))
    fd = os.open(files.path / CHECKSUMS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, lines)
        os.fsync(fd)
    finally:
        os.close(fd)
    meta = {k: v for k, v in files.meta.raw.items() if k not in ("format", "format_version")}
    end = dict(meta["end"])
    counts_by_kind: dict[str, dict[str, int]] = {}
    for r in results:
        for source, pair in r.access_counts.items():
            mine = counts_by_kind.setdefault(source, {"read": 0, "write": 0})
            mine["read"] += pair["read"]
            mine["write"] += pair["write"]
    from tracer.format.schema import SOURCES

    end["access_counts"] = {s: counts_by_kind[s] for s in SOURCES if s in counts_by_kind}
    end["accesses"] = sum(r.accesses for r in results)
    end["rsp_changes"] = sum(r.rsp_changes for r in results)
    end["lowest_rsp"] = min(r.lowest_rsp for r in results)
    meta["end"] = end
    meta["events"] = EVENTS_MATERIALISED
    for name in (file_name("exec_counts"), CHECKSUMS_FILE):
        path = files.path / name
        checksums[name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    meta["files"] = {**meta["files"], **checksums}
    write_meta(files.path, meta)
