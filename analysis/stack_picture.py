"""The stack at a step as rows of 8 bytes, from the initial RSP down to RSP and the red zone
below it, each row said what it is (return address, saved RBP, local, argument), grouped into
frames. Plain data for `trace stack`; registers come from the caller (the replay side)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from analysis.memory import MemoryReader, segments_at
from analysis.symbols import Symbolizer
from analysis.write_index import Write

RED_ZONE = 128   # System V x86-64 ABI 3.2.2: 128 bytes below RSP are the leaf's to use


@dataclass(frozen=True)
class StackRow:
    """One 8-byte slot of the stack picture."""

    addr: int
    value: int | None           # None where the bytes are not mapped
    kind: str                   # return address, saved rbp, local, argument, argc, red zone
    meaning: str                # e.g. "→ fact+0x1a", "never written"
    frame: int | None           # 0 = innermost frame; None above the first frame
    writer: Write | None
    marks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Frame:
    """One call frame: from its return-address slot down to the next frame."""

    index: int
    function: str               # the function running in this frame
    top: int                    # address of its return-address slot (or the initial RSP)
    bottom: int                 # lowest address of the frame (RSP for the innermost)


@dataclass(frozen=True)
class StackPicture:
    """The whole picture: rows from the initial RSP down, and the frames."""

    step: int
    initial_rsp: int
    rsp: int
    rbp: int
    rows: list[StackRow]
    frames: list[Frame] = field(default_factory=list)

    def to_json(self) -> dict:
        """The `trace stack --json` document."""
        return {
            "step": self.step, "initial_rsp": self.initial_rsp, "rsp": self.rsp,
            "rbp": self.rbp,
            "frames": [{"index": f.index, "function": f.function, "top": f.top,
                        "bottom": f.bottom} for f in self.frames],
            "rows": [{"addr": r.addr, "value": r.value, "kind": r.kind, "meaning": r.meaning,
                      "frame": r.frame, "marks": list(r.marks),
                      "written_at": None if r.writer is None else r.writer.step}
                     for r in self.rows]}


def _text_ranges(reader: MemoryReader, step: int) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in segments_at(reader.trace, step) if "x" in s.perms]


def _is_return_address(w: Write | None, value: int, text: list[tuple[int, int]]) -> bool:
    # A `call` stores the address of the next instruction, 2 to 7 bytes after its own RIP.
    return (w is not None and w.source == "implicit" and w.size == 8
            and 0 < value - w.rip <= 15 and any(a <= value < b for a, b in text))


def stack_picture(reader: MemoryReader, symbols: Symbolizer, step: int, rsp: int, rbp: int,
                  rip: int, window: int | None = None) -> StackPicture:
    """Builds the picture of the stack before instruction `step` executes.

    Args:
        reader: memory at any step (through the write index).
        symbols: the trace's symbols.
        step: the step.
        rsp, rbp, rip: the registers at that step (from the replay).
        window: only this many bytes above RSP (frames above it are not drawn).
    """
    top = initial = reader.trace.initial_rsp
    if window is not None:
        top = min(top, rsp + window - 8)
    low = min(rsp, top) - RED_ZONE
    length = top + 8 - low
    view = reader.read(low, length, step)
    candidates = reader.index.latest_writes(low, length, step)
    text = _text_ranges(reader, step)
    slots = list(range(top, low - 1, -8))
    values: dict[int, int | None] = {}
    for a in slots:
        i = a - low
        values[a] = (int.from_bytes(view.data[i:i + 8], "little")
                     if all(view.mapped[i:i + 8]) else None)
    # Each slot's last writer: paint the writes in execution order over the slots' first bytes.
    writers: dict[int, Write | None] = dict.fromkeys(slots)
    for w in candidates:  # already in execution order
        for b in range(w.addr, w.addr + w.size):
            if b in writers:
                writers[b] = w
    ret_slots = [a for a in slots if a >= rsp and values[a] is not None
                 and _is_return_address(writers[a], values[a], text)]
    chain: set[int] = set()
    p = rbp
    while rsp <= p < top and p not in chain and p % 8 == 0:
        chain.add(p)
        nxt = values.get(p)
        if nxt is None or nxt <= p:
            break
        p = nxt
    # Frames, innermost first: frame k spans from return slot R_k down to R_{k-1}+8 (or RSP).
    frames: list[Frame] = []
    order = sorted(ret_slots)  # lowest address = innermost
    running = [symbols.name(rip) or f"{rip:#x}"]
    for r in order:
        running.append(symbols.name(values[r]) or f"{values[r]:#x}")
    for k, r in enumerate(order):
        bottom = rsp if k == 0 else order[k - 1] + 8
        frames.append(Frame(k, _function(running[k]), r, bottom))
    frames.append(Frame(len(order), _function(running[len(order)]), top,
                        (order[-1] + 8) if order else rsp))
    rows = []
    ret_set = set(ret_slots)
    # Frames tile [RSP, top] without gaps, innermost (lowest) first.
    bottoms = [f.bottom for f in frames]
    for a in slots:
        value, w = values[a], writers[a]
        k = bisect.bisect_right(bottoms, a) - 1
        frame = frames[k].index if k >= 0 and frames[k].bottom <= a <= frames[k].top else None
        marks = tuple(m for m, reg in (("RSP", rsp), ("RBP", rbp)) if reg == a)
        if a < rsp:
            kind, meaning, frame = "red zone", "", None
        elif a == initial:
            kind, meaning = "argc", ""
        elif a in ret_set:
            kind, meaning = "return address", f"→ {symbols.name(value) or hex(value)}"
        elif a in chain or (
                a + 8 in ret_set and w is not None and w.source == "implicit"
                and value is not None and rsp <= value <= top + 8):
            kind, meaning = "saved rbp", "(the caller's)"
        elif _is_argument(a, ret_set, writers):
            kind, meaning = "argument", "pushed before the call"
        else:
            kind, meaning = "local", ""
        if kind == "local" and w is None:
            meaning = "never written"
        rows.append(StackRow(a, value, kind, meaning, frame, w, marks))
    return StackPicture(step, initial, rsp, rbp, rows, frames)


def _is_argument(a: int, ret_set: set[int], writers: dict[int, Write | None]) -> bool:
    # Pushed (implicit store) in the caller, contiguous with a return address below it.
    p = a - 8
    while p in writers:
        if p in ret_set:
            break
        w = writers.get(p)
        if w is None or w.source != "implicit":
            return False
        p -= 8
    w = writers.get(a)
    return p in ret_set and w is not None and w.source == "implicit" \
        and writers[p] is not None and w.step < writers[p].step


def _function(label: str) -> str:
    name = label.split("+")[0]
    # NASM names a local label `.x` under `fn` as `fn.x`: the frame is fn's.
    return name.split(".")[0] if not name.startswith(".") and "." in name else name
