"""Memory at any step, rebuilt from the trace alone: the initial image, then every recorded
write (CPU stores with their values, the kernel's bytes) up to the step, on the map of that
step. Also: who wrote a byte, an address's whole access history, symbols and source lines.

Step convention: the state "at step N" is the state before instruction N executes, so it
includes the effects of steps 0..N-1 (a syscall's kernel writes belong to its step)."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, replace
from functools import cached_property

import pyarrow as pa

from analysis.trace import Trace
from analysis.write_index import Write, WriteIndex

PAGE = 0x1000


@dataclass(frozen=True)
class Segment:
    """A mapped range at a step; `fresh_since` is the step whose syscall mapped it anew
    (its bytes start as zeros, or as the bytes at `moved_from` at that step when an mremap
    moved them there), None when it holds the initial image."""

    start: int
    end: int
    perms: str
    kind: str
    name: str
    fresh_since: int | None
    moved_from: int | None = None

    def slice(self, start: int, end: int, **changes) -> Segment:
        """The part [start, end) of this segment (its origin shifted to match)."""
        moved = None if self.moved_from is None else self.moved_from + (start - self.start)
        return replace(self, start=start, end=end, moved_from=moved, **changes)


def _mremap_moves(trace: Trace) -> dict[int, tuple[int, int, int]]:
    """step -> (old address, new address, bytes moved) of each mremap that moved a mapping
    (the kernel copies those pages; no write records it)."""
    moves = {}
    rows = trace.syscalls.select(["step", "name", "args", "ret"]).to_pylist()
    for r in rows:
        if r["name"] == "mremap" and r["ret"] is not None and r["ret"] >= 0 \
                and r["ret"] != r["args"][0]:
            size = (r["args"][1] + PAGE - 1) & ~(PAGE - 1)
            moves[r["step"]] = (r["args"][0], r["ret"], size)
    return moves


def _initial_event_count(trace: Trace, events: list[dict]) -> int:
    # (A stack growth by instruction 0 is no part of the initial map.)
    n = sum(1 for e in events if e["step"] == 0 and e["action"] != "grow")
    for row in trace.syscalls.select(["step", "detail"]).to_pylist():
        if row["step"] == 0 and row["detail"] not in (None, "unsupported"):
            n -= len(json.loads(row["detail"]))
    return n


def segments_at(trace: Trace, step: int) -> list[Segment]:
    """The memory map before instruction `step` executes, with where each range's bytes
    come from (the regions events of every earlier syscall applied to the initial map)."""
    events = trace.regions.to_pylist()
    n_initial = _initial_event_count(trace, events)
    moves = _mremap_moves(trace)
    segs: list[Segment] = []
    for i, ev in enumerate(events):
        initial = i < n_initial
        if not initial and ev["step"] >= step:
            break
        fresh = None if initial else ev["step"]
        start, end, action = ev["start"], ev["end"], ev["action"]
        if action == "grow":
            # New stack pages hold zeros and whatever was written there since: nothing
            # could be written before the growth, so they read as part of the image, and
            # join the stack segment above them (one [stack], as Linux shows it).
            grown = Segment(start, end, ev["perms"], "stack", ev["name"] or "", None)
            above = next((s for s in segs if s.kind == "stack" and s.start == end
                          and s.fresh_since is None and s.moved_from is None), None)
            if above is not None:
                segs.remove(above)
                grown = replace(above, start=start)
            segs = sorted([*segs, grown], key=lambda s: s.start)
            continue
        if action == "brk":
            heap = [s for s in segs if s.kind == "heap"]
            old_end = max((s.end for s in heap), default=start)
            segs = [s for s in segs if s.kind != "heap"]
            for s in heap:  # what the heap keeps, keeps its origin
                if s.start < end:
                    segs.append(s.slice(s.start, min(s.end, end)))
            if end > old_end:
                segs.append(Segment(old_end, end, ev["perms"], "heap", ev["name"] or "",
                                    fresh))
            segs.sort(key=lambda s: s.start)
            continue
        pieces: list[Segment] = []
        for s in segs:
            if s.end <= start or s.start >= end:
                pieces.append(s)
                continue
            if s.start < start:
                pieces.append(s.slice(s.start, start))
            if s.end > end:
                pieces.append(s.slice(end, s.end))
            if action == "protect":
                pieces.append(s.slice(max(s.start, start), min(s.end, end), perms=ev["perms"]))
        if action == "map":
            new = Segment(start, end, ev["perms"], ev["kind"], ev["name"] or "", fresh)
            move = None if initial else moves.get(ev["step"])
            if move is not None and move[1] == start:
                old, _, size = move
                pieces.append(replace(new, end=min(end, start + size), moved_from=old))
                if start + size < end:
                    pieces.append(new.slice(start + size, end))
            else:
                pieces.append(new)
        segs = sorted(pieces, key=lambda s: s.start)
    return segs


@dataclass(frozen=True)
class MemoryView:
    """Bytes of [start, start+len) at a step; `mapped[i]` False where nothing was mapped."""

    start: int
    step: int
    data: bytes
    mapped: tuple[bool, ...]


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


class Symbols:
    """Address -> symbol+offset and source line, from the trace's symbols and lines."""

    def __init__(self, trace: Trace):
        syms = [s for s in trace.symbols.to_pylist() if s["name"] and s["type"] != "file"]
        syms.sort(key=lambda s: (s["addr"], s["name"].startswith(".")))
        self._addrs = [s["addr"] for s in syms]
        self._syms = syms
        lines = sorted(trace.lines.to_pylist(), key=lambda r: r["addr"])
        self._line_addrs = [r["addr"] for r in lines]
        self._lines = lines

    def symbolize(self, addr: int) -> str | None:
        """`name+0xoff` of the nearest symbol at or below `addr` in the same section."""
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i < 0:
            return None
        # Prefer a global name over a local label at the same address.
        cands = [s for s in self._syms if s["addr"] == self._addrs[i]]
        s = cands[-1] if cands else self._syms[i]
        for c in cands:
            if not c["name"].startswith("."):
                s = c
        if s["size"] and addr >= s["addr"] + s["size"] and s["type"] == "object":
            return None
        off = addr - s["addr"]
        if off > 0x10000:
            return None
        return s["name"] if off == 0 else f"{s['name']}+{off:#x}"

    def exact(self, addr: int) -> str | None:
        """The name of a symbol that starts exactly at `addr`, if any."""
        names = [s["name"] for s in self._syms if s["addr"] == addr]
        return names[0] if names else None

    def line(self, rip: int) -> tuple[str, int] | None:
        """(file, line) of the instruction at `rip`, from the DWARF line table."""
        i = bisect.bisect_right(self._line_addrs, rip) - 1
        if i < 0:
            return None
        row = self._lines[i]
        return row["file"], row["line"]
