"""A Unicorn engine rebuilt from a trace: the initial map, memory and registers, then, at each
`syscall`, the recorded effects re-applied instead of running any handler."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from unicorn import (
    UC_ARCH_X86, UC_HOOK_INSN, UC_HOOK_INTR, UC_HOOK_MEM_INVALID, UC_MODE_64, Uc, UcError,
)
from unicorn import x86_const as x

from tracer.address_space import uc_prot
from tracer.cpu import start_like_linux
from tracer.interrupts import classify_interrupt, error_signal, memory_fault
from tracer.errors import TracerError
from tracer.ending import Fault, StopReason
from tracer.fetch_ahead import NO_END, crossing_instruction
from tracer.hook_errors import HookErrors
from tracer.replay.step_counter import StepCounter
from tracer.registers import GPR_NAMES
from tracer.format.regions import RegionEvent, RegionMap, mremap_move
from tracer.replay.inputs import RecordedInputs, RecordedSyscall
from tracer.syscalls.abi import I386, X86_64, SyscallAbi
from tracer.syscalls.numbers import ARCH_SET_FS, ARCH_SET_GS, EXIT_SYSCALLS

if TYPE_CHECKING:
    from tracer.event_stream import EventStream

_REG_IDS = {name: getattr(x, f"UC_X86_REG_{name.upper()}") for name in GPR_NAMES}


class ReplayError(TracerError):
    """The trace cannot be replayed as asked (a step out of range, an inconsistent trace)."""


def _inconsistent(what: str, exc: UcError) -> ReplayError:
    # The recorder applied these same inputs to the same state: in a trace it wrote they
    # always fit. One that does not was made or altered by someone else.
    return ReplayError(f"the trace cannot be replayed: {what} does not fit its memory map "
                       f"({exc}); it is not a run vmtrace recorded")


@dataclass(frozen=True)
class Ending:
    """How the replayed run stopped, in the terms of meta.json's `end`."""

    stop_reason: StopReason     # exit, fault, unsupported-syscall, stopped
    exit_code: int | None = None
    fault: Fault | None = None


class SyscallObserver(Protocol):
    """Watches each replayed syscall (trace replay --verify); False stops the replay."""

    def on_syscall(self, machine: ReplayMachine, recorded: RecordedSyscall | None, rip: int,
                   nr: int, args: tuple[int, ...], abi: str) -> bool:
        """Sees the syscall the replay makes; returns False to stop the replay."""

    def apply_kernel_effects(self, machine: ReplayMachine, recorded: RecordedSyscall) -> None:
        """Writes the syscall's recorded kernel bytes (and reports its kernel accesses)."""


# How far past the recorded end a replay that should have stopped there may run before its
# step limit stops it (and the divergence is reported). At least a translated block (QEMU
# puts up to 512 instructions in one): the block holding the recorded end then never crosses
# the limit, which would put it on the block-mode recorder's exact path, where Unicorn leaves
# other flags at a fault than the block the recording ran (docs/architecture.md).
PAST_THE_END = 1024


class ReplayMachine:
    """One engine replaying one trace. Owns its Unicorn instance; the caller owns the step.

    Syscalls are matched to the recorded ones in order: the engine starts at a known
    syscall cursor (0 at step 0, or the keyframe's) and takes the next recorded row at each
    `syscall` instruction.
    """

    # Set by the fetch-fault hook when Unicorn faulted on an instruction ahead of RIP
    # (tracer/fetch_ahead.py): `run` runs up to that instruction and resumes there.
    _run_until: int | None = None
    # Set by the caller whose hooks may stop the run to change them (a block-mode
    # EventStream's `resume_pending`): True when `run` should resume at RIP.
    resume_hook: Callable[[], bool] | None = None
    # Told each range whose mapping a region event changed (code there may differ now).
    on_region_change: Callable[[int, int], None] | None = None

    def __init__(self, inputs: RecordedInputs, observer: SyscallObserver | None = None,
                 step_of=None, on_data_fault=None):
        self.inputs = inputs
        self.observer = observer
        self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        start_like_linux(self.uc)  # as the recorder: x87/SSE control state, CPUID
        self.cursor = 0
        self.region_map = RegionMap()  # the map as the events so far leave it
        self.ending: Ending | None = None
        self.hook_errors = HookErrors()
        # Where a fault happened, in steps; the verifier passes the event stream's counter.
        self._step_of = step_of or (lambda fetch: None)
        # As the recorder: a faulting load or store leaves no access rows (the verifier
        # passes the event stream's discard).
        self._on_data_fault = on_data_fault or (lambda: None)
        self._hooked = False
        self._stepper = None  # the native step counter, made on the first counted run

    @property
    def heap_end(self) -> int:
        """The page end of the heap (the break's page), as the region events leave it."""
        brk_end = self.region_map.brk_end
        return self.inputs.initial_brk if brk_end is None else brk_end

    # -- building the state -------------------------------------------------------------
    def load_initial(self) -> None:
        """The state before step 0: the initial map, memory image and registers."""
        for ev in self.inputs.initial_regions:
            self.apply_region_event(ev)
        for start, data in self.inputs.image:
            try:
                self.uc.mem_write(start, data)
            except UcError as exc:
                raise _inconsistent(f"the memory image at {start:#x}", exc) from None
        self.write_registers(self.inputs.initial_registers)

    def map_regions(self, events: list[RegionEvent]) -> None:
        """Applies region events in order (fresh mappings are zero-filled)."""
        for ev in events:
            self.apply_region_event(ev)

    def apply_region_event(self, ev: RegionEvent) -> None:
        """Applies one map/unmap/protect/brk/grow event to Unicorn.

        Raises:
            ReplayError: the event does not fit the map (the trace is inconsistent).
        """
        try:
            self._apply_region_event(ev)
        except ValueError as exc:  # an action the map does not know
            raise ReplayError(str(exc)) from None
        except UcError as exc:
            raise _inconsistent(f"the {ev.action} of [{ev.start:#x}, {ev.end:#x}) at step "
                                f"{ev.step:,}", exc) from None

    def _apply_region_event(self, ev: RegionEvent) -> None:
        # The map decides what the event does (tracer.format.regions); Unicorn mirrors it.
        self.region_map = self.region_map.apply(ev)
        if ev.action == "grow":
            return  # inside the reservation mapped with the stack
        if self.on_region_change is not None:
            self.on_region_change(ev.start, ev.end)
        change = self.region_map.change
        for s in change.unmapped:
            self._unmap(s.start, s.end)
        if ev.action in ("unmap", "protect"):
            # The event's whole range in Unicorn: the stack's reservation below the [stack]
            # VMA is mapped there (and so in the recording) but is no segment of the map.
            for lo, hi in self._mapped_pieces(ev.start, ev.end):
                if ev.action == "unmap":
                    self.uc.mem_unmap(lo, hi - lo)
                else:
                    self.uc.mem_protect(lo, hi - lo, uc_prot(ev.perms))
        for s in change.mapped:
            start = s.start
            floor = self.inputs.stack_floor
            if s.kind == "stack" and floor is not None and floor < start:
                # As in the recording, Unicorn holds the stack's whole RLIMIT_STACK
                # reservation; the [stack] VMA of the map grows into it (`grow`).
                start = floor
            self._unmap(start, s.end)
            # (The [vvar]/[vdso] stand-ins too: zero-filled pages the program may read.)
            self.uc.mem_map(start, s.end - start, uc_prot(s.perms))

    def _mapped_pieces(self, start: int, end: int) -> list[tuple[int, int]]:
        out = []
        for begin, last, _perms in self.uc.mem_regions():
            lo, hi = max(begin, start), min(last + 1, end)
            if lo < hi:
                out.append((lo, hi))
        return out

    def _unmap(self, start: int, end: int) -> None:
        for lo, hi in self._mapped_pieces(start, end):
            self.uc.mem_unmap(lo, hi - lo)

    def mapped(self) -> list[tuple[int, int, int]]:
        """Unicorn's mappings as (start, end, prot)."""
        return [(b, e + 1, p) for b, e, p in self.uc.mem_regions()]

    def write_registers(self, regs: dict[str, int]) -> None:
        """Sets registers by name (names of tracer.registers.GPR_NAMES)."""
        for name, value in regs.items():
            if name in _REG_IDS:
                self.uc.reg_write(_REG_IDS[name], value)

    def registers(self) -> dict[str, int]:
        """GPRs, RIP, EFLAGS and the FS/GS bases by name."""
        return {name: self.uc.reg_read(reg) for name, reg in _REG_IDS.items()}

    # -- running ------------------------------------------------------------------------
    def install_hooks(self) -> None:
        """Adds the syscall and fault hooks (after any recording hooks, as the recorder)."""
        if self._hooked:
            return
        self.uc.hook_add(UC_HOOK_INSN, self._on_syscall, aux1=x.UC_X86_INS_SYSCALL)
        self.uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid_memory)
        self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        self._hooked = True

    def run(self, count: int | None = None) -> None:
        """Executes `count` more steps (None: until the run ends), numbered as the recorder
        numbers them (one per instruction the CPU single-steps).

        Raises:
            ReplayError: the replay did not follow the recording (only without an observer,
                which reports such divergences itself).
            BaseException: whatever a hook raised (tracer/hook_errors.py).
        """
        if count == 0 or self.ending is not None:
            return
        self.install_hooks()
        if count is not None:
            # Counted as the recorder counts steps (not Unicorn's `count`, which counts
            # QEMU's extra entry into a finished rep instruction).
            self._step_counter().reset(count)
        elif self._stepper is not None:
            self._stepper.reset(0)
        rip, until = self.uc.reg_read(x.UC_X86_REG_RIP), NO_END
        while True:
            try:
                self.uc.emu_start(rip, until)
            except UcError as exc:
                until, self._run_until = self._run_until, None
                if until is not None and self.hook_errors.first is None:
                    rip = self.uc.reg_read(x.UC_X86_REG_RIP)  # tracer/fetch_ahead.py
                    continue
                if self.ending is None and self.hook_errors.first is None:
                    self._fault_from_error(exc)
                break
            rip = self.uc.reg_read(x.UC_X86_REG_RIP)
            if self.ending is not None or self.hook_errors.first is not None:
                break
            if until != NO_END and rip == until:
                until = NO_END  # stopped where asked: resume from there
                continue
            until = NO_END
            if self.resume_hook is None or not self.resume_hook():
                break
        failed = self.hook_errors.first
        if failed is not None and isinstance(failed.exception, UcError):
            # From re-applying a syscall's recorded effects.
            raise _inconsistent("a syscall's recorded effect", failed.exception)
        if failed is not None:
            raise failed.exception

    def _step_counter(self) -> StepCounter:
        if self._stepper is None:
            self._stepper = StepCounter(self.uc)
        return self._stepper

    # -- hooks --------------------------------------------------------------------------
    def _on_syscall(self, uc: Uc, _user) -> None:
        self.hook_errors.run(uc, "replaying a syscall", lambda: self._syscall(uc))

    def _syscall(self, uc: Uc, abi: SyscallAbi = X86_64, rip: int | None = None) -> None:
        if rip is None:
            rip = uc.reg_read(x.UC_X86_REG_RIP)  # still the `syscall` instruction (Unicorn)
        nr, args = abi.read_call(uc)
        recorded = (self.inputs.syscalls[self.cursor]
                    if self.cursor < len(self.inputs.syscalls) else None)
        self.cursor += 1
        if self.observer is not None:
            if not self.observer.on_syscall(self, recorded, rip, nr, args, abi.name):
                self.ending = Ending(StopReason.STOPPED)
                uc.emu_stop()
                return
        elif recorded is None or recorded.nr != nr or recorded.abi != abi.name:
            raise ReplayError(f"the replay made syscall {nr} at RIP {rip:#x} where the trace "
                              f"has {'none' if recorded is None else recorded.name}; run "
                              "`trace replay --verify` to find where it diverged")
        if abi.name_of(nr) in EXIT_SYSCALLS:
            self.ending = Ending(StopReason.EXIT, exit_code=args[0] & 0xFF)
            uc.emu_stop()
            return
        if recorded.unsupported:
            self.ending = Ending(StopReason.UNSUPPORTED_SYSCALL)
            uc.emu_stop()
            return
        # mremap moved the mapping: the kernel copied its pages (not a recorded write).
        move = mremap_move(recorded.name, args, recorded.ret)
        moved = None if move is None else bytes(uc.mem_read(move.old, move.size))
        for ev in recorded.regions:
            self.apply_region_event(ev)
        if moved is not None:
            uc.mem_write(move.new, moved)
        if self.observer is not None:
            self.observer.apply_kernel_effects(self, recorded)
        else:
            for addr, data in recorded.kernel_writes:
                uc.mem_write(addr, data)
        if recorded.killed:  # the syscall delivered a fatal signal to the process
            self.ending = Ending(StopReason.FAULT,
                                 fault=Fault(None, None, recorded.step, rip, None, None))
            uc.emu_stop()
            return
        if recorded.name == "arch_prctl" and recorded.ret == 0 \
                and args[0] in (ARCH_SET_FS, ARCH_SET_GS):
            reg = x.UC_X86_REG_FS_BASE if args[0] == ARCH_SET_FS else x.UC_X86_REG_GS_BASE
            uc.reg_write(reg, args[1])
        abi.write_result(uc, recorded.ret if recorded.ret is not None else 0, rip)

    def _on_invalid_memory(self, uc: Uc, access: int, address: int, size: int, value: int,
                           _user) -> bool:
        fault = memory_fault(uc, access, address)  # as the recorder: all 64 address bits
        if fault.fetch:
            self._run_until = crossing_instruction(uc, fault.address)
            if self._run_until is not None:
                return False  # as the recorder: the instructions before it run first
        if not fault.fetch:
            self._on_data_fault()
        signal = fault.non_canonical.signal if fault.non_canonical else "SIGSEGV"
        self.ending = Ending(StopReason.FAULT, fault=Fault(
            signal, None, self._step_of(fault.fetch), fault.rip, fault.address, fault.access))
        return False

    def _on_interrupt(self, uc: Uc, intno: int, _user) -> None:
        self.hook_errors.run(uc, f"replaying interrupt {intno}",
                             lambda: self._interrupt(uc, intno))

    def _interrupt(self, uc: Uc, intno: int) -> None:
        what = classify_interrupt(uc, intno)  # as the recorder
        if what.i386_syscall:
            self._syscall(uc, I386, what.rip)
            return
        self.ending = Ending(StopReason.FAULT, fault=Fault(
            what.signal, what.cause, self._step_of(False), what.rip, None, None))
        uc.emu_stop()

    def _fault_from_error(self, exc: UcError) -> None:
        said = error_signal(str(exc))
        self.ending = Ending(StopReason.FAULT, fault=Fault(
            said.signal, said.cause, self._step_of(False), self.uc.reg_read(x.UC_X86_REG_RIP),
            None, None))



def record_replayed_events(machine: ReplayMachine, accesses, rsp, initial_rsp: int,
                           limit: int, stack: tuple[int, int] | None) -> EventStream:
    """The recorder's native hooks on a replaying machine, as the recorder has them: block
    mode (an emulator's blocks decide where some of Unicorn's lazily computed flags end up at
    a fault, docs/architecture.md), its stops resumed and its decoded code dropped where a
    region event changes the map. `accesses`/`rsp` are TableWriter-like sinks."""
    from tracer.event_stream import EventStream

    events = EventStream(machine.uc, accesses, rsp, initial_rsp, limit, None, stack=stack,
                         blocks=True)
    machine.resume_hook = events.resume_pending
    machine.on_region_change = events.invalidate
    return events


def remake_kernel_accesses(uc: Uc, recorded: RecordedSyscall,
                           accesses: Iterable[tuple[int, int, bool]],
                           report: Callable[[int, bytes, bool], None]) -> None:
    """Re-makes one syscall's kernel-side accesses in recorded order, as the recorder saw
    them: reads from the replay's memory, writes with the trace's bytes (`report` gets each
    access, e.g. an EventStream's `kernel_access`); then the recorded writes no access row
    names (a file mapping's contents)."""
    writes = list(recorded.kernel_writes)
    for addr, size, is_write in accesses:
        if is_write:
            i = next((k for k, (a, d) in enumerate(writes)
                      if a == addr and len(d) == size), None)
            data = writes.pop(i)[1] if i is not None else bytes(size)
            uc.mem_write(addr, data)
        else:
            data = bytes(uc.mem_read(addr, size))
        report(addr, data, is_write)
    for addr, data in writes:
        uc.mem_write(addr, data)
