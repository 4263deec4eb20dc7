"""The heap pane: the allocator's blocks at a step (live, freed, and freed space not yet
reused), when the program's allocator is known (the C library's, or `alloc=SYM,free=SYM`)."""

from __future__ import annotations

import pandas as pd

_CACHE_ATTR = "_heap_tracking"


def _tracking(session):
    """(fragmentation or None, why not), computed once: it replays the run to read the
    allocator's arguments and results."""
    cache = session.__dict__
    if _CACHE_ATTR not in cache:
        from analysis.errors import AllocatorSpecError
        from vmtrace.commands.report import allocator_tracking

        try:
            frag, _ = allocator_tracking(session.trace, session.allocator)
            reason = None if frag is not None else (
                "no allocator: the program defines no malloc; start the viewer with "
                "--allocator alloc=SYM,free=SYM to name its own")
        except AllocatorSpecError as exc:
            frag, reason = None, str(exc)
        cache[_CACHE_ATTR] = (frag, reason)
    return cache[_CACHE_ATTR]


def heap_document(session, step: int) -> dict:
    """Blocks before instruction `step` runs: live ones, freed ones, and the freed ranges no
    live block covers again (holes)."""
    frag, reason = _tracking(session)
    if frag is None:
        return {"step": step, "available": False, "reason": reason, "blocks": [],
                "holes": []}
    blocks = frag.blocks
    made = blocks[blocks["alloc_step"] < step]
    freed_mask = made["free_step"].notna() & (made["free_step"].fillna(0) < step)
    live = made[~freed_mask]
    freed = made[freed_mask]
    live_ranges = [(int(p), int(p) + int(s)) for p, s in zip(live["ptr"], live["size"])]
    holes = []
    for p, s in zip(freed["ptr"], freed["size"]):
        lo, hi = int(p), int(p) + int(s)
        if not any(a < hi and lo < b for a, b in live_ranges):
            holes.append({"start": lo, "end": hi})
    return {
        "step": step, "available": True, "reason": None,
        "heap_start": frag.heap_start,
        "blocks": [_block(r, "live") for r in live.itertuples()]
        + [_block(r, "freed") for r in freed.itertuples()],
        "holes": holes,
    }


def _block(row, state: str) -> dict:
    return {"ptr": int(row.ptr), "size": int(row.size), "state": state,
            "alloc_step": int(row.alloc_step),
            "free_step": None if pd.isna(row.free_step) else int(row.free_step)}
