"""`trace record --fast`: records only what a replay needs (the initial image, syscalls,
kernel writes, region events, output) plus keyframes, with no code or memory hook on the
run's hot path. The accesses, rsp and exec_counts tables are left to be materialised from
the keyframes (meta.json `"events": "pending"`, docs/trace-format.md).

Every step number written is the one a full recording of the same run writes: the native
block hook (tracer/fast_steps.py) counts steps by the full recorder's rule."""

from __future__ import annotations

import gc
import time
from contextlib import nullcontext
from dataclasses import asdict

from unicorn import UC_HOOK_INSN, UC_HOOK_INTR, UC_HOOK_MEM_INVALID, UC_PROT_NONE, Uc, UcError
from unicorn.x86_const import UC_X86_INS_SYSCALL, UC_X86_REG_RIP

from tracer.build_job import BuildJob
from tracer.address_space import uc_prot
from tracer.ending import TRUNCATING_STOPS, StopReason
from tracer.fast_steps import FastSteps, Pending
from tracer.fetch_ahead import NO_END
from tracer.format.build import record_batch
from tracer.format.regions import PAGE
from tracer.format.schema import EVENTS_PENDING, KEYFRAMES, PAGES
from tracer.format.writer import RowBuffer, file_checksums, write_meta
from tracer.interrupts import memory_fault
from tracer.native import nonzero_pages
from tracer.recorder import RecordOptions, RecordResult, _Recording, record
from tracer.registers import read_registers
from tracer.syscalls.context import ProcessState, StdinFile
from tracer.syscalls.fileinfo import guest_exe_path

# A keyframe cheaper than this never stretches the interval (see `_next_every`).
KEYFRAME_CHEAP_S = 0.02


def record_fast(options: RecordOptions, build: BuildJob | None = None) -> RecordResult:
    """`trace record --fast`: tracer.recorder.record with a FastRecording (same errors)."""
    return record(options, build, FastRecording)


class FastRecording(_Recording):
    """One `--fast` run: the full recorder's set-up, syscall layer and endings, with the
    native step counter in place of the event hooks."""

    def _meta(self, end: dict | None) -> dict:
        meta = super()._meta(end)
        meta["events"] = EVENTS_PENDING
        return meta

    def run(self) -> RecordResult:
        o = self.options
        brk, loaded, at_start = self._start_process(
            ("keyframes", "pages", "kernel_accesses"))
        uc, space = self.uc, self.space
        self._pending_data = 0
        self._io_cut = False
        self._heap_end = brk  # the replay's heap_end before any brk event
        self._cursor = 0      # syscall rows so far: a keyframe's syscall cursor
        self.events = None
        self.regions = RowBuffer(self._table_writers["regions"])
        self._flush_region_events(0)
        self.regions.flush()
        self.syscalls = RowBuffer(self._table_writers["syscalls"], every=64)
        self.kernel_writes = RowBuffer(self._table_writers["kernel_writes"], every=64)
        self.output = RowBuffer(self._table_writers["output"], every=16)
        # Where the kernel read or wrote for each syscall (its reads leave no other trace):
        # the materialiser turns them into the accesses table's `source = kernel` rows.
        self.kernel_accesses = RowBuffer(self._table_writers["kernel_accesses"], every=256)
        self.process = ProcessState(stdin=StdinFile(o.stdin), allow_read=tuple(
            p.resolve() for p in o.allow_read))
        self.process.files.update({0: self.process.stdin, 1: "stdout", 2: "stderr"})
        self.process.exe_path = guest_exe_path(self.program.path.name)

        self.events = FastSteps(uc, o.max_steps, (space.stack_floor, space.stack_start))
        # Unicorn maps the stack's whole reservation; its part below the [stack] VMA is made
        # inaccessible, so that the first touch there faults and reports the growth.
        self._open_from = space.stack_start
        if space.stack_floor < space.stack_start:
            uc.mem_protect(space.stack_floor, space.stack_start - space.stack_floor,
                           UC_PROT_NONE)
        self._regrow = False
        self._page_ids: dict[bytes, int] = {}
        self._pages_written = 0
        self._every = max(1, o.keyframe_every)
        if at_start is not None:
            self.events.request_stop(at_start)
        uc.hook_add(UC_HOOK_INSN, self._on_syscall, aux1=UC_X86_INS_SYSCALL)
        uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid_memory)
        uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        listening = (o.stop.subscribed(lambda: self.events.request_stop(StopReason.INTERRUPTED))
                     if o.stop is not None else nullcontext())
        self._keyframe()
        self._cpu_mark, self._step_mark = time.thread_time(), 0
        self.events.next_keyframe(self._every)
        gc.freeze()
        with listening:
            try:
                self._emulate(loaded.entry)
            finally:
                gc.unfreeze()
                self._flush_stack_growth()
        failed = self.hook_errors.first
        if failed is not None:
            self.stop_reason = StopReason.ERROR
            self.error = failed.sentence()
        limit = self.events.stopped_by_limit
        if self.stop_reason is None and limit is not None:
            self.stop_reason = limit
        native = self.events.native_stop
        if self.stop_reason is None and native is not None:
            self._native_fault(native)
        if self.stop_reason is None:
            self.stop_reason = StopReason.STOPPED
        return self._close_fast()

    def _emulate(self, entry: int) -> None:
        """Runs to the end, resuming where the block hook or a stack growth stopped."""
        uc, rip, until = self.uc, entry, NO_END
        while True:
            try:
                uc.emu_start(rip, until)
            except UcError as exc:
                until = self._take_run_until()
                if until is not None:  # a fetch fault ahead of RIP (tracer/fetch_ahead.py)
                    rip = uc.reg_read(UC_X86_REG_RIP)
                    continue
                until = NO_END
                if self._regrow and self.hook_errors.first is None:
                    # The access below the stack VMA did not happen: open the pages and run
                    # the instruction again (it is counted when it does run).
                    self._regrow = False
                    self._open_stack()
                    rip = uc.reg_read(UC_X86_REG_RIP)
                    self.events.rewind(rip)
                    continue
                if (self.fault is None and self.stop_reason is None
                        and self.hook_errors.first is None):
                    self._fault_from_error(exc)
                return
            rip = uc.reg_read(UC_X86_REG_RIP)
            if (until != NO_END and rip == until and self.stop_reason is None
                    and self.hook_errors.first is None):
                until = NO_END  # stopped where asked: resume from there
                continue
            until = NO_END
            pending = self.events.pending
            if (pending == Pending.NONE or self.stop_reason is not None
                    or self.hook_errors.first is not None):
                return
            if pending == Pending.KEYFRAME:
                self._keyframe()
                self.events.next_keyframe(self.events.steps_counted + self._next_every())
            self.events.apply()
            rip = uc.reg_read(UC_X86_REG_RIP)

    # -- the stack ----------------------------------------------------------------------
    def _open_stack(self) -> None:
        """Makes the pages the stack grew into accessible, as the rest of the stack."""
        start = self.events.stack_start
        if start < self._open_from:
            region = self.space.region_at(self._open_from)
            perms = region.perms if region is not None else "rw-"
            self.uc.mem_protect(start, self._open_from - start, uc_prot(perms))
            self._open_from = start

    def _on_invalid_memory(self, uc: Uc, access: int, address: int, size: int, value: int,
                           user) -> bool:
        fault = memory_fault(uc, access, address)
        if (not fault.fetch and fault.non_canonical is None
                and self.events.grows_stack(fault.address)):
            self.events.note_growth(self.events.step, fault.address)
            self._regrow = True
            return False
        return super()._on_invalid_memory(uc, access, address, size, value, user)

    def _on_kernel_access(self, addr: int, data: bytes, is_write: bool) -> None:
        # (The kernel's copy reaches the inaccessible pages: Unicorn's mem_write and
        # mem_read ignore protections.)
        if self.events.grows_stack(addr):
            self.events.note_growth(self.events.step, addr)
            self._open_stack()
        self.kernel_accesses.add(step=self.events.step, addr=addr, size=len(data),
                                 is_write=is_write)
        super()._on_kernel_access(addr, data, is_write)

    kernel_access = _on_kernel_access

    # -- syscalls and the map -----------------------------------------------------------
    def _run_syscall(self, uc: Uc, abi: str, nr: int, args: tuple[int, ...],
                     rip: int) -> int | None:
        self._cursor += 1
        return super()._run_syscall(uc, abi, nr, args, rip)

    def _flush_region_events(self, step: int) -> None:
        floor, touched = self.space.stack_floor, False
        for ev in self.space.events:
            if ev.action == "brk":
                self._heap_end = ev.end
            if self.events is not None:
                touched |= ev.start < self._open_from and ev.end > floor
        super()._flush_region_events(step)
        if touched:
            # An mprotect over the stack set the reservation's protection too: take it away
            # again, so that a growth still faults (what is unmapped there stays so).
            for begin, last, _perms in self.uc.mem_regions():
                lo, hi = max(begin, floor), min(last + 1, self._open_from)
                if lo < hi:
                    self.uc.mem_protect(lo, hi - lo, UC_PROT_NONE)

    # -- keyframes ----------------------------------------------------------------------
    def _keyframe(self) -> None:
        """Writes a keyframe of the state before the next step, as build_keyframes does."""
        started = time.thread_time()
        uc = self.uc
        addrs, ids = self._snapshot_pages()
        if len(self._page_ids) > self._pages_written:
            new = list(self._page_ids)[self._pages_written:]
            self._table_writers["pages"].write(record_batch({"data": new}, PAGES))
            self._pages_written = len(self._page_ids)
        self._table_writers["keyframes"].write(record_batch({
            "step": [self.events.steps_counted], "context": [bytes(uc.context_save())],
            "cursor": [self._cursor], "heap_end": [self._heap_end], "page_addr": [addrs],
            "page_id": [ids]}, KEYFRAMES))
        self._check_budget()
        self._last_keyframe_cpu = time.thread_time() - started

    def _next_every(self) -> int:
        """Steps to the next keyframe: `keyframe_every`, or more when keyframes cost more
        than a tenth of the emulation (a program with much memory mapped: each keyframe
        reads all of it)."""
        now = time.thread_time()
        spent, self._cpu_mark = now - self._cpu_mark, now
        cost, steps = self._last_keyframe_cpu, self.events.steps_counted - self._step_mark
        self._step_mark = self.events.steps_counted
        if cost < KEYFRAME_CHEAP_S or spent <= cost or steps <= 0:
            return self._every
        rate = steps / (spent - cost)  # steps per CPU second of emulation
        return max(self._every, int(rate * cost * 10))

    def _snapshot_pages(self) -> tuple[list[int], list[int]]:
        """Every mapped page that is not all zero, and its id in `pages` (new contents get
        the next id), as tracer/replay/keyframes.py stores them."""
        addrs: list[int] = []
        ids: list[int] = []
        page_ids = self._page_ids
        for begin, last, _perms in self.uc.mem_regions():
            end = last + 1
            if self.space.stack_floor <= begin and end <= self._open_from:
                continue  # the stack's unopened reservation: never written, all zero
            raw = self.uc.mem_read(begin, end - begin)  # (a bytearray: no second copy)
            for k in nonzero_pages(raw, PAGE):
                pid = page_ids.setdefault(bytes(raw[k * PAGE:(k + 1) * PAGE]), len(page_ids))
                addrs.append(begin + k * PAGE)
                ids.append(pid)
        return addrs, ids

    # -- closing ------------------------------------------------------------------------
    def _close_fast(self) -> RecordResult:
        instructions = self.events.instructions
        self.events.close()
        for buffer in (self.regions, self.syscalls, self.kernel_writes, self.output,
                       self.kernel_accesses):
            buffer.close()
        for name in ("keyframes", "pages"):
            self._table_writers[name].close()
        truncated = self.stop_reason in TRUNCATING_STOPS
        signal = self.fault.signal if self.fault else None
        end = {
            "stop_reason": self.stop_reason,
            "exit_code": self.exit_code,
            "signal": signal,
            "fault": asdict(self.fault) if self.fault else None,
            "instructions": instructions,
            # Known once the event tables are materialised (docs/trace-format.md).
            "accesses": 0,
            "rsp_changes": 0,
            "truncated": truncated,
            "error": self.error,
            "brk": {"start": self.space.brk_start, "end": self.space.brk},
            "registers": read_registers(self.uc),
        }
        meta = self._meta(end)
        meta["files"] = file_checksums(self.out)
        write_meta(self.out, meta)
        stop = self.options.stop
        return RecordResult(trace=self.out, stop_reason=self.stop_reason,
                            exit_code=self.exit_code, signal=signal, fault=self.fault,
                            instructions=instructions, accesses=0,
                            truncated=truncated, error=self.error, warnings=self.warnings,
                            rip=end["registers"].get("rip"),
                            interrupted_by=(stop.reason if stop is not None and
                                            self.stop_reason == StopReason.INTERRUPTED
                                            else None),
                            memory_refusals=self.space.memory_refusals)
