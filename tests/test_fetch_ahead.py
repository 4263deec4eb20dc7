"""Code that runs off the end of its mapping: every instruction before the one that crosses
into the unmapped page runs, and the fault is that instruction's, as on Linux, whichever
recorder mode or replay runs it (tracer/fetch_ahead.py). Unicorn alone faults when it
translates the block, before any instruction of it ran, and where blocks end depends on the
hooks installed, so the recorder's modes and the replay disagreed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from raw_elf import elf, point_registers_at_data

from tracer.fast_record import record_fast
from tracer.format import TraceFiles
from tracer.recorder import RecordOptions, record
from tracer.replay.materialise import materialise
from tracer.replay.verify import verify

PAGE_END = 0x401000
PROLOGUE_STEPS = 15  # point_registers_at_data: 15 movabs
FIRST_ZERO = 0x4000B0 + 15 * 10


def _program(tmp: Path, pad: bytes) -> Path:
    """The prologue, `pad`, then zero bytes to the page end: `add [rax], al` each (RAX
    points at writable data), the last one crossing into the unmapped page when the zeros
    start at an odd address."""
    exe = tmp / f"runs_off_{len(pad)}"
    exe.write_bytes(elf(point_registers_at_data() + pad))
    exe.chmod(0o755)
    return exe


def _native_pc(exe: Path) -> int | None:
    """Where the program faults natively (gdb's $pc at the SIGSEGV)."""
    if shutil.which("gdb") is None:
        return None
    done = subprocess.run(["gdb", "-q", "-batch", "-ex", "run", "-ex", "p/x $pc", str(exe)],
                          capture_output=True, text=True, timeout=60)
    line = [x for x in done.stdout.splitlines() if x.startswith("$1 = ")]
    return int(line[0].split("=")[1], 16) if line else None


@pytest.mark.parametrize("pad, rip", [(b"", PAGE_END), (b"\x90", PAGE_END - 1)],
                         ids=["ends-at-the-page-end", "crosses-the-page-end"])
def test_code_running_off_its_page_faults_where_linux_faults(tmp_path, pad, rip):
    exe = _program(tmp_path, pad)
    zeros_from = FIRST_ZERO + len(pad)
    # Every whole `00 00` before the page end runs; the next instruction faults.
    expected_step = PROLOGUE_STEPS + len(pad) + (PAGE_END - zeros_from) // 2
    native = _native_pc(exe)
    if native is not None:
        assert native == rip
    full = record(RecordOptions(program=exe, output=tmp_path / "full"))
    assert (full.signal, full.fault.step, full.fault.rip, full.fault.address) == (
        "SIGSEGV", expected_step, rip, PAGE_END)
    assert full.instructions == expected_step  # the faulting fetch is no step
    assert verify(str(tmp_path / "full")).divergence is None

    fast = record_fast(RecordOptions(program=exe, output=tmp_path / "fast"))
    assert (fast.fault.step, fast.fault.rip, fast.instructions) == (
        expected_step, rip, expected_step)
    materialise(tmp_path / "fast", jobs=1)
    for table in ("accesses", "rsp", "exec_counts"):
        assert TraceFiles(tmp_path / "full").table(table).equals(
            TraceFiles(tmp_path / "fast").table(table)), table
    full_end = json.loads((tmp_path / "full" / "meta.json").read_text())["end"]
    fast_end = json.loads((tmp_path / "fast" / "meta.json").read_text())["end"]
    assert full_end["fault"] == fast_end["fault"]
    assert full_end["accesses"] == fast_end["accesses"] == 2 * (expected_step - PROLOGUE_STEPS
                                                                 - len(pad))
