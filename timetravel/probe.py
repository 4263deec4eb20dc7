"""Register values at allocator calls, which the trace does not record: the run is replayed
from the trace's own inputs (tracer.replay) with two code hooks, one at each function's
entry (rdi) and one at each return address (rax).

It runs the emulator with hooks of its own, so it lives in timetravel (which may import the
replay engine), not in `analysis` (which must not import unicorn) nor in the CLI."""

from __future__ import annotations

from unicorn import UC_HOOK_CODE, UcError
from unicorn.x86_const import (
    UC_X86_REG_RAX, UC_X86_REG_RDI, UC_X86_REG_RDX, UC_X86_REG_RSI, UC_X86_REG_RSP,
)

from analysis.allocator import CallValues
from analysis.errors import RegisterProbeError
from analysis.trace import Trace
from tracer.errors import TracerError
from tracer.replay.inputs import load_inputs
from tracer.replay.machine import ReplayMachine


_ENTRY_REGS = [UC_X86_REG_RSP, UC_X86_REG_RDI, UC_X86_REG_RSI, UC_X86_REG_RDX]


class _CallWatcher:
    """Collects rdi (rsi, rdx) at each watched function's entry and rax when that call
    returns, with the memory `CallValues` describes for the C library's functions. Runs
    twice per call (a million-call program spends most of its probe time here): plain
    lists while running, `CallValues` at the end."""

    def __init__(self, wanted: dict[int, list[int]], at_rdi: frozenset[int]):
        self.raw: dict[int, list[list]] = {f: [] for f in wanted}
        self.pending: list[tuple[list, int, int]] = []
        self.at_rdi = at_rdi

    def on_entry(self, uc, _addr, _size, func) -> None:
        rsp, rdi, rsi, rdx = uc.reg_read_batch(_ENTRY_REGS)
        row = [rdi, None, rsi, rdx, _read_u64(uc, rsp), None, None]
        self.raw[func].append(row)
        # After the ret, RSP is 8 above where it is now (the return address is popped).
        self.pending.append((row, func, rsp + 8))

    def on_return(self, uc, _addr, _size, _user) -> None:
        # Every pending call at or below this RSP is over: the one that returns here, one
        # that left by a jump (a tail call) through the same ret, and any that returned
        # where no hook watched (their rax stays unknown).
        rsp = uc.reg_read(UC_X86_REG_RSP)
        while self.pending and self.pending[-1][2] <= rsp:
            row, func, after = self.pending.pop()
            if after != rsp:
                continue
            rax = row[1] = uc.reg_read(UC_X86_REG_RAX)
            row[5] = _read_u64(uc, rax - 8) if rax else None
            if func in self.at_rdi:
                row[6] = _read_u64(uc, row[0])

    @property
    def values(self) -> dict[int, list[CallValues]]:
        return {f: [CallValues(*row) for row in rows] for f, rows in self.raw.items()}


def _read_u64(uc, addr: int) -> int | None:
    try:
        return int.from_bytes(uc.mem_read(addr & 0xFFFF_FFFF_FFFF_FFFF, 8), "little")
    except UcError:  # unmapped: nothing there to read
        return None


def emulator_probe(trace: Trace, at_rdi: frozenset[int] = frozenset()):
    """A `RegisterProbe` that replays the trace's run (see the module docstring).

    Args:
        trace: an open trace.
        at_rdi: functions after whose return the 8 bytes at their rdi are wanted
            (posix_memalign's result).
    """

    def probe(wanted: dict[int, list[int]]) -> dict[int, list[CallValues]]:
        watcher = _CallWatcher(wanted, at_rdi)
        try:
            machine = ReplayMachine(load_inputs(trace.files))
            machine.load_initial()
            for func, returns in wanted.items():
                machine.uc.hook_add(UC_HOOK_CODE, watcher.on_entry, user_data=func,
                                    begin=func, end=func)
                for ret in sorted(set(returns)):
                    machine.uc.hook_add(UC_HOOK_CODE, watcher.on_return, begin=ret, end=ret)
            # Bounded by the recorded length: a run cut by --max-steps must stop there too.
            machine.run(count=trace.instructions or None)
        except TracerError as exc:
            raise RegisterProbeError(f"replaying the run to read the allocator's registers "
                                     f"failed: {exc}") from None
        return watcher.values

    return probe
