"""The headless time-travel queries: plain functions of (trace, step) over an opened trace and
its replay index, returning typed records with a `to_json()` form. The CLI, the bench and the
web viewer are clients; none of this prints or parses command lines.

Step convention: the state "at step N" is the state before instruction N executes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import pyarrow as pa

from analysis import open_trace
from analysis.formatting import plural
from analysis.memory import MemoryReader, MemoryView, access_history, segments_at, \
    symbolizer_at
from analysis.stack_picture import StackPicture, stack_picture
from analysis.symbols import SourceLine, Symbolizer
from analysis.trace import Trace
from analysis.write_index import Write
from timetravel.index import ReplayIndex, open_index
from tracer.errors import TracerError
from tracer.format.content import USER_TOP
from tracer.format.regions import Segment
from tracer.replay.inputs import RecordedInputs, load_inputs, recorded_steps
from tracer.replay.keyframes import check_step as _check_step
from tracer.replay.state import Instruction, MachineState, SteppingReplay

REGISTER_ORDER = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
                  "r11", "r12", "r13", "r14", "r15", "rip", "eflags", "fs_base", "gs_base")


class QueryError(TracerError):
    """A step or address asked for does not fit the trace."""


@dataclass
class Session:
    """An opened trace with its replay index: what every query takes. Holds no step."""

    trace: Trace
    index: ReplayIndex
    _inputs: RecordedInputs | None = None

    @property
    def inputs(self) -> RecordedInputs:
        """The recorded inputs (loaded once: a client that steps often, as the explorer,
        saves reading them at each step)."""
        if self._inputs is None:
            self._inputs = load_inputs(self.trace.files)
        return self._inputs

    @cached_property
    def stepper(self) -> SteppingReplay:
        """The replay engine kept between queries (a step forward replays one instruction)."""
        return SteppingReplay(self.trace.files, self.index.keyframes, self.inputs)

    def machine_state(self, step: int) -> MachineState:
        """Registers, flags and the next instruction before instruction `step` executes.

        Raises:
            ReplayError: the step is outside the run.
        """
        check_step(self.trace, step)
        return self.stepper.state(step)

    @cached_property
    def reader(self) -> MemoryReader:
        """Memory at any step (its initial image read once)."""
        return MemoryReader(self.trace, self.index.writes)


def open_session(trace_path: Path, on_build: Callable[[], None] | None = None) -> Session:
    """Opens a trace and its replay index (built first, calling `on_build`, if missing)."""
    trace = open_trace(trace_path)
    return Session(trace, open_index(trace, on_build=on_build))


# -- steps and addresses ---------------------------------------------------------------
def last_step(trace: Trace) -> int:
    """The number of steps the trace covers (the state at that step is the final one)."""
    return recorded_steps(trace.files)


def check_step(trace: Trace, step: int) -> int:
    """Returns `step` when the trace has it.

    Raises:
        ReplayError: the step is outside the run.
    """
    return _check_step(step, last_step(trace))


def parse_address(trace: Trace, text: str) -> int:
    """An address as text: 0x..., decimal, or symbol[+/-offset].

    Raises:
        ValueError: not a number and not a symbol of the program.
    """
    text = text.strip()
    for sign in ("+", "-"):
        if sign in text[1:]:
            base, off = text.rsplit(sign, 1)
            delta = int(off, 0)
            return parse_address(trace, base) + (delta if sign == "+" else -delta)
    try:
        return int(text, 0)
    except ValueError:
        pass
    for row in trace.symbols.to_pylist():
        if row["name"] == text:
            return row["addr"]
    raise ValueError(f"{text!r} is neither an address nor a symbol of the program")


def resolve_address(trace: Trace, text: str, length: int = 1) -> int:
    """An address (0x..., decimal, symbol[+offset]) with `length` bytes from it in user
    memory.

    Raises:
        QueryError: neither a number nor a symbol, or the range leaves user memory.
    """
    try:
        addr = parse_address(trace, text)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    if not 0 <= addr <= USER_TOP - length:
        raise QueryError(f"{text} is {addr:#x}: {plural(length, 'byte')} from there are not "
                         "all in user memory (below 0x800000000000), where nothing can be "
                         "mapped")
    return addr


def _step_or_last(trace: Trace, step: int | None) -> int:
    return check_step(trace, last_step(trace) if step is None else step)


# -- the machine state -----------------------------------------------------------------
@dataclass(frozen=True)
class State:
    """Registers, flags, the next instruction (with its symbolic form and source line) and
    the memory map before instruction `step` executes."""

    step: int
    registers: dict[str, int]
    flags: dict[str, bool]
    instruction: Instruction | None
    symbol: str | None          # the instruction's address, named
    symbolic: str | None        # the instruction with addresses named (`call fib`)
    source: SourceLine | None
    source_text: str | None     # the text of that source line, when the source is at hand
    ended: bool
    map: list[Segment]

    def to_json(self) -> dict:
        """The `trace state --json` document."""
        insn = self.instruction
        return {
            "step": self.step,
            "registers": self.registers,
            "flags": self.flags,
            "instruction": None if insn is None else {
                "address": insn.address, "bytes": insn.bytes.hex(), "text": insn.text,
                "symbolic": self.symbolic, "symbol": self.symbol},
            "source": None if self.source is None else {
                "file": self.source.file, "line": self.source.line, "text": self.source_text},
            "ended": self.ended,
            "map": [{"start": s.start, "end": s.end, "perms": s.perms, "kind": s.kind,
                     "name": s.name} for s in self.map],
        }


def state_at(session: Session, step: int) -> State:
    """The machine state before instruction `step` executes.

    Raises:
        ReplayError: the step is outside the run.
    """
    trace = session.trace
    check_step(trace, step)
    st = session.machine_state(step)
    symbols = symbolizer_at(trace, step)
    insn = st.instruction
    line = symbols.line_at(st.registers["rip"])
    return State(
        step=step, registers={k: st.registers[k] for k in REGISTER_ORDER}, flags=st.flags,
        instruction=insn, symbol=None if insn is None else symbols.name(insn.address),
        symbolic=None if insn is None else symbols.instruction_text(
            insn.mnemonic, insn.op_str, insn.address + insn.size),
        source=line, source_text=_source_line_text(trace, line), ended=st.ended,
        map=segments_at(trace, step))


def _source_line_text(trace: Trace, line: SourceLine | None) -> str | None:
    """The text of a line of the program's own source file, if that file is at hand."""
    if line is None or Path(line.file).name != Path(trace.meta.program.path or "").name:
        return None
    text = trace.source_text()
    lines = text.splitlines() if text is not None else []
    return lines[line.line - 1].strip() if 0 < line.line <= len(lines) else None


# -- memory ----------------------------------------------------------------------------
def memory_at(session: Session, addr: int, length: int, step: int | None = None
              ) -> MemoryView:
    """Memory [addr, addr+length) before instruction `step` (default: the end) executes.

    Raises:
        ReplayError: the step is outside the run.
    """
    step = _step_or_last(session.trace, step)
    return session.reader.read(addr, length, step)


def symbolizer(session: Session, step: int | None = None) -> Symbolizer:
    """The trace's symbolizer, naming heap/stack/mmap addresses by the map at `step`."""
    return symbolizer_at(session.trace, _step_or_last(session.trace, step))


def stack_at(session: Session, step: int, window: int | None = None,
             registers: dict[str, int] | None = None) -> StackPicture:
    """The stack picture before instruction `step` executes.

    Args:
        session: the trace and its index.
        step: the step.
        window: only this many bytes above RSP (frames above it are not drawn).
        registers: the registers at `step`, when the caller has them (`State.registers`):
            saves a replay.

    Raises:
        ReplayError: the step is outside the run.
    """
    trace = session.trace
    check_step(trace, step)
    regs = registers or session.machine_state(step).registers
    return stack_picture(session.reader, symbolizer_at(trace, step), step, regs["rsp"],
                         regs["rbp"], regs["rip"], window=window)


# -- writes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class WhoWrote:
    """The last write into byte `addr` before `step`, and what that byte holds."""

    addr: int
    step: int
    byte: int | None            # None: not mapped at that step
    write: Write | None         # None: the byte holds its initial value
    symbol: str | None          # the writer's RIP, named
    line: SourceLine | None
    syscall: str | None         # for a kernel write, the syscall that made it

    @property
    def value(self) -> int | None:
        """What the write stored, as a little-endian number (its first 8 bytes)."""
        return None if self.write is None else int.from_bytes(self.write.data[:8], "little")

    def to_json(self) -> dict:
        w = self.write
        return {"addr": self.addr, "step": self.step, "byte": self.byte, "write": None if w is None
                else {"step": w.step, "rip": w.rip, "addr": w.addr, "size": w.size,
                      "source": w.source, "data": w.data.hex(), "value": self.value,
                      "symbol": self.symbol, "syscall": self.syscall,
                      "line": None if self.line is None
                      else {"file": self.line.file, "line": self.line.line}}}


def who_wrote(session: Session, addr: int, step: int | None = None) -> WhoWrote:
    """Who last wrote byte `addr` before instruction `step` (default: the end) executes.

    Raises:
        ReplayError: the step is outside the run.
    """
    trace = session.trace
    step = _step_or_last(trace, step)
    reader = session.reader
    w = reader.who_wrote(addr, step)
    byte = reader.read(addr, 1, step)
    symbols = symbolizer_at(trace, step)
    line = syscall = None
    if w is not None and w.source == "kernel":
        rows = [r for r in trace.syscalls.select(["step", "name"]).to_pylist()
                if r["step"] == w.step]
        syscall = rows[0]["name"] if rows else None
    elif w is not None:
        line = symbols.line_at(w.rip)
    return WhoWrote(addr, step, byte.data[0] if byte.mapped[0] else None, w,
                    None if w is None else symbols.name(w.rip), line, syscall)


def previous_write(session: Session, addr: int, step: int) -> Write | None:
    """The last write into byte `addr` made before `step` (None: none since its origin)."""
    return session.reader.who_wrote(addr, step)


def next_write(session: Session, addr: int, step: int) -> Write | None:
    """The first write into byte `addr` made after `step` (by a step > `step`)."""
    return session.index.writes.next_write(addr, step + 1)


# -- the access history ----------------------------------------------------------------
@dataclass(frozen=True)
class Accesses:
    """Every access to [addr, addr+length), with the previous and next around `step`."""

    addr: int
    length: int
    rows: list[dict]            # the `accesses` rows, in execution order
    previous: dict | None
    next: dict | None

    def to_json(self) -> dict:
        return {"addr": self.addr, "length": self.length, "accesses": self.rows,
                "previous": self.previous, "next": self.next}


def accesses(trace: Trace, addr: int, length: int = 1, step: int | None = None) -> Accesses:
    """The full access history of [addr, addr+length) (reads the trace only: no index)."""
    table: pa.Table = access_history(trace, addr, length)
    rows = table.to_pylist()
    for r in rows:
        r["source"] = str(r["source"])
    prev = nxt = None
    if step is not None:
        prev = next((r for r in reversed(rows) if r["step"] < step), None)
        nxt = next((r for r in rows if r["step"] >= step), None)
    return Accesses(addr, length, rows, prev, nxt)
