"""Findings on hand-built tables, and on recorded programs (the tutorial's brk example must
be explained exactly)."""

import pytest

from analysis import open_trace
from analysis.findings import FindingKind, Severity, findings, wide_accesses
from analysis.heap import heap_timeline
from analysis.sections import Section
from analysis.stack import stack_depth
from analysis.symbols import Symbolizer
from analysis_tables import BRK, TEXT, access, base_regions, make_trace, rsp_row
from analysis_tables import INITIAL_RSP as IR
from analysis_tables import recorded
from conftest import EXAMPLES, PROGRAMS

D = 0x402000


def _kinds(found):
    return [f.kind for f in found]


def test_wide_access_into_next_datum_and_past_section_end(tmp_path):
    symbols = [{"name": "b", "addr": D, "size": 1, "type": "object", "section": ".data"},
               {"name": "q", "addr": D + 1, "size": 8, "type": "object", "section": ".data"}]
    t = open_trace(make_trace(tmp_path / "t", instructions=5, symbols=symbols, accesses=[
        access(1, D, 1), access(2, D, 8, value=0x0807060504030201), access(3, D + 4, 8),
        access(4, D, 8, source="kernel")]))
    found = wide_accesses(t, Symbolizer(t.symbols, t.lines),
                          [Section(".data", D, D + 9, False)])
    assert [(f.step, f.kind) for f in found] == [(2, FindingKind.WIDE_ACCESS),
                                                 (3, FindingKind.WIDE_ACCESS)]
    assert "starts on `b`" in found[0].message
    assert "The last 7 bytes belong to the next datum, `q`" in found[0].message
    assert "only the first 1 byte (0x1) is `b`" in found[0].message
    assert "lowest address first: 01 02 03 04 05 06 07 08" in found[0].message
    assert "past the end of .data (which ends at 0x402009)" in found[1].message


def test_stack_findings_on_hand_built_rows(tmp_path):
    rsp = [rsp_row(1, IR - 8, "push", IR), rsp_row(2, IR - 16, "call", IR - 8),
           rsp_row(3, IR - 8, "ret", IR - 16)]
    accesses = [access(1, IR - 8, write=True, source="implicit"),
                access(2, IR - 16, write=True, source="implicit"),
                access(3, IR - 16, source="implicit"),
                access(4, IR - 8),                       # written at step 1: fine
                access(5, IR - 40),                      # never written
                access(6, IR - 8 - 300, write=True, rip=TEXT + 6),  # 300 below RSP
                access(7, IR - 8 - 64, write=True, rip=TEXT + 7)]   # red zone
    t = open_trace(make_trace(tmp_path / "t", instructions=9, rsp=rsp, accesses=accesses,
                              syscalls=[{"step": 8, "rip": 0x401008, "nr": 60, "name": "exit",
                                         "args": [0] * 6, "ret": None, "detail": None}]))
    found = findings(t, stack_depth(t), heap_timeline(t))
    assert [(f.kind, f.step) for f in found] == [
        (FindingKind.MISALIGNED_CALL, 2), (FindingKind.READ_NEVER_WRITTEN, 5),
        (FindingKind.WRITE_BELOW_RSP, 6), (FindingKind.WRITE_BELOW_RSP, 7),
        (FindingKind.UNBALANCED_STACK, 8)]
    below = [f for f in found if f.kind is FindingKind.WRITE_BELOW_RSP]
    assert "300 bytes below RSP" in below[0].message and below[0].severity is Severity.WARNING
    assert "red zone" in below[1].message and below[1].severity is Severity.NOTE
    assert "8 bytes below where it started: 1 pushes vs 0 pops" in found[-1].message


def test_failed_brk_and_heap_reads(tmp_path):
    regions = base_regions() + [{"step": 2, "action": "brk", "start": BRK, "end": BRK + 4096,
                                 "perms": "rw-", "kind": "heap", "name": "[heap]"}]
    def brk(step, asked, ret):
        return {"step": step, "rip": 0x401000 + step, "nr": 12, "name": "brk",
                "args": [asked, 0, 0, 0, 0, 0], "ret": ret, "detail": None}
    t = open_trace(make_trace(
        tmp_path / "t", instructions=9, regions=regions,
        syscalls=[brk(1, 0, BRK), brk(2, BRK + 4096, BRK + 4096), brk(5, 1 << 44, BRK + 4096)],
        accesses=[access(6, BRK + 8)]))
    found = findings(t, stack_depth(t), heap_timeline(t))
    assert _kinds(found) == [FindingKind.BRK_FAILED, FindingKind.READ_NEVER_WRITTEN]
    msg = found[0].message
    assert msg.startswith(f"brk({1 << 44:#x}) returned {BRK + 4096:#x}, the old break")
    assert f"{BRK + 4096:#x} + {(1 << 44) - BRK - 4096:#x}" in msg
    assert "zero-filled" in found[1].message


@pytest.mark.parametrize("address,expected", [
    (0x8, "0x8 is 8 bytes past 0: a null pointer was used with an offset"),
    (0x0, "The address is 0: a null pointer was dereferenced"),
    (BRK + 0x10, "16 bytes past the end of the heap"),
    (0x401000, "in .text (r-x)")])
def test_fault_is_explained(tmp_path, address, expected):
    fault = {"signal": "SIGSEGV", "cause": "write", "step": 3, "rip": 0x401003,
             "address": address, "access": "write"}
    t = open_trace(make_trace(tmp_path / "t", instructions=4, end={
        "stop_reason": "fault", "exit_code": None, "signal": "SIGSEGV", "fault": fault}))
    found = findings(t, stack_depth(t), heap_timeline(t))
    assert _kinds(found) == [FindingKind.FAULT]
    assert expected in found[0].message
    assert "next to 0" not in found[0].message


def test_stack_overflow_names_the_recursion(tmp_path):
    recorded(PROGRAMS / "stack_overflow.asm", tmp_path / "so")
    t = open_trace(tmp_path / "so")
    (fault,) = [f for f in t.findings() if f.kind is FindingKind.FAULT]
    assert "`recurse` called itself 8,191 times without returning" in fault.message


def test_peak_break_and_the_initial_stack_are_explained(tmp_path):
    from analysis.summary import summarize

    recorded(EXAMPLES / "brk_fixed.asm", tmp_path / "b")
    s = summarize(open_trace(tmp_path / "b"))
    assert (s.brk_end - s.brk_start, s.brk_peak - s.brk_start) == (0, 4 * 4096)
    assert s.brk_line.endswith(f"peak {s.brk_peak:#x} (+16,384 bytes) at step 13")
    assert s.initial_stack == 640 and "640 bytes above it hold argv, env" in s.stack_line


def test_brk_tutorial_is_explained_to_a_learner(tmp_path):
    recorded(EXAMPLES / "brk_tutorial.asm", tmp_path / "b")
    t = open_trace(tmp_path / "b")
    found = findings(t, stack_depth(t), heap_timeline(t))
    assert [(f.kind, f.step, f.line) for f in found] == [
        (FindingKind.WIDE_ACCESS, 4, 21), (FindingKind.BRK_FAILED, 7, 26)]
    wide, brk = found[0].message, found[1].message
    for fact in ("An 8-byte read at 0x402000 starts on `increment`",
                 "line 6: `increment db 0x1000`", "1 byte long",
                 "The last 7 bytes lie past the end of .data (which ends at 0x402001)",
                 "got 0x20000002c00", "00 2c 00 00 00 02 00 00", "byte data exceeds bounds",
                 "0x1000 does not fit in 1 byte, so nasm stored only 0x0", "with dq"):
        assert fact in wide
    for fact in ("brk(0x20000405c00) returned 0x403000, the old break",
                 "0x403000 + 0x20000002c00", "read at step 4 (line 21)"):
        assert fact in brk


def test_recorded_stack_slips(tmp_path):
    recorded(PROGRAMS / "analysis" / "stack_slips.asm", tmp_path / "s")
    t = open_trace(tmp_path / "s")
    found = findings(t, stack_depth(t), heap_timeline(t))
    assert [(f.kind, f.line) for f in found] == [
        (FindingKind.MISALIGNED_CALL, 11), (FindingKind.READ_NEVER_WRITTEN, 13),
        (FindingKind.WRITE_BELOW_RSP, 14), (FindingKind.UNBALANCED_STACK, 18)]


def test_clean_examples_have_no_findings(tmp_path):
    for name in ("recursion", "brk_fixed", "allocator"):
        recorded(EXAMPLES / f"{name}.asm", tmp_path / name)
        t = open_trace(tmp_path / name)
        assert findings(t, stack_depth(t), heap_timeline(t)) == [], name


def test_recorded_heap_overrun_fault_is_explained(tmp_path):
    recorded(PROGRAMS / "analysis" / "heap_overrun.asm", tmp_path / "h")
    t = open_trace(tmp_path / "h")
    found = findings(t, stack_depth(t), heap_timeline(t))
    assert [(f.kind, f.line) for f in found] == [(FindingKind.FAULT, 8)]
    assert "16 bytes past the end of the heap" in found[0].message
