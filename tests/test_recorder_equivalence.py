"""Recorder optimisations lose nothing: the tables of test programs equal, row for row, those
the recorder wrote before them (bench/verify-reference.json; the full check over every
example and test program is `python bench/verify.py`)."""

import subprocess
import sys

from conftest import ROOT

from tracer.classify import RSP_DELTA, InstructionClassifier

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
    assert _delta(bytes.fromhex("4883ec10")) is None    # sub rsp, 16
