"""The fast recorder's native step counter (recorder.c `fr_*`): a block hook that numbers
steps as the full recorder does, with no code or memory hook on the run's hot path.

It stands where tracer.event_stream.EventStream stands in a full recording, with the same
names for what the recorder asks (`step`, `instructions`, `request_stop`, ...), and records
no access or RSP event."""

from __future__ import annotations

import ctypes
import threading
from enum import IntEnum

from unicorn import Uc
from unicorn.x86_const import UC_X86_REG_RIP

from tracer import native
from tracer.block_decode import block_decoder
from tracer.classify import InstructionClassifier
from tracer.ending import StopReason
from tracer.event_stream import NativeStop, NativeStopCode, StackGrowth, _fill_operand
from tracer.interrupts import NativeFault


class Pending(IntEnum):
    """Why the block hook stopped the emulation for the caller (recorder.c PENDING_*)."""

    NONE = 0
    EXACT = 1     # a block needs the exact path: `apply`, then resume
    KEYFRAME = 2  # a keyframe is due at this block boundary: take it, then resume


class FastSteps:
    """Owns the fast step counter of one run: its hooks on the engine and its decoder."""

    def __init__(self, uc: Uc, max_steps: int | None, stack: tuple[int, int]):
        """`stack`: (lowest address the stack may grow to, start of its VMA)."""
        self._lib = native.load()
        self._uc = uc
        classifier = InstructionClassifier()

        def classify(rip: int, code, length: int, operand) -> int:
            flags, aligned = classifier.classify(rip, ctypes.string_at(code, length))
            if aligned is not None:
                _fill_operand(operand.contents, aligned)
            return flags

        # Kept on self: the C side calls them for every new block / exact instruction.
        self._decode = block_decoder(classifier)
        self._classify = native.CLASSIFY_FN(classify)
        self._f = self._lib.fr_new(ctypes.c_void_p(uc._uch.value), max_steps or 0,
                                   self._decode, self._classify)
        status = self._lib.fr_install(self._f)
        if status != 0:
            raise RuntimeError(f"installing the fast step counter failed (unicorn error "
                               f"{status})")
        self.stack_floor, self.stack_start = stack
        self._growth: list[StackGrowth] = []
        self._stop_lock = threading.Lock()
        self._stop_cause: StopReason | None = None
        self.error: BaseException | None = None
        if max_steps == 0:
            self.request_stop(StopReason.MAX_STEPS)

    def _rip(self) -> int:
        return self._uc.reg_read(UC_X86_REG_RIP)

    # -- what the recorder asks (EventStream's names) -------------------------------------
    @property
    def step(self) -> int:
        """The step of the instruction executing now (at a syscall, interrupt or fault)."""
        return self._lib.fr_step_at(self._f, self._rip())

    @property
    def instructions(self) -> int:
        """Steps started so far (the run's instruction count once it stopped)."""
        return self._lib.fr_started(self._f, self._rip())

    @property
    def steps_counted(self) -> int:
        """Steps counted at a block boundary (where the hook stopped the emulation)."""
        return self._lib.fr_steps(self._f)

    @property
    def stopped_by_limit(self) -> StopReason | None:
        code = self._lib.fr_stop_reason(self._f)
        if code == NativeStopCode.MAX_STEPS:
            return StopReason.MAX_STEPS
        if code == NativeStopCode.REQUESTED and self._stop_cause != StopReason.ERROR:
            return self._stop_cause
        return None

    def request_stop(self, cause: StopReason) -> None:
        """Stops the run before its next block (or exact instruction); any thread."""
        with self._stop_lock:
            if self._stop_cause is None:
                self._stop_cause = cause
            self._lib.fr_request_stop(self._f)

    @property
    def native_stop(self) -> NativeStop | None:
        if self._lib.fr_stop_reason(self._f) != NativeStopCode.FAULT:
            return None
        fault = NativeFault(self._lib.fr_stop_fault(self._f))
        address = (self._lib.fr_stop_address(self._f) if fault == NativeFault.MISALIGNED
                   else None)
        return NativeStop(fault, self._lib.fr_stop_rip(self._f), address,
                          bool(self._lib.fr_stop_write(self._f)))

    # -- the stack ------------------------------------------------------------------------
    def grows_stack(self, addr: int) -> bool:
        """Whether an access at `addr` lies below the [stack] VMA, inside its limit."""
        return self.stack_floor <= addr < self.stack_start

    def note_growth(self, step: int, addr: int) -> int:
        """The stack VMA grows down to `addr`'s page at `step`; returns the old start."""
        old, self.stack_start = self.stack_start, addr & ~0xFFF
        self._growth.append(StackGrowth(step, self.stack_start))
        return old

    def take_growth(self) -> list[StackGrowth]:
        out, self._growth = self._growth, []
        return out

    def kernel_access(self, addr: int, data: bytes, is_write: bool) -> None:
        """Only a growth matters here: no access row is recorded."""

    def discard_current(self) -> None:
        pass

    def check_rsp(self, rsp: int) -> None:
        pass

    # -- the driver's side ----------------------------------------------------------------
    @property
    def pending(self) -> Pending:
        return Pending(self._lib.fr_pending(self._f))

    def apply(self) -> None:
        """Puts the pending block on the exact path (after emu_start returned)."""
        status = self._lib.fr_apply(self._f)
        if status != 0:
            raise RuntimeError(f"adding the exact step hook failed (unicorn error {status})")

    def rewind(self, rip: int) -> None:
        """The instruction at `rip` did not run and runs again on resume."""
        self._lib.fr_rewind(self._f, rip)

    def invalidate(self, start: int, end: int) -> None:
        """The code in [start, end) may have changed: decode it again when it runs."""
        self._lib.fr_invalidate(self._f, start, end)

    def next_keyframe(self, step: int) -> None:
        """Stops at the first block boundary at or after `step` (0: never)."""
        self._lib.fr_set_next_keyframe(self._f, step)

    @property
    def exact_pages(self) -> int:
        return self._lib.fr_exact_pages(self._f)

    def close(self) -> None:
        if self._f is not None:
            self._lib.fr_uninstall(self._f)
            self._lib.fr_free(self._f)
            self._f = None
