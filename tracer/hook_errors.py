"""An exception raised inside a Unicorn hook, kept until `emu_start` returns.

Unicorn calls hooks from C, so an exception cannot unwind through the emulator to the run's
owner. The hook stops the engine and keeps the exception as it is; the owner raises it at one
place after `emu_start` returns: the recorder once the trace is closed (its ending says
`error`), the replay in `ReplayMachine.run`. Shared by both, so both handle it alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class HookError:
    """The first exception a hook raised, and what the hook was doing."""

    exception: BaseException
    during: str   # e.g. "emulating a syscall", "handling interrupt 6"

    def sentence(self) -> str:
        """What meta.json's `end.error` says of it."""
        return f"internal error while {self.during}: {self.exception!r}"


class HookErrors:
    """Runs hook bodies for one engine and keeps the first exception any of them raised."""

    def __init__(self) -> None:
        self.first: HookError | None = None

    def run(self, uc, during: str, body: Callable[[], None]) -> None:
        """Runs `body()`; if it raises, keeps the exception and stops `uc` (a Unicorn
        engine) before its next instruction."""
        try:
            body()
        except BaseException as exc:  # raised again by the run's owner, never lost
            if self.first is None:
                self.first = HookError(exc, during)
            uc.emu_stop()
