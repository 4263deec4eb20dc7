"""Register values at allocator calls, which the trace does not record: the program is run
again in the emulator from the trace's own inputs (ELF, argv, env, stdin, seed) with two
code hooks, one at each function's entry (rdi) and one at each return address (rax).

This is the only module of the read side that runs the emulator; it lives in the CLI
because `analysis` must not import unicorn."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from unicorn import UC_HOOK_CODE
from unicorn.x86_const import UC_X86_REG_RAX, UC_X86_REG_RDI, UC_X86_REG_RSP

from analysis.allocator import CallValues
from analysis.errors import RegisterProbeError
from analysis.trace import Trace
from tracer.elf import read_elf
from tracer.errors import TracerError
from tracer.recorder import RecordOptions, _Recording


class _ProbeRun(_Recording):
    """A recording that also collects rdi at entries and rax at returns."""

    def __init__(self, *args, wanted: dict[int, list[int]], **kwargs):
        super().__init__(*args, **kwargs)
        self.wanted = wanted
        self.values: dict[int, list[CallValues]] = {f: [] for f in wanted}
        self.pending: list[tuple[int, int, int]] = []

    def _write_static_tables(self, rsp: int) -> None:
        super()._write_static_tables(rsp)
        for func, returns in self.wanted.items():
            self.uc.hook_add(UC_HOOK_CODE, self._on_entry, user_data=func, begin=func, end=func)
            for ret in sorted(set(returns)):
                self.uc.hook_add(UC_HOOK_CODE, self._on_return, begin=ret, end=ret)

    def _on_entry(self, uc, _addr, _size, func) -> None:
        self.values[func].append(CallValues(uc.reg_read(UC_X86_REG_RDI), None))
        # After the ret, RSP is 8 above where it is now (the return address is popped).
        self.pending.append((func, len(self.values[func]) - 1, uc.reg_read(UC_X86_REG_RSP) + 8))

    def _on_return(self, uc, _addr, _size, _user) -> None:
        if self.pending and self.pending[-1][2] == uc.reg_read(UC_X86_REG_RSP):
            func, i, _ = self.pending.pop()
            self.values[func][i] = CallValues(self.values[func][i].rdi,
                                              uc.reg_read(UC_X86_REG_RAX))


def emulator_probe(trace: Trace):
    """A `RegisterProbe` that re-runs the trace's program (see the module docstring)."""

    def probe(wanted: dict[int, list[int]]) -> dict[int, list[CallValues]]:
        meta = trace.meta
        stdin = b""
        inputs = trace.table("inputs").to_pylist()
        for row in inputs:
            if row["name"] == "stdin":
                stdin = row["data"]
        name = Path(meta.argv[0] if meta.argv else "program").name
        with tempfile.TemporaryDirectory(prefix="vmtrace-probe-") as tmp:
            exe = Path(tmp) / name
            shutil.copyfile(trace.elf_path, exe)
            out = Path(tmp) / "trace"
            out.mkdir()
            limits = meta.raw.get("limits") or {}
            options = RecordOptions(
                program=exe, output=out, args=tuple(meta.argv[1:]), env=tuple(meta.env),
                stdin=stdin, max_steps=limits.get("max_steps") or trace.instructions or None,
                seed=int(meta.raw.get("seed", 0)), echo=None)
            try:
                run = _ProbeRun(options, read_elf(exe), None, [], out, wanted=wanted)
                run.run()
            except TracerError as exc:
                raise RegisterProbeError(f"re-running the program to read the allocator's "
                                         f"registers failed: {exc}") from None
            return run.values

    return probe
