"""`trace state` and `trace mem` against the real CPU: the native binary single-stepped
under gdb, registers and stack words compared at several steps. Stack addresses are compared
relative to each side's initial RSP (the environment, hence the stack layout, differs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conftest import PROGRAMS, build_native, record, trace_cli
from timetravel import open_session, state_at


def memory_reader(path):
    from analysis import open_trace
    from analysis.memory import MemoryReader
    from timetravel.index import open_index

    trace = open_trace(path)
    return MemoryReader(trace, open_index(trace).writes)

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")

GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
        "r12", "r13", "r14", "r15", "rip")
# CF AF ZF SF OF DF. PF is left out: it is the parity of a result's low byte, and `sub rsp, 16`
# computes on a stack address whose low byte differs between the two layouts.
ARITH_FLAGS = 0x001 | 0x010 | 0x040 | 0x080 | 0x800 | 0x400
_REG = re.compile(r"^(\w+)\s+0x([0-9a-f]+)\b")
_MEM = re.compile(r"^0x([0-9a-f]+)(?: <[^>]*>)?:\s+(.*)$")


def gdb_states(exe, steps: list[int]) -> list[dict]:
    """Registers and 16 stack words after `starti` and each cumulative number of stepi."""
    cmds, cur = ["-ex", "starti"], 0
    for s in steps:
        if s > cur:
            cmds += ["-ex", f"stepi {s - cur}"]
            cur = s
        cmds += ["-ex", "echo @@STATE\\n", "-ex", "info registers", "-ex", "x/16gx $rsp"]
    out = subprocess.run(["gdb", "-batch", "-nx", *cmds, str(exe)], capture_output=True,
                         text=True, timeout=60).stdout
    states = []
    for block in out.split("@@STATE\n")[1:]:
        regs, words = {}, {}
        for line in block.splitlines():
            if m := _MEM.match(line):
                base = int(m[1], 16)
                for i, v in enumerate(m[2].split()):
                    words[base + 8 * i] = int(v, 16)
            elif m := _REG.match(line):
                regs.setdefault(m[1], int(m[2], 16))
        states.append({"regs": regs, "words": words})
    return states


def _rel(value: int, initial_rsp: int):
    if initial_rsp - (1 << 20) <= value <= initial_rsp + (1 << 16):
        return ("stack", value - initial_rsp)
    return ("value", value)


def test_registers_and_stack_match_the_real_cpu(workdir):
    program = PROGRAMS / "replay_frames.asm"
    info = record(program, workdir / "t")
    n = info["instructions"]
    steps = sorted({0, 1, 3, 5, 8, 11, 14, 17, 20, 26, 31, 40, 52, 63, 77, n // 2, n - 2,
                    n - 1} & set(range(n)))
    exe = build_native(program, workdir)
    real = gdb_states(exe, steps)
    assert len(real) == len(steps)
    real_top = real[0]["regs"]["rsp"]
    ours_top = None
    for k, (step, cpu) in enumerate(zip(steps, real)):
        # Two steps go through the CLI by subprocess; the rest call the same code in-process.
        via_cli = k in (3, len(steps) - 1)
        state = (json.loads(trace_cli("state", str(workdir / "t"), str(step), "--json").stdout)
                 if via_cli else state_at(open_session(workdir / "t"), step).to_json())
        regs = state["registers"]
        ours_top = ours_top or regs["rsp"]
        for name in GPRS:
            assert _rel(regs[name], ours_top) == _rel(cpu["regs"][name], real_top), \
                f"{name} at step {step}"
        assert regs["eflags"] & ARITH_FLAGS == cpu["regs"]["eflags"] & ARITH_FLAGS, step
        if via_cli:
            mem = json.loads(trace_cli("mem", str(workdir / "t"), hex(regs["rsp"]), "128",
                                       "--step", str(step), "--json").stdout)
            data = bytes.fromhex(mem["hex"])
        else:
            data = memory_reader(workdir / "t").read(regs["rsp"], 128, step).data
        compared = 0
        for i in range(16):
            ours_addr, real_addr = regs["rsp"] + 8 * i, cpu["regs"]["rsp"] + 8 * i
            if ours_addr >= ours_top:  # argc/argv/envp: pointers into differing strings
                break
            ours = int.from_bytes(data[8 * i:8 * i + 8], "little")
            assert _rel(ours, ours_top) == _rel(cpu["words"][real_addr], real_top), \
                f"stack word {i} at step {step}"
            compared += 1
        assert compared == min(16, (ours_top - regs["rsp"]) // 8)


def test_every_step_is_the_cpu_after_as_many_stepi(workdir):
    """Steps are what the CPU single-steps: `trace state N` is gdb after N `stepi`, rep
    iterations included, with no step for QEMU's extra entry into a finished rep."""
    from analysis import open_trace
    from tracer.replay.state import machine_state
    from timetravel.index import open_index

    program = PROGRAMS / "replay_rep.asm"
    info = record(program, workdir / "t")
    n = info["instructions"]
    trace = open_trace(workdir / "t")
    index = open_index(trace)
    steps = list(range(n))
    real = gdb_states(build_native(program, workdir), steps)
    assert len(real) == n
    for s, cpu in zip(steps, real):
        regs = machine_state(trace.files, s, index.keyframes).registers
        for name in ("rax", "rcx", "rsi", "rdi", "rip"):  # no stack addresses here
            assert regs[name] == cpu["regs"][name], f"{name} at step {s}"


@pytest.mark.parametrize("program", ["replay_rep", "string_rep", "rep_fault"])
def test_instruction_counts_are_the_cpus_single_steps(workdir, program):
    """Each address executes as many steps as gdb single-steps it (a rep with RCX = 0 is
    one step; a repe cmpsb that stops at a difference, a fault in the middle of a rep)."""
    from collections import Counter

    from oracles import gdb_single_steps, read_table

    source = PROGRAMS / f"{program}.asm"
    info = record(source, workdir / "t")
    exe = build_native(source, workdir)
    gdb = Counter(pc for pc, _ in gdb_single_steps(exe, workdir))
    ours = {r["rip"]: r["count"] for r in read_table(workdir / "t", "exec_counts").to_pylist()}
    fault = info["exit"]["fault"]
    if fault is not None:
        # gdb stops at the faulting instruction twice: when the signal arrives and when
        # the next stepi delivers it (the process dies); the fault is one step of ours.
        gdb[fault["rip"]] -= 1
    assert ours == dict(gdb)
    if fault is None:
        assert info["instructions"] == sum(gdb.values())
