"""What the viewer shows, as JSON-able records: one open trace answering questions about any
step. The trace, its replay index, symbols and the replay engine stay open between requests,
so that stepping forward replays one instruction, not a keyframe interval."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tracer.errors import TracerError

# How much the page asks for at most: a request is answered from memory in milliseconds.
MAX_MEMORY_BYTES = 4096
DISASSEMBLY_BEFORE = 8
DISASSEMBLY_AFTER = 16
TIMELINE_POINTS = 2000
TIMELINE_MARKS = 2000
RECENT_STEPS = 8
SEEK_KINDS = ("call", "ret", "syscall", "write")


class ViewerError(TracerError):
    """A request the trace cannot answer (a step outside the run, an unknown address):
    the message is one sentence for the user, sent with a 4xx status."""


@dataclass(frozen=True)
class SeekTarget:
    """Where a `next call`/`previous syscall`/... jump lands (None: there is no such step)."""

    step: int | None
    what: str


class ViewerSession:
    """One trace opened for the viewer. Thread-safe: the replay engine is used under a lock
    (Unicorn is not re-entrant), the rest is read-only."""

    def __init__(self, trace_path: Path, allocator: str | None = None):
        from vmtrace.commands._replay_common import open_with_index

        self.trace, self.index = open_with_index(trace_path)
        self.allocator = allocator
        self._lock = threading.Lock()
        self._machine = None
        self._machine_step = -1
        self._recent: dict[int, dict[str, int]] = {}

    # -- shared pieces ---------------------------------------------------------------------
    @cached_property
    def symbols(self):
        from analysis.memory import Symbols

        return Symbols(self.trace)

    @cached_property
    def reader(self):
        from analysis.memory import MemoryReader

        return MemoryReader(self.trace, self.index.writes)

    @cached_property
    def inputs(self):
        from tracer.replay.inputs import load_inputs

        return load_inputs(self.trace.files)

    @cached_property
    def last_step(self) -> int:
        return self.inputs.instructions

    @cached_property
    def _image(self):
        from analysis.code import MemoryImage

        return MemoryImage(self.trace.table("memory_image", ["start", "data"]))

    def check_step(self, step: int) -> int:
        """`step` when the run has it.

        Raises:
            ViewerError: outside 0 .. last step.
        """
        if not 0 <= step <= self.last_step:
            raise ViewerError(f"step {step:,} is outside the run (steps 0 to "
                              f"{self.last_step:,}; the state at step N is the state before "
                              "instruction N executes)")
        return step

    def resolve(self, text: str, length: int = 1) -> int:
        """An address from a request: 0x..., decimal, or symbol[+offset].

        Raises:
            ViewerError: not an address, or the range leaves user memory.
        """
        from vmtrace.commands._replay_common import UsageError, address

        try:
            return address(self.trace, text.strip(), length)
        except UsageError as exc:
            raise ViewerError(str(exc)) from None

    def _registers_at(self, step: int) -> dict[str, int]:
        """Registers before instruction `step` runs, replaying forward from the last answer
        when that is closer than the nearest keyframe. The last few answers are kept: a
        step change asks for the step and the one before it."""
        from tracer.replay.keyframes import machine_at

        with self._lock:
            if step in self._recent:
                return self._recent[step]
            m = self._machine
            near = self._nearest_keyframe(step)
            if m is None or step < self._machine_step or near > self._machine_step:
                m = machine_at(self.trace.files, step, self.index.keyframes, self.inputs)
            else:
                m.run(step - self._machine_step)
            self._machine, self._machine_step = m, step
            regs = m.registers()
            self._recent[step] = regs
            while len(self._recent) > RECENT_STEPS:
                del self._recent[next(iter(self._recent))]
            return regs

    def _nearest_keyframe(self, step: int) -> int:
        import bisect

        steps = self._keyframe_steps
        return steps[bisect.bisect_right(steps, step) - 1] if steps else 0

    @cached_property
    def _keyframe_steps(self) -> list[int]:
        frames = self.index.keyframes
        return [] if frames is None else sorted(frames.steps())

    # -- the panes -------------------------------------------------------------------------
    def meta(self) -> dict:
        """What the page needs once: the program, the number of steps, how the run ended."""
        meta = self.trace.meta
        end = meta.end
        fault = None if end is None or end.fault is None else {
            "signal": end.fault.signal, "cause": end.fault.cause, "step": end.fault.step,
            "rip": end.fault.rip, "address": end.fault.address}
        return {
            "program": meta.program.name,
            "kind": meta.program.kind,
            "steps": self.last_step,
            "initial_rsp": self.trace.initial_rsp,
            "initial_brk": meta.initial.brk,
            "end": None if end is None else {
                "stop_reason": end.stop_reason, "exit_code": end.exit_code,
                "signal": end.signal, "fault": fault, "truncated": end.truncated},
            "allocator": self.allocator,
        }

    def state(self, step: int) -> dict:
        """The `trace state --json` document, plus the registers the last step changed and
        the source text of the current line."""
        from vmtrace.commands.state import state_document

        self.check_step(step)
        before = self._registers_at(step - 1) if step > 0 else None
        regs = self._registers_at(step)
        doc = state_document(self.trace, step, self._machine_state(step), self.symbols)
        doc["changed"] = [] if before is None else sorted(
            name for name in doc["registers"] if before.get(name) != regs.get(name))
        # JavaScript numbers hold 53 bits: the page reads 64-bit values from these.
        doc["registers_hex"] = {k: f"{v:#x}" for k, v in doc["registers"].items()}
        doc["newest_mapping"] = self._newest_mapping(step)
        return doc

    @cached_property
    def _map_steps(self) -> list[tuple[int, int]]:
        """(step, start) of every mapping a syscall made, in step order."""
        rows = self.trace.table("regions", ["step", "action", "start"]).to_pylist()
        return [(r["step"], r["start"]) for r in rows if r["action"] == "map" and r["step"]]

    def _newest_mapping(self, step: int) -> int | None:
        """Where the latest mapping made before `step` starts (None: only the initial map)."""
        made = [start for s, start in self._map_steps if s < step]
        return made[-1] if made else None

    def _machine_state(self, step: int):
        from tracer.replay.state import MachineState, decode_flags, disassemble

        regs = self._registers_at(step)
        with self._lock:
            try:
                code = bytes(self._machine.uc.mem_read(regs["rip"], 16))
            except Exception:  # RIP not mapped: the next event is a fetch fault
                code = b""
            ended = self._machine.ending is not None
        return MachineState(step=step, registers=regs, flags=decode_flags(regs["eflags"]),
                            instruction=disassemble(code, regs["rip"]) if code else None,
                            ended=ended)

    def stack(self, step: int) -> dict:
        """The stack picture at `step` (as `trace stack --json`), with what the last step
        pushed (rows it wrote) and popped (rows RSP moved up past)."""
        from analysis.stack_picture import stack_picture
        from vmtrace.commands.stack import stack_document

        self.check_step(step)
        before = self._registers_at(step - 1) if step > 0 else None
        regs = self._registers_at(step)
        pic = stack_picture(self.reader, self.symbols, step, regs["rsp"], regs["rbp"],
                            regs["rip"])
        doc = stack_document(pic)
        doc["rsp_hex"], doc["rbp_hex"] = f"{pic.rsp:#x}", f"{pic.rbp:#x}"
        last = step - 1
        old_rsp = before["rsp"] if before else regs["rsp"]
        for row in doc["rows"]:
            row["value_hex"] = None if row["value"] is None else f"{row['value']:#x}"
            row["pushed"] = row["written_at"] == last and row["addr"] >= regs["rsp"]
            row["popped"] = old_rsp <= row["addr"] < regs["rsp"]
        return doc

    def memory(self, step: int, addr_text: str, length: int = 256) -> dict:
        """`length` bytes from an address or symbol at `step`: the bytes, which are mapped,
        and which the last step wrote (with the writer of each such write)."""
        self.check_step(step)
        if not 1 <= length <= MAX_MEMORY_BYTES:
            raise ViewerError(f"a memory request asks for 1 to {MAX_MEMORY_BYTES:,} bytes, "
                              f"not {length:,}")
        start = self.resolve(addr_text, length)
        view = self.reader.read(start, length, step)
        written = [False] * length
        for w in self.index.writes.latest_writes(start, length, step):
            if w.step == step - 1:
                for b in range(max(w.addr, start), min(w.addr + w.size, start + length)):
                    written[b - start] = True
        return {"step": step, "start": start, "length": length,
                "symbol": self.symbols.symbolize(start),
                "bytes": view.data.hex(), "mapped": [bool(m) for m in view.mapped],
                "written_by_last_step": written}

    def who_wrote(self, step: int, addr_text: str) -> dict:
        """The `trace who-wrote --json` document for one byte at `step`."""
        from vmtrace.commands.who_wrote import who_wrote_document

        self.check_step(step)
        addr = self.resolve(addr_text)
        doc = who_wrote_document(self.trace, self.reader, self.symbols, addr, step)
        doc["addr_hex"] = f"{addr:#x}"
        if doc["write"] is not None:
            doc["write"]["value_hex"] = f"{doc['write']['value']:#x}"
        return doc

    def disassembly(self, step: int) -> dict:
        """The instructions around RIP at `step`, from the start of its function when that is
        near, with symbols for call/jump targets and RIP-relative operands."""
        from vmtrace.viewer.disasm import window

        self.check_step(step)
        rip = self._registers_at(step)["rip"]
        rows = window(self._image, self.symbols, rip, DISASSEMBLY_BEFORE, DISASSEMBLY_AFTER)
        return {"step": step, "rip": rip, "instructions": rows}

    def output(self, step: int) -> dict:
        """What the program wrote to stdout/stderr before `step` (the syscalls of earlier
        steps), as text with undecodable bytes replaced."""
        self.check_step(step)
        parts = [{"fd": r["fd"], "text": r["data"].decode("utf-8", "replace")}
                 for r in self._output_rows if r["step"] < step]
        return {"step": step, "chunks": parts}

    @cached_property
    def _output_rows(self) -> list[dict]:
        return self.trace.table("output", ["step", "fd", "data"]).to_pylist()

    @cached_property
    def _timeline(self) -> dict:
        from vmtrace.viewer.timeline import timeline_document

        return timeline_document(self.trace, TIMELINE_POINTS, TIMELINE_MARKS)

    def timeline(self) -> dict:
        """Stack depth and program break over the whole run, and markers (syscalls, faults,
        calls and returns) for the strip above the panes."""
        return self._timeline

    @cached_property
    def _source(self) -> dict:
        from vmtrace.viewer.timeline import source_document

        return source_document(self.trace)

    def source(self) -> dict:
        """The source listing with per-line counts (empty when the source is not found)."""
        return self._source

    def heap(self, step: int) -> dict:
        """Heap blocks live/freed at `step` when an allocator is known (else `available`
        false and the reason)."""
        from vmtrace.viewer.heap_blocks import heap_document

        self.check_step(step)
        return heap_document(self, step)

    def seek(self, step: int, what: str, forward: bool, addr_text: str | None) -> SeekTarget:
        """The next (or previous) call, return, syscall or write to an address from `step`."""
        from vmtrace.viewer.seek import seek

        self.check_step(step)
        if what not in SEEK_KINDS:
            raise ViewerError(f"cannot seek to {what!r}: one of {', '.join(SEEK_KINDS)}")
        addr = None
        if what == "write":
            if not addr_text:
                raise ViewerError("seeking the next write needs an address to watch")
            addr = self.resolve(addr_text)
        return seek(self, step, what, forward, addr)
