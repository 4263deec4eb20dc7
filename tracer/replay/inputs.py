"""The recorded inputs of a run, as a replay needs them: initial registers and memory,
the memory map's events, and each syscall's recorded effects (result, kernel writes,
region changes). Read through tracer.format only."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from tracer.format import TraceFiles
from tracer.format.meta import RunEnd
from tracer.format.regions import RegionEvent, initial_event_count


@dataclass(frozen=True)
class RecordedSyscall:
    """One row of syscalls.arrows with the effects the replay re-applies."""

    step: int
    rip: int
    nr: int
    name: str
    args: tuple[int, ...]
    ret: int | None
    unsupported: bool
    abi: str            # x86_64 (`syscall`) or i386 (`int 0x80`)
    regions: tuple[RegionEvent, ...]
    kernel_writes: tuple[tuple[int, bytes], ...]
    killed: bool = False  # it delivered a fatal signal to the process (kill, tgkill, tkill)


@dataclass
class RecordedInputs:
    """Everything a replay may use: nothing here is recomputed, all of it was recorded."""

    initial_registers: dict[str, int]
    initial_brk: int
    image: list[tuple[int, bytes]]
    initial_regions: list[RegionEvent]
    region_events: list[RegionEvent]
    syscalls: list[RecordedSyscall]
    instructions: int
    end: RunEnd | None = field(repr=False)
    stack_floor: int | None = None  # lowest address the stack may grow to (RLIMIT_STACK)

    def regions_before(self, step: int) -> list[RegionEvent]:
        """The region events in effect before instruction `step` executes (the initial map
        plus the changes of every syscall at an earlier step)."""
        return self.initial_regions + [e for e in self.region_events if e.step < step]


def load_inputs(files: TraceFiles) -> RecordedInputs:
    """Reads the recorded inputs of a trace.

    Raises:
        TraceFormatError: the trace is not readable.
    """
    meta = files.meta
    image = [(r["start"], r["data"]) for r in files.table("memory_image", ["start", "data"])
             .to_pylist()]
    events = [RegionEvent.from_row(r) for r in files.table("regions").to_pylist()]
    rows = files.table("syscalls").to_pylist()
    n_initial = initial_event_count(events, rows)
    initial, later = events[:n_initial], events[n_initial:]
    by_step_regions: dict[int, list[RegionEvent]] = defaultdict(list)
    for e in later:
        by_step_regions[e.step].append(e)
    writes: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for r in files.table("kernel_writes").to_pylist():
        writes[r["step"]].append((r["addr"], r["data"]))
    syscalls = [RecordedSyscall(
        step=r["step"], rip=r["rip"], nr=r["nr"], name=r["name"], args=tuple(r["args"]),
        ret=r["ret"], unsupported=r["detail"] == "unsupported", abi=r.get("abi") or "x86_64",
        regions=tuple(by_step_regions.get(r["step"], ())),
        kernel_writes=tuple(writes.get(r["step"], ())),
        killed=r["detail"] == "signal") for r in rows]
    end = meta.end
    instructions = end.instructions if end is not None else recorded_steps(files)
    floor = meta.initial.stack_top - meta.initial.stack_limit
    return RecordedInputs(
        initial_registers=dict(meta.initial.registers),
        initial_brk=meta.initial.brk,
        image=image, initial_regions=initial, region_events=later, syscalls=syscalls,
        instructions=int(instructions), end=end, stack_floor=floor)


def recorded_steps(files: TraceFiles) -> int:
    """How many steps a trace covers: meta.json says so when the recording ended; for a
    killed recording, one past the last step any whole batch of events mentions."""
    if files.meta.end is not None:
        return files.meta.end.instructions
    last = -1
    for table in ("accesses", "rsp", "syscalls"):
        for batch in files.batches(table, ["step"]):
            if batch.num_rows:
                last = max(last, batch.column("step")[batch.num_rows - 1].as_py())
    return last + 1
