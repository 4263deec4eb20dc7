"""What the replay commands share: opening a trace's time-travel session (with a note while its
index is built) and parsing numbers as the user writes them. The queries are timetravel's."""

from __future__ import annotations

from pathlib import Path

import typer

from vmtrace.terminal import make_console, safe

err = make_console(stderr=True)


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


def open_session(trace_path: Path):
    """The trace's time-travel session (its index built first, with a note on a terminal,
    if missing)."""
    from timetravel import open_session as open_

    with _BuildNote(trace_path) as note:
        return open_(trace_path, on_build=note.show)


def number(low: int = 0, high: int | None = None):
    """A typer parser of counts as the user writes them: decimal or 0x... hex, like
    addresses, within [low, high]."""

    def parse(text: str | int) -> int:
        try:
            value = text if isinstance(text, int) else int(text, 0)  # (a default is an int)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a number (decimal or 0x...)") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low:,}" + ("" if high is None else f" to {high:,}")
            raise typer.BadParameter(f"{text} is not in the range {bound}")
        return value

    return parse
