"""What the viewer shows, as JSON-able records: one open trace answering questions about any
step. The trace, its replay index, symbols and the replay engine stay open between requests,
so that stepping forward replays one instruction, not a keyframe interval."""

from __future__ import annotations

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


class ViewerSession:
    """One trace opened for the viewer: a client of the time-travel queries (`timetravel`)
    that shapes their answers for the page. Thread-safe (the replay engine is locked)."""

    def __init__(self, trace_path: Path, allocator: str | None = None):
        from timetravel import open_session

        self.tt = open_session(trace_path)
        self.trace, self.index = self.tt.trace, self.tt.index
        self.allocator = allocator

    # -- shared pieces ---------------------------------------------------------------------
    @property
    def reader(self):
        return self.tt.reader

    @cached_property
    def last_step(self) -> int:
        from timetravel import last_step

        return last_step(self.trace)

    @cached_property
    def _image(self):
        from analysis.code import MemoryImage

        return MemoryImage(self.trace.table("memory_image", ["start", "data"]))

    def symbols(self, step: int):
        """The symbolizer naming addresses by the map at `step` (heap+0x18, stack top-0x40)."""
        from timetravel import symbolizer

        return symbolizer(self.tt, step)

    def check_step(self, step: int) -> int:
        """`step` when the run has it.

        Raises:
            ViewerError: outside 0 .. last step.
        """
        from timetravel import check_step

        try:
            return check_step(self.trace, step)
        except TracerError as exc:
            raise ViewerError(str(exc)) from None

    def resolve(self, text: str, length: int = 1) -> int:
        """An address from a request: 0x..., decimal, or symbol[+offset].

        Raises:
            ViewerError: not an address, or the range leaves user memory.
        """
        from timetravel import resolve_address

        try:
            return resolve_address(self.trace, text.strip(), length)
        except TracerError as exc:
            raise ViewerError(str(exc)) from None

    def _registers_at(self, step: int) -> dict[str, int]:
        return self.tt.machine_state(step).registers

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
        """The `trace state --json` document, plus the registers the last step changed."""
        from timetravel import state_at

        self.check_step(step)
        before = self._registers_at(step - 1) if step > 0 else None
        doc = state_at(self.tt, step).to_json()
        regs = doc["registers"]
        doc["changed"] = [] if before is None else sorted(
            name for name in regs if before.get(name) != regs[name])
        # JavaScript numbers hold 53 bits: the page reads 64-bit values from these.
        doc["registers_hex"] = {k: f"{v:#x}" for k, v in regs.items()}
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

    def stack(self, step: int) -> dict:
        """The stack picture at `step` (as `trace stack --json`), with what the last step
        pushed (rows it wrote) and popped (rows RSP moved up past)."""
        from timetravel import stack_at

        self.check_step(step)
        before = self._registers_at(step - 1) if step > 0 else None
        regs = self._registers_at(step)
        pic = stack_at(self.tt, step, registers=regs)
        doc = pic.to_json()
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
        from timetravel import memory_at

        start = self.resolve(addr_text, length)
        view = memory_at(self.tt, start, length, step)
        written = [False] * length
        for w in self.index.writes.latest_writes(start, length, step):
            if w.step == step - 1:
                for b in range(max(w.addr, start), min(w.addr + w.size, start + length)):
                    written[b - start] = True
        return {"step": step, "start": start, "length": length,
                "symbol": self.symbols(step).name(start),
                "bytes": view.data.hex(), "mapped": [bool(m) for m in view.mapped],
                "written_by_last_step": written}

    def who_wrote(self, step: int, addr_text: str) -> dict:
        """The `trace who-wrote --json` document for one byte at `step`."""
        from timetravel import who_wrote

        self.check_step(step)
        addr = self.resolve(addr_text)
        doc = who_wrote(self.tt, addr, step).to_json()
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
        rows = window(self._image, self.symbols(step), rip, DISASSEMBLY_BEFORE,
                      DISASSEMBLY_AFTER)
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

    def seek(self, step: int, what: str, forward: bool, addr_text: str | None):
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
