"""What the replay commands share: opening a trace with its index, parsing steps and
addresses, one-line errors through TracerError."""

from __future__ import annotations

from pathlib import Path


from tracer.errors import TracerError
from analysis.formatting import plural
from vmtrace.terminal import make_console, safe

err = make_console(stderr=True)


class UsageError(TracerError):
    """A step or address the user gave does not fit the trace."""


class _BuildNote:
    """"building the replay index..." on a terminal while it is built, gone when done: a
    refusal that follows stays the one line on stderr, and scripts get no note at all."""

    def __init__(self, trace_path: Path):
        self._text = (f"building the replay index of {safe(trace_path)} (once; kept beside "
                      "the trace)...")
        self._status = None

    def show(self) -> None:
        if err.is_terminal:
            self._status = err.status(self._text)
            self._status.start()

    def __enter__(self) -> _BuildNote:
        return self

    def __exit__(self, *_exc) -> None:
        if self._status is not None:
            self._status.stop()


def open_with_index(trace_path: Path):
    """The trace and its replay index (built first, with a note on a terminal, if missing)."""
    from analysis import open_trace
    from vmtrace.replay_index import open_index

    trace = open_trace(trace_path)
    with _BuildNote(trace_path) as note:
        index = open_index(trace, on_build=note.show)
    return trace, index


def address(trace, text: str, length: int = 1) -> int:
    """An address from the command line (0x..., decimal, symbol[+offset]) with `length`
    bytes from it in user memory.

    Raises:
        UsageError: neither a number nor a symbol, or the range leaves user memory.
    """
    from tracer.format.content import USER_TOP
    from vmtrace.replay_index import parse_address

    try:
        addr = parse_address(trace, text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not 0 <= addr <= USER_TOP - length:
        raise UsageError(f"{text} is {addr:#x}: {plural(length, 'byte')} from there are not "
                         "all in user memory (below 0x800000000000), where nothing can be "
                         "mapped")
    return addr


def last_step(trace) -> int:
    """The number of steps the trace covers (the state at that step is the final one)."""
    from tracer.replay.inputs import recorded_steps

    return recorded_steps(trace.files)


def check_step(trace, step: int) -> int:
    """Returns `step` when the trace has it.

    Raises:
        UsageError: the step is outside the run.
    """
    last = last_step(trace)
    if not 0 <= step <= last:
        raise UsageError(f"step {step:,} is outside the run (steps 0 to {last:,}; the state "
                         "at step N is the state before instruction N executes)")
    return step
