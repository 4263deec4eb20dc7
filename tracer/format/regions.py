"""The memory map as the `regions` table describes it: one `RegionEvent` type, one `Segment`
type and the one pure applier of an event to a map, shared by the recorder's address space,
the replay engine and every reader. Pure Python: no Unicorn, no pyarrow.

Semantics of each action (what the recorder emits, as Linux does it):
- `map` [start, end): whatever was there is replaced (MAP_FIXED) by a new mapping.
- `unmap` [start, end): whatever was there goes; what lies around it stays.
- `protect` [start, end): the pieces there take `perms`, keeping their kind and name.
- `grow` [start, end): the stack VMA that began at `end` now begins at `start`.
- `brk` [start, end): the heap now ends at page `end` (`start` is the initial break). Like
  Linux's brk(2), a growth maps only the new pages [previous end, end) and a shrink unmaps
  only [end, previous end): a part of the heap that was unmapped or re-protected meanwhile
  stays so (the heap is not redrawn as one [start, end) range).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

PAGE = 0x1000


def page_down(x: int) -> int:
    return x & ~(PAGE - 1)


def page_up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


@dataclass(frozen=True)
class RegionEvent:
    """One row of the `regions` table (`step` is the step that made it)."""

    action: str   # map, unmap, protect, brk, grow
    start: int
    end: int
    perms: str
    kind: str
    name: str
    step: int = 0

    @classmethod
    def from_row(cls, row: dict) -> RegionEvent:
        """The event of one `regions` row (as `to_pylist` gives it)."""
        return cls(row["action"], row["start"], row["end"], row["perms"] or "",
                   row["kind"] or "", row["name"] or "", row["step"])


@dataclass(frozen=True)
class Segment:
    """A mapped range. `fresh_since` is the step whose syscall mapped it anew (its bytes
    start as zeros, or as the bytes at `moved_from` at that step when an mremap moved them
    there); None when it holds the initial image (or when nobody tracks origins)."""

    start: int
    end: int
    perms: str
    kind: str
    name: str
    fresh_since: int | None = None
    moved_from: int | None = None

    @property
    def size(self) -> int:
        return self.end - self.start

    def slice(self, start: int, end: int, **changes) -> Segment:
        """The part [start, end) of this segment (its origin shifted to match)."""
        moved = None if self.moved_from is None else self.moved_from + (start - self.start)
        return replace(self, start=start, end=end, moved_from=moved, **changes)


@dataclass(frozen=True)
class MremapMove:
    """An mremap that moved a mapping: the kernel copied `size` bytes from `old` to `new`
    (no write records it)."""

    old: int
    new: int
    size: int


def mremap_move(name: str, args, ret: int | None) -> MremapMove | None:
    """The move made by one recorded syscall, if it is an mremap that moved its mapping."""
    if name != "mremap" or ret is None or ret < 0 or ret == args[0]:
        return None
    return MremapMove(args[0], ret, page_up(args[1]))


@dataclass(frozen=True)
class RegionChange:
    """What one event did: segments removed (as they were), added, and re-protected."""

    unmapped: tuple[Segment, ...] = ()
    mapped: tuple[Segment, ...] = ()
    protected: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class RegionMap:
    """The map at one moment: segments in address order and the heap's page end (None
    before the first `brk` event). Immutable: `apply` returns the next map."""

    segments: tuple[Segment, ...] = ()
    brk_end: int | None = None
    change: RegionChange = field(default=RegionChange(), compare=False)

    def apply(self, ev: RegionEvent, fresh: int | None = None,
              move: MremapMove | None = None) -> RegionMap:
        """The map after `ev`.

        Args:
            ev: the event.
            fresh: the step to record as the new segments' `fresh_since` (None: the
                initial image, or origins not tracked).
            move: the mremap move of the event's step, if any: the part of a `map` at its
                destination holds the moved bytes (`moved_from`).
        """
        segs, brk_end = list(self.segments), self.brk_end
        if ev.action == "grow":
            return self._grow(ev)
        if ev.action == "brk":
            top = ev.start if brk_end is None else brk_end
            if ev.end < top:
                kept, gone = _cut(segs, ev.end, top)
                return self._next(kept, ev.end, RegionChange(unmapped=gone))
            if ev.end == top:
                return replace(self, brk_end=top, change=RegionChange())
            new = Segment(top, ev.end, ev.perms, "heap", ev.name, fresh)
            kept, gone = _cut(segs, top, ev.end)
            below = next((s for s in kept if s.end == top and s.kind == "heap"
                          and replace(s, start=top, end=ev.end) == new), None)
            if below is not None:  # the heap VMA grows in place (one [heap], as Linux shows)
                kept.remove(below)
                kept.append(replace(below, end=ev.end))
            else:
                kept.append(new)
            return self._next(kept, ev.end, RegionChange(unmapped=gone, mapped=(new,)))
        if ev.action == "protect":
            kept, gone = _cut(segs, ev.start, ev.end)
            changed = tuple(s.slice(s.start, s.end, perms=ev.perms) for s in gone)
            return self._next(kept + list(changed), brk_end, RegionChange(protected=changed))
        if ev.action == "unmap":
            kept, gone = _cut(segs, ev.start, ev.end)
            return self._next(kept, brk_end, RegionChange(unmapped=gone))
        if ev.action == "map":
            kept, gone = _cut(segs, ev.start, ev.end)
            new = Segment(ev.start, ev.end, ev.perms, ev.kind, ev.name, fresh)
            added = [new]
            if move is not None and move.new == ev.start:
                moved_end = min(ev.end, ev.start + move.size)
                added = [replace(new, end=moved_end, moved_from=move.old)]
                if moved_end < ev.end:
                    added.append(new.slice(moved_end, ev.end))
            return self._next(kept + added, brk_end,
                              RegionChange(unmapped=gone, mapped=(new,)))
        raise ValueError(f"unknown region action {ev.action!r} at step {ev.step}")

    def _grow(self, ev: RegionEvent) -> RegionMap:
        # New stack pages hold zeros and whatever was written there since: nothing could be
        # written before the growth, so they are part of the image and join the [stack]
        # above them unless that one was mapped anew (one [stack], as Linux shows it).
        segs = list(self.segments)
        grown = Segment(ev.start, ev.end, ev.perms, "stack", ev.name)
        above = next((s for s in segs if s.kind == "stack" and s.start == ev.end
                      and s.fresh_since is None and s.moved_from is None), None)
        if above is not None:
            segs.remove(above)
            grown = replace(above, start=ev.start)
        return self._next([*segs, grown], self.brk_end, RegionChange(mapped=(grown,)))

    def _next(self, segs: list[Segment], brk_end: int | None,
              change: RegionChange) -> RegionMap:
        return RegionMap(tuple(sorted(segs, key=lambda s: s.start)), brk_end, change)

    def at(self, addr: int) -> Segment | None:
        """The segment holding `addr`, if any."""
        return next((s for s in self.segments if s.start <= addr < s.end), None)


def _cut(segs: list[Segment], start: int, end: int) -> tuple[list[Segment], tuple[Segment, ...]]:
    """Splits `segs` at [start, end): (what lies outside it, the pieces inside it)."""
    kept: list[Segment] = []
    inside: list[Segment] = []
    for s in segs:
        if s.end <= start or s.start >= end:
            kept.append(s)
            continue
        if s.start < start:
            kept.append(s.slice(s.start, start))
        if s.end > end:
            kept.append(s.slice(end, s.end))
        inside.append(s.slice(max(s.start, start), min(s.end, end)))
    return kept, tuple(inside)


def initial_event_count(events: list[RegionEvent], syscall_rows: list[dict]) -> int:
    """How many of the step-0 events are the initial map: not those a syscall at step 0
    made (its `detail` lists them, one per event, written after the initial ones), nor a
    stack growth by instruction 0.

    Args:
        events: the `regions` table's events in recorded order.
        syscall_rows: the `syscalls` rows (`step` and `detail` are read).
    """
    n = sum(1 for e in events if e.step == 0 and e.action != "grow")
    for row in syscall_rows:
        if row["step"] == 0 and row["detail"] not in (None, "unsupported", "signal"):
            n -= len(json.loads(row["detail"]))
    return n
