"""`trace record --fast`: the same tables as a full recording of the same run (row for row)
but accesses/rsp/exec_counts, the same `end`, keyframes that replay to each other, and
endings (faults, limits, max-steps inside a block or a rep, unsupported syscalls,
self-modifying code, a kill) identical to the full recorder's.

A representative subset of the programs bench/verify.py records runs here (one behaviour
each: the exact path, rep, stack growth, the map, faults, syscalls, a glibc program);
`python bench/fast_verify.py --keyframes` sweeps all of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PROGRAMS, ROOT, TRACE, trace_cli

sys.path.insert(0, str(ROOT / "bench"))

import fast_verify  # noqa: E402

from tracer.format import TraceFiles  # noqa: E402
from tracer.format.errors import TraceFormatError  # noqa: E402

SUBSET = [
    # the exact path: faults the CPU raises before the instruction, aligned SSE operands
    "align_movaps", "sse", "sse_unaligned_ok", "privileged", "int1", "ud2", "lock_mov",
    "vex_undefined", "cr_undefined",
    # self-modifying code and code in writable memory
    "smc", "exec_data",
    # rep string instructions (iterations are steps; a fault inside one)
    "string_rep", "replay_rep", "rep_fault",
    # the stack: growth by the program and by the kernel, and past its limit
    "stack_far", "stack_kernel_grows", "stack_overflow", "stack_ops", "rsp_zoo",
    # the map
    "brk_ops", "mmap_ops", "mprotect_write", "mremap", "prot_none",
    # faults and interrupts
    "bad_pointer", "div_zero", "int3", "hlt", "noncanonical_stack", "exec_data",
    # syscalls
    "unknown_syscall", "int80", "sysenter", "every_table", "file_ops",
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    fast_verify.fixed_copy()
    yield
    import shutil

    shutil.rmtree(fast_verify.FIXED, ignore_errors=True)


def _pair(name: str, out: Path, every: int = fast_verify.KEYFRAME_EVERY):
    matches = [p for p in fast_verify.programs() if p.stem == name]
    assert matches, name
    return fast_verify.record_pair(matches[0], out, every)


@pytest.mark.parametrize("name", sorted(set(SUBSET)))
def test_fast_trace_has_the_full_recordings_tables_and_end(name, sources, tmp_path):
    full, fast = _pair(name, tmp_path)
    assert fast_verify.compare(full, fast) == []


@pytest.mark.parametrize("name", ["rsp_zoo", "stack_kernel_grows", "mmap_ops", "smc", "string_rep"])
def test_each_keyframe_replays_to_the_next(name, sources, tmp_path):
    _full, fast = _pair(name, tmp_path, every=5)
    assert TraceFiles(fast).table("keyframes").num_rows >= 2
    assert fast_verify.check_keyframes(fast) == []


def test_a_glibc_program_takes_the_exact_path_for_its_sse_code(sources, tmp_path):
    full, fast = _pair("floats", tmp_path)
    assert fast_verify.compare(full, fast) == []


@pytest.mark.parametrize("max_steps", [1, 2, 5, 17, 40, 41, 42, 43, 200, 1000])
def test_max_steps_stops_where_the_full_recorder_does(max_steps, tmp_path):
    """Inside a block, at a block's end, inside a rep instruction's iterations."""
    from tracer.fast_record import record_fast
    from tracer.recorder import RecordOptions, record

    program = PROGRAMS / "string_rep.asm"
    full = record(RecordOptions(program=program, output=tmp_path / "full", max_steps=max_steps))
    fast = record_fast(RecordOptions(program=program, output=tmp_path / "fast",
                                     max_steps=max_steps,
                                     keyframe_every=3))
    assert fast.instructions == full.instructions
    assert fast_verify.compare(full.trace, fast.trace) == []
    assert fast_verify.check_keyframes(fast.trace) == []


def test_a_pending_trace_says_so_instead_of_reading_an_event_table(tmp_path):
    done = trace_cli("record", "--fast", "-q", str(PROGRAMS / "rsp_zoo.asm"), "-o",
                     str(tmp_path / "t"))
    assert b"Traceback" not in done.stderr
    files = TraceFiles(tmp_path / "t")
    assert files.pending and files.complete
    files.verify()
    assert not (tmp_path / "t" / "accesses.arrows").exists()
    with pytest.raises(TraceFormatError, match="--fast"):
        files.table("accesses")
    # A command that needs the events replays what it needs (tests/test_materialise.py).
    shown = trace_cli("stack", str(tmp_path / "t"), "5")
    assert b"Traceback" not in shown.stderr and b"red zone" in shown.stdout


def test_record_help_documents_fast():
    assert b"--fast" in trace_cli("record", "--help").stdout


def test_a_killed_fast_recording_is_readable_as_far_as_it_got(tmp_path):
    out = tmp_path / "t"
    proc = subprocess.Popen([*TRACE, "record", "--fast", "-q",
                             str(PROGRAMS / "limits" / "syscall_forever.asm"), "-o", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("t.recording-*"))
        if found and (found[0] / "syscalls.arrows").exists():
            checksums = found[0] / "checksums.txt"
            if checksums.exists() and checksums.read_text().count("syscalls.arrows") >= 3:
                partial = found[0]
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial is not None, proc.stderr.read().decode()
    files = TraceFiles(partial)
    assert not files.complete and files.pending
    assert files.table("syscalls").num_rows > 0
    frames = files.table("keyframes")
    assert frames.num_rows >= 1 and frames.column("step")[0].as_py() == 0
    assert files.table("pages").num_rows >= 1


def test_ctrl_c_stops_a_fast_recording_and_keeps_a_complete_trace(tmp_path):
    out = tmp_path / "t"
    proc = subprocess.Popen([*TRACE, "record", "--fast", "-q",
                             str(PROGRAMS / "limits" / "loop_forever.asm"), "-o", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.glob("t.recording-*/pages.arrows")):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130, proc.stderr.read().decode()
    files = TraceFiles(out)
    files.verify()
    end = files.meta.end
    assert end.stop_reason == "interrupted" and end.truncated
    steps = files.table("keyframes").column("step").to_pylist()
    assert steps[0] == 0 and steps == sorted(steps) and steps[-1] <= end.instructions
