"""Counts steps while a replay engine runs without the recorder's hooks, by the recorder's
rule (recorder.c `hook_step`): one step per instruction the CPU single-steps, a rep
iteration included, QEMU's extra entry into a finished rep instruction not."""

from __future__ import annotations

import ctypes

from unicorn import Uc

from tracer import native


class StepCounter:
    """A native code hook on one engine that stops emulation before a given step."""

    def __init__(self, uc: Uc):
        self._lib = native.load()
        # The hook's state lives here, beside the engine that calls it (the machine owns
        # both), so it is freed with them.
        self._state = ctypes.create_string_buffer(self._lib.vm_stepper_size())
        self._s = ctypes.cast(self._state, ctypes.c_void_p)
        status = self._lib.vm_stepper_init(self._s, ctypes.c_void_p(uc._uch.value))
        if status != 0:
            raise RuntimeError(f"installing the step counter failed (unicorn error {status})")

    def reset(self, limit: int) -> None:
        """The next `emu_start` stops before its `limit`-th step (0: it never stops)."""
        self._lib.vm_stepper_reset(self._s, limit)

    @property
    def steps(self) -> int:
        """Steps counted since the last reset."""
        return self._lib.vm_stepper_steps(self._s)
