"""Jumps through the run: the next (or previous) call, return, syscall, or write to a
watched byte. A jump lands on the state just after the event (the callee's first
instruction, the caller after `ret`, the bytes as written), except for a syscall, which
lands on the `syscall` instruction itself so that its arguments are in the registers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vmtrace.viewer.session import ViewerSession


@dataclass(frozen=True)
class SeekTarget:
    """Where a `next call`/`previous syscall`/... jump lands (None: there is no such step)."""

    step: int | None
    what: str

_CACHE_ATTR = "_seek_steps"


def event_steps(session: ViewerSession, what: str) -> np.ndarray:
    """Sorted steps at which the page lands for `what` (call/ret/syscall), built once."""
    cache = session.__dict__.setdefault(_CACHE_ATTR, {})
    if what not in cache:
        if what == "syscall":
            steps = session.trace.table("syscalls", ["step"]).column("step").to_numpy()
        else:
            table = session.trace.sql(
                f"SELECT step + 1 AS step FROM rsp WHERE cause = '{what}' ORDER BY step",
                {"rsp": ["step", "cause"]})
            steps = table.column("step").to_numpy()
        cache[what] = np.asarray(steps, dtype=np.uint64)
    return cache[what]


def _landing(steps: np.ndarray, step: int, forward: bool) -> int | None:
    if forward:
        i = int(np.searchsorted(steps, np.uint64(step), "right"))
        return int(steps[i]) if i < len(steps) else None
    i = int(np.searchsorted(steps, np.uint64(step), "left")) - 1
    return int(steps[i]) if i >= 0 else None


def seek(session: ViewerSession, step: int, what: str, forward: bool,
         addr: int | None) -> SeekTarget:
    """The step to show after a jump from `step` (None in the target: no such event)."""
    if what == "write":
        writes = session.index.writes
        if forward:
            w = writes.next_write(addr, step)  # a write by step s shows at s + 1 > step
            landing = None if w is None else w.step + 1
        else:
            # The write shown at `step` is by step - 1: the previous one is before that.
            earlier = [w for w in writes.latest_writes(addr, 1, max(step - 1, 0))
                       if w.covers(addr)]
            landing = max(w.step for w in earlier) + 1 if earlier else None
        if landing is not None and landing > session.last_step:
            landing = None
        return SeekTarget(landing, what)
    return SeekTarget(_landing(event_steps(session, what), step, forward), what)
