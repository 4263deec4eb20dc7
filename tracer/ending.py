"""How a run ends, in the terms of meta.json's `end` (docs/trace-format.md): why it stopped
and the fault that killed it. One vocabulary for the recorder, the replay and the readers.

Stdlib only: the CLI imports it at start-up, before it needs pyarrow or Unicorn."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StopReason(StrEnum):
    """`end.stop_reason`: why the recorded run ended. The values are the strings the trace
    holds (a StrEnum member compares equal to its string and is written as it)."""

    EXIT = "exit"                                # exit or exit_group
    FAULT = "fault"                              # a signal killed the program (`end.fault`)
    MAX_STEPS = "max-steps"                      # --max-steps
    MAX_TRACE_SIZE = "max-trace-size"            # --max-trace-mb
    MIN_FREE_DISK = "min-free-disk"              # --min-free-mb
    INTERRUPTED = "interrupted"                  # the user stopped it (Ctrl-C, SIGTERM)
    UNSUPPORTED_SYSCALL = "unsupported-syscall"  # a syscall vmtrace does not emulate
    ERROR = "error"                              # an internal error (`end.error`)
    STOPPED = "stopped"                          # nothing was left to run


@dataclass(frozen=True)
class Fault:
    """`end.fault`: the guest fault that ended the run, and the signal Linux delivers for it.

    The recorder fills every field. The replay (tracer/replay/machine.py) leaves `cause`
    None where wording it needs more than the engine holds (a memory fault's cause names the
    region's kind), and `signal` where it did not classify the fault itself;
    `trace replay --verify` compares step, RIP, address and access.
    """

    signal: str | None
    cause: str | None
    step: int
    rip: int
    address: int | None
    access: str | None          # read, write, execute


# The stops that cut the run short: the trace holds a prefix of it (`end.truncated`).
TRUNCATING_STOPS = (StopReason.MAX_STEPS, StopReason.MAX_TRACE_SIZE, StopReason.MIN_FREE_DISK,
                    StopReason.INTERRUPTED)
