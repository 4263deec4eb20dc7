"""`trace replay --verify`: re-executes a run from its recorded inputs alone, with the same
native event hooks as the recorder, and compares what it observes with the trace as it goes:
accesses and values, RSP changes, syscalls, output, exec counts and the ending."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from unicorn.x86_const import UC_X86_REG_RSP

from tracer.event_stream import EventStream
from tracer.format import TraceFiles
from tracer.ending import TRUNCATING_STOPS, Fault, StopReason
from tracer.format.schema import SOURCES, TABLES
from tracer.replay.inputs import RecordedInputs, RecordedSyscall, load_inputs
from tracer.replay.machine import (PAST_THE_END, Ending, ReplayMachine, record_replayed_events,
                                    remake_kernel_accesses)

_KERNEL = SOURCES.index("kernel")


@dataclass(frozen=True)
class Divergence:
    """The first point where the replay did not do what the trace says."""

    step: int | None
    rip: int | None
    table: str        # accesses, rsp, syscalls, output, exec_counts, ending
    what: str         # a sentence: what differed, recorded vs replayed

    def sentence(self) -> str:
        """The divergence as one sentence for the user."""
        where = "" if self.step is None else f"at step {self.step:,}"
        if self.rip is not None:
            where += f", RIP {self.rip:#x}"
        return f"the replay diverges from the trace {where} ({self.table}): {self.what}"


@dataclass
class VerifyResult:
    """What a verifying replay did, and where it first departed from the trace."""

    instructions: int
    accesses: int
    rsp_changes: int
    syscalls: int
    divergence: Divergence | None = None

    @property
    def ok(self) -> bool:
        """True when the replay reproduced the trace."""
        return self.divergence is None


class _Diverged(Exception):
    """Raised inside the drain thread to stop the run at the first difference."""


class _RecordedRows:
    """The recorded rows of one event table, handed out in slices of any length."""

    def __init__(self, batches: Iterator[pa.RecordBatch]):
        self._batches = batches
        self._pending: list[pa.RecordBatch] = []
        self._have = 0

    def take(self, n: int) -> pa.Table | None:
        """The next `n` rows (fewer at the end; None when none are left)."""
        while self._have < n:
            nxt = next(self._batches, None)
            if nxt is None:
                break
            self._pending.append(nxt)
            self._have += nxt.num_rows
        if not self._pending:
            return None
        table = pa.Table.from_batches(self._pending)
        head, rest = table.slice(0, n), table.slice(n)
        self._pending = rest.combine_chunks().to_batches() if rest.num_rows else []
        self._have = rest.num_rows
        return head

    def first_remaining(self) -> dict | None:
        """The first row not yet taken, if any."""
        head = self.take(1)
        return head.to_pylist()[0] if head is not None and head.num_rows else None


def _as_numpy(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.string())
        return np.asarray(column.to_pylist(), dtype=object), np.zeros(len(column), bool)
    nulls = column.is_null().to_numpy(zero_copy_only=False)
    values = pc.fill_null(column, False if pa.types.is_boolean(column.type) else 0)
    return values.to_numpy(zero_copy_only=False), nulls


class _ComparingSink:
    """Stands where the recorder's TableWriter stands and checks each batch on arrival."""

    def __init__(self, table: str, recorded: Iterator[pa.RecordBatch], complete: bool = True):
        self.table = table
        # A killed recording lost its last events: the replay may go on past them.
        self._complete = complete
        self._exhausted = False
        self.schema = TABLES[table]
        self.rows = 0
        self._recorded = _RecordedRows(recorded)
        self.divergence: Divergence | None = None

    def bytes_written(self) -> int:
        """(TableWriter protocol) nothing is written: no size limit applies."""
        return 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Compares the next replayed batch with as many recorded rows.

        Raises:
            _Diverged: at the first difference (the event stream then stops the run).
        """
        if self._exhausted:
            return
        n = batch.num_rows
        expected = self._recorded.take(n)
        if not self._complete and (expected is None or expected.num_rows < n):
            self._exhausted = True
            if expected is None:
                return
            n = expected.num_rows
            batch = batch.slice(0, n)
        if expected is None or expected.num_rows < n:
            got = 0 if expected is None else expected.num_rows
            row = batch.slice(got, 1).to_pylist()[0]
            self._fail(row, f"the replay made more {self.table} rows than the trace holds "
                            f"(the trace ends at row {self.rows + got:,}); extra row: "
                            f"{_show(row)}")
        first = None
        differing: list[str] = []
        for name in self.schema.names:
            a, a_null = _as_numpy(expected.column(name))
            b, b_null = _as_numpy(batch.column(name))
            bad = (a != b) | (a_null != b_null)
            if bad.any():
                i = int(np.argmax(bad))
                if first is None or i < first:
                    first, differing = i, [name]
                elif i == first:
                    differing.append(name)
        if first is not None:
            rec = expected.slice(first, 1).to_pylist()[0]
            got = batch.slice(first, 1).to_pylist()[0]
            what = "; ".join(f"{c} recorded {_fmt(rec[c])}, replayed {_fmt(got[c])}"
                             for c in differing)
            self._fail(rec, f"row {self.rows + first:,}: {what}")
        self.rows += n

    def _fail(self, row: dict, what: str) -> None:
        self.divergence = Divergence(row.get("step"), row.get("rip"), self.table, what)
        raise _Diverged(what)

    def close(self) -> None:
        """(TableWriter protocol) nothing to close."""

    def check_exhausted(self) -> None:
        """After the run: recorded rows the replay never made are a divergence."""
        row = self._recorded.first_remaining()
        if row is not None and self.divergence is None:
            self.divergence = Divergence(row.get("step"), row.get("rip"), self.table,
                                         f"the trace holds more rows than the replay made; "
                                         f"first missing: {_show(row)}")


def _fmt(v) -> str:
    return hex(v) if isinstance(v, int) and not isinstance(v, bool) and v > 9 else repr(v)


def _show(row: dict) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in row.items())


class _Observer:
    """Checks each replayed syscall against the recorded row and replays its kernel side
    through the event stream (reads from the replay's own memory, writes from the trace)."""

    def __init__(self, files: TraceFiles, events_ref: list):
        self._events_ref = events_ref
        self.divergence: Divergence | None = None
        self.count = 0
        kernel: dict[int, list[tuple[int, int, bool]]] = defaultdict(list)
        for batch in files.batches("accesses", ["step", "addr", "size", "is_write", "source"]):
            mask = pc.equal(batch.column("source").indices, _KERNEL)
            if not pc.any(mask).as_py():
                continue
            rows = batch.filter(mask).select(["step", "addr", "size", "is_write"]).to_pylist()
            for r in rows:
                kernel[r["step"]].append((r["addr"], r["size"], r["is_write"]))
        self._kernel = kernel
        output: dict[int, bytes] = defaultdict(bytes)
        for r in files.table("output").to_pylist():
            output[r["step"]] += r["data"]
        self._output = output

    @property
    def _events(self) -> EventStream:
        return self._events_ref[0]

    def on_syscall(self, machine: ReplayMachine, recorded: RecordedSyscall | None, rip: int,
                   nr: int, args: tuple[int, ...], abi: str) -> bool:
        """Checks the replayed syscall against the recorded row at the same position."""
        # As the recorder: an RSP change by the instruction before is noted here.
        self._events.check_rsp(machine.uc.reg_read(UC_X86_REG_RSP))
        step = self._events.step
        self.count += 1
        if recorded is None:
            return self._fail(step, rip, f"the replay made syscall {nr} that the trace does "
                                         "not have (the recorded run had ended)")
        if recorded.step != step:
            return self._fail(step, rip, f"syscall {recorded.name} was recorded at step "
                                         f"{recorded.step:,}, the replay made syscall {nr} "
                                         f"at step {step:,}")
        problems = []
        if recorded.rip != rip:
            problems.append(f"rip recorded {recorded.rip:#x}, replayed {rip:#x}")
        if recorded.abi != abi:
            problems.append(f"ABI recorded {recorded.abi}, replayed {abi}")
        if recorded.nr != nr:
            problems.append(f"number recorded {recorded.nr} ({recorded.name}), replayed {nr}")
        for i, (a, b) in enumerate(zip(recorded.args, args)):
            if a != b:
                problems.append(f"argument {i + 1} recorded {a:#x}, replayed {b:#x}")
        if problems:
            return self._fail(step, rip, f"syscall {recorded.name}: " + "; ".join(problems))
        return True

    def apply_kernel_effects(self, machine: ReplayMachine, recorded: RecordedSyscall) -> None:
        """Re-makes the kernel accesses in recorded order: reads from the replay's memory,
        writes from the trace; then checks a `write`'s output bytes."""
        uc = machine.uc
        remake_kernel_accesses(uc, recorded, self._kernel.get(recorded.step, ()),
                               self._events.kernel_access)
        expected = self._output.get(recorded.step)
        if expected is not None and recorded.name == "write" and recorded.ret is not None:
            got = bytes(uc.mem_read(recorded.args[1], max(recorded.ret, 0)))
            if got != expected:
                k = next(i for i in range(min(len(got), len(expected)) + 1)
                         if i >= len(got) or i >= len(expected) or got[i] != expected[i])
                self._fail(recorded.step, recorded.rip,
                           f"write output differs at byte {k}: recorded "
                           f"{expected[k:k + 16]!r}, replayed {got[k:k + 16]!r}", table="output")

    def _fail(self, step, rip, what, table="syscalls") -> bool:
        if self.divergence is None:
            self.divergence = Divergence(step, rip, table, what)
        return False


def verify(trace: TraceFiles | str, inputs: RecordedInputs | None = None) -> VerifyResult:
    """Replays `trace` from its recorded inputs and compares it with the recording.

    Args:
        trace: the trace (or its directory).
        inputs: its inputs, when the caller has loaded (or altered) them already.

    Returns:
        Counts of what was replayed and the first divergence, if any.

    Raises:
        TraceFormatError: the trace is not readable.
    """
    files = trace if isinstance(trace, TraceFiles) else TraceFiles(trace)
    files.verify()  # every file, program.elf included, before a replay vouches for it
    inputs = inputs or load_inputs(files)
    end = files.meta.end
    recorded_steps = inputs.instructions
    truncated = (end is not None and end.truncated) or not files.complete
    events_ref: list = []
    observer = _Observer(files, events_ref)
    machine = ReplayMachine(inputs, observer=observer,
                            step_of=lambda fetch: (events_ref[0].instructions if fetch
                                                   else events_ref[0].step),
                            on_data_fault=lambda: events_ref[0].discard_current())
    machine.load_initial()
    accesses = _ComparingSink("accesses", files.batches("accesses"), files.complete)
    rsp = _ComparingSink("rsp", files.batches("rsp"), files.complete)
    initial_rsp = files.meta.initial.rsp
    # Past the recorded end: a replay that should have stopped and did not is caught.
    limit = recorded_steps if truncated else recorded_steps + PAST_THE_END
    stack = _initial_stack(inputs)
    events = record_replayed_events(machine, accesses, rsp, initial_rsp, limit, stack)
    events_ref.append(events)
    try:
        machine.run()
    finally:
        events.finish(machine.registers()["rsp"])
    instructions = events.instructions
    result = VerifyResult(instructions=instructions, accesses=accesses.rows, rsp_changes=rsp.rows,
                          syscalls=observer.count)
    rips, counts = events.exec_counts()
    growth = [(g.step, g.start) for g in events.take_growth()] if stack else []
    limit_hit = events.stopped_by_limit
    native = events.native_stop
    if native is not None and machine.ending is None:
        # The native hooks stop before an instruction that faults where Unicorn would run
        # it (privileged, undefined, int1, a misaligned SSE operand).
        access = None if native.address is None else ("write" if native.is_write else "read")
        machine.ending = Ending(StopReason.FAULT, fault=Fault(
            None, None, instructions, native.rip, native.address, access))
    error = events.error
    events.close()
    candidates = [d for d in (accesses.divergence, rsp.divergence, observer.divergence) if d]
    if not candidates and not isinstance(error, _Diverged) and error is not None:
        raise error
    if not candidates:
        accesses.check_exhausted()
        rsp.check_exhausted()
        candidates = [d for d in (accesses.divergence, rsp.divergence) if d]
    if not candidates and stack:
        grown = _compare_growth(inputs, growth, files.complete)
        if grown is not None:
            candidates.append(grown)
    if not candidates:
        ending = _compare_ending(files, machine, instructions, limit_hit)
        if ending is not None:
            candidates.append(ending)
    if not candidates and files.has("exec_counts"):
        recorded = files.table("exec_counts")
        if (recorded.column("rip").to_pylist() != rips
                or recorded.column("count").to_pylist() != counts):
            candidates.append(Divergence(None, None, "exec_counts",
                                         "the per-instruction execution counts differ"))
    if candidates:
        result.divergence = min(candidates, key=lambda d: (d.step is None, d.step or 0))
    return result


def _initial_stack(inputs: RecordedInputs) -> tuple[int, int] | None:
    """(floor, start) of the stack VMA at entry, for the native hooks to see it grow."""
    start = next((e.start for e in inputs.initial_regions
                  if e.action == "map" and e.kind == "stack"), None)
    if start is None or inputs.stack_floor is None:
        return None
    return inputs.stack_floor, start


def _compare_growth(inputs: RecordedInputs, replayed: list[tuple[int, int]],
                    complete: bool) -> Divergence | None:
    """The stack growths of the replay against the recorded `grow` events (a killed
    recording may have lost its last ones)."""
    recorded = [(e.step, e.start) for e in inputs.initial_regions + inputs.region_events
                if e.action == "grow"]
    if recorded == replayed or (not complete and replayed[:len(recorded)] == recorded):
        return None
    k = next((i for i, (a, b) in enumerate(zip(recorded, replayed)) if a != b),
             min(len(recorded), len(replayed)))
    step = (recorded[k] if k < len(recorded) else replayed[k])[0]
    show = lambda g: "none" if g is None else f"down to {g[1]:#x} at step {g[0]:,}"  # noqa: E731
    return Divergence(step, None, "regions", f"stack growth {k + 1}: recorded "
                      f"{show(recorded[k] if k < len(recorded) else None)}, replayed "
                      f"{show(replayed[k] if k < len(replayed) else None)}")


def _compare_ending(files: TraceFiles, machine: ReplayMachine, instructions: int,
                    limit: str | None) -> Divergence | None:
    end = files.meta.end
    if end is None:
        return None
    ending = machine.ending
    reason = ending.stop_reason if ending else (StopReason.MAX_STEPS if limit
                                                else StopReason.STOPPED)
    recorded_reason = end.stop_reason
    if recorded_reason in TRUNCATING_STOPS and limit:
        reason = recorded_reason
    last = instructions - 1 if instructions else None
    problems = []
    if reason != recorded_reason:
        problems.append(f"the run ended by {recorded_reason}, the replay by {reason}")
    if instructions != end.instructions:
        problems.append(f"{end.instructions:,} instructions recorded, "
                        f"{instructions:,} replayed")
    if ending and ending.exit_code != end.exit_code and reason == StopReason.EXIT:
        problems.append(f"exit status recorded {end.exit_code}, replayed "
                        f"{ending.exit_code}")
    recorded_fault = end.fault
    if recorded_fault and ending and ending.fault:
        for key in ("step", "rip", "address", "access"):
            replayed = getattr(ending.fault, key)
            if key in ("address", "access") and replayed is None:
                continue
            if getattr(recorded_fault, key) != replayed:
                problems.append(f"fault {key} recorded {_fmt(getattr(recorded_fault, key))}, "
                                f"replayed {_fmt(replayed)}")
    if not problems:
        regs = machine.registers()
        for name, value in end.registers.items():
            if regs.get(name) != value:
                problems.append(f"final {name} recorded {value:#x}, replayed "
                                f"{regs.get(name, 0):#x}")
    if not problems:
        return None
    rip = machine.registers()["rip"]
    return Divergence(last, rip, "ending", "; ".join(problems))
