"""Recorder optimisations lose nothing: the tables of test programs equal, row for row, those
the recorder wrote before them (bench/verify-reference.json; the full check over every
example and test program is `python bench/verify.py`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from tracer.classify import RSP_DELTA, InstructionClassifier
from tracer.format import TraceFiles
from tracer.recorder import RecordOptions, record

# Stack-heavy programs: every RSP cause, rep strings, SSE joins, self-modifying code.
PROGRAMS = "rsp_zoo,stack_ops,string_rep,replay_frames,sse,smc,stack_kernel_grows,recursion"


def test_tables_equal_the_reference_recorders():
    done = subprocess.run([sys.executable, "bench/verify.py", "--only", PROGRAMS], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    # recursion is both examples/recursion.asm and tests/programs/c/recursion.c
    assert "9 of 9 programs identical" in done.stdout, done.stdout


def _delta(code: bytes) -> int | None:
    flags = InstructionClassifier().flags(0x401000, code)
    if not flags & RSP_DELTA:
        return None
    byte = flags >> 16 & 0xFF
    return byte - 256 if byte >= 128 else byte


def test_rsp_change_known_from_the_instruction_only_where_it_is_fixed():
    assert _delta(bytes.fromhex("50")) == -8            # push rax
    assert _delta(bytes.fromhex("58")) == 8             # pop rax
    assert _delta(bytes.fromhex("6a01")) == -8          # push 1
    assert _delta(bytes.fromhex("ff742408")) == -8      # push qword [rsp+8]
    assert _delta(bytes.fromhex("e800000000")) == -8    # call
    assert _delta(bytes.fromhex("c3")) == 8             # ret
    assert _delta(bytes.fromhex("c21000")) == 24        # ret 16
    assert _delta(bytes.fromhex("5c")) is None          # pop rsp: loaded from memory
    assert _delta(bytes.fromhex("54")) is None          # push rsp: kept simple, read
    assert _delta(bytes.fromhex("0fa0")) is None        # push fs
    assert _delta(bytes.fromhex("6650")) is None        # push ax (operand-size prefix)
    assert _delta(bytes.fromhex("c9")) is None          # leave: RSP comes from RBP
    assert _delta(bytes.fromhex("4883ec10")) == -16     # sub rsp, 16
    assert _delta(bytes.fromhex("4883c418")) == 24      # add rsp, 24
    assert _delta(bytes.fromhex("4883c4f8")) == -8      # add rsp, -8
    assert _delta(bytes.fromhex("4881ec00100000")) is None  # sub rsp, 4096: past a byte
    assert _delta(bytes.fromhex("83ec10")) is None      # sub esp, 16: clears the top half
    assert _delta(bytes.fromhex("4883e4f0")) is None    # and rsp, -16: depends on RSP
    assert _delta(bytes.fromhex("4829c4")) is None      # sub rsp, rax


# Block mode against the per-instruction code hook, live: every RSP cause, rep strings and
# a rep that faults, SSE joins and alignment faults, self-modifying code, i386 syscalls,
# stack growth by the kernel, remapped code, a glibc program, data and fetch faults.
BOTH_MODES = [
    "tests/programs/rsp_zoo.asm", "tests/programs/stack_ops.asm",
    "tests/programs/string_rep.asm", "tests/programs/rep_fault.asm",
    "tests/programs/sse.asm", "tests/programs/align_movaps.asm", "tests/programs/smc.asm",
    "tests/programs/int80.asm", "tests/programs/stack_kernel_grows.asm",
    "tests/programs/mremap.asm", "tests/programs/unmapped_read.asm",
    "tests/programs/exec_data.asm", "tests/programs/stack_overflow.asm",
    "examples/recursion.asm", "tests/programs/c/floats.c",
]


@pytest.mark.parametrize("program", BOTH_MODES, ids=lambda p: Path(p).stem)
def test_block_mode_writes_what_the_per_instruction_hook_writes(program, tmp_path):
    traces = []
    for per_instruction in (False, True):
        out = tmp_path / ("code-hook" if per_instruction else "blocks")
        record(RecordOptions(program=ROOT / program, output=out, max_steps=3_000_000,
                             per_instruction=per_instruction))
        traces.append(out)
    blocks, code_hook = (TraceFiles(t) for t in traces)
    for table in ("accesses", "rsp", "exec_counts", "syscalls", "regions"):
        assert blocks.table(table).equals(code_hook.table(table)), table
    ends = [json.loads((t / "meta.json").read_text())["end"] for t in traces]
    if ends[0]["fault"] is not None and ends[0]["fault"]["access"] in ("read", "write"):
        # At a data fault Unicorn with a code hook leaves AF out of the flags; block mode
        # has the CPU's (docs/fidelity.md).
        for end in ends:
            end["registers"].pop("eflags")
    assert ends[0] == ends[1]
