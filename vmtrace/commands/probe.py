"""Register values at allocator calls, which the trace does not record: the run is replayed
from the trace's own inputs (tracer.replay) with two code hooks, one at each function's
entry (rdi) and one at each return address (rax).

This is the only module of the read side that runs the emulator; it lives in the CLI
because `analysis` must not import unicorn."""

from __future__ import annotations

from unicorn import UC_HOOK_CODE
from unicorn.x86_const import UC_X86_REG_RAX, UC_X86_REG_RDI, UC_X86_REG_RSP

from analysis.allocator import CallValues
from analysis.errors import RegisterProbeError
from analysis.trace import Trace
from tracer.errors import TracerError
from tracer.replay.inputs import load_inputs
from tracer.replay.machine import ReplayMachine


class _CallWatcher:
    """Collects rdi at each watched function's entry and rax when that call returns."""

    def __init__(self, wanted: dict[int, list[int]]):
        self.values: dict[int, list[CallValues]] = {f: [] for f in wanted}
        self.pending: list[tuple[int, int, int]] = []

    def on_entry(self, uc, _addr, _size, func) -> None:
        self.values[func].append(CallValues(uc.reg_read(UC_X86_REG_RDI), None))
        # After the ret, RSP is 8 above where it is now (the return address is popped).
        self.pending.append((func, len(self.values[func]) - 1, uc.reg_read(UC_X86_REG_RSP) + 8))

    def on_return(self, uc, _addr, _size, _user) -> None:
        if self.pending and self.pending[-1][2] == uc.reg_read(UC_X86_REG_RSP):
            func, i, _ = self.pending.pop()
            self.values[func][i] = CallValues(self.values[func][i].rdi,
                                              uc.reg_read(UC_X86_REG_RAX))


def emulator_probe(trace: Trace):
    """A `RegisterProbe` that replays the trace's run (see the module docstring)."""

    def probe(wanted: dict[int, list[int]]) -> dict[int, list[CallValues]]:
        watcher = _CallWatcher(wanted)
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
