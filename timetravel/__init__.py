"""Headless time travel over a recorded trace: the replay index and the queries of (trace,
step) that every client (the `trace` CLI, bench, the web viewer) calls. May import tracer and
analysis; never the CLI (typer, rich, vmtrace)."""

from timetravel.index import ReplayIndex, build_index, open_index
from timetravel.query import (
    REGISTER_ORDER, Accesses, QueryError, Session, State, WhoWrote, accesses, check_step,
    last_step, memory_at, next_write, open_session, parse_address, previous_write,
    resolve_address, stack_at, state_at, symbolizer, who_wrote,
)

__all__ = ["REGISTER_ORDER", "Accesses", "QueryError", "ReplayIndex", "Session", "State",
           "WhoWrote", "accesses", "build_index", "check_step", "last_step", "memory_at",
           "next_write", "open_index", "open_session", "parse_address", "previous_write",
           "resolve_address", "stack_at", "state_at", "symbolizer", "who_wrote"]
