"""The stack region as Linux has it (issue 9, item 11): `[stack]` starts as the argument pages
plus 128 KiB and grows down, page by page, when an access (the CPU's or the kernel's) touches
below it, to 8 MiB at most. Compared with /proc/self/maps of the same binary run natively,
and with each growth recorded as a `grow` region event at the step of the access."""

from __future__ import annotations

import json
import re

import pyarrow as pa

from cases import all_cases, prepare  # noqa: F401  (prepare is a fixture)
from conftest import PROGRAMS, build_native, record, trace_cli
from oracles import read_table, run_native
from tracer.address_space import STACK_LIMIT, STACK_TOP

MAPS = PROGRAMS / "maps"
_STACK_LINE = re.compile(rb"^([0-9a-f]+)-([0-9a-f]+) .*\[stack\]$", re.M)


def _native_stack(source, workdir, args: tuple[str, ...] = ()) -> tuple[int, int]:
    exe = build_native(source, workdir)
    done = run_native(exe, args)
    m = _STACK_LINE.search(done.stdout)
    assert m, done.stdout
    return int(m[1], 16), int(m[2], 16)


def _stack_events(trace) -> list[dict]:
    return [r for r in read_table(trace, "regions").to_pylist() if r["kind"] == "stack"]


def _final_stack(trace) -> tuple[int, int]:
    info = json.loads(trace_cli("info", str(trace), "--json").stdout)
    return next((r["start"], r["end"]) for r in info["regions"] if r["kind"] == "stack")


def test_the_initial_stack_is_linuxs(workdir):
    native = _native_stack(MAPS / "initial.asm", workdir)
    record(MAPS / "initial.asm", workdir / "t")
    first = _stack_events(workdir / "t")[0]
    assert (first["action"], first["step"]) == ("map", 0)
    assert (first["start"], first["end"]) == native
    assert native[1] - native[0] == 132 << 10  # the argument page + 128 KiB
    assert _final_stack(workdir / "t") == native  # nothing touched below it


def test_the_initial_stack_covers_every_argument_page(workdir):
    args = ("x" * 6000, "y" * 3000)  # the strings now span three pages
    native = _native_stack(MAPS / "initial.asm", workdir, args)
    record(MAPS / "initial.asm", workdir / "t", "--", *args)
    first = _stack_events(workdir / "t")[0]
    assert (first["start"], first["end"]) == native
    assert native[1] - native[0] == (128 << 10) + 3 * 4096


def test_the_stack_grows_where_an_access_touches_as_on_linux(workdir):
    native = _native_stack(MAPS / "grown.asm", workdir)
    info = record(MAPS / "grown.asm", workdir / "t")
    assert _final_stack(workdir / "t") == native
    initial_rsp = json.loads((workdir / "t" / "meta.json").read_text())["initial"]["rsp"]
    grows = [r for r in _stack_events(workdir / "t") if r["action"] == "grow"]
    # Two growths, at the steps of the two stores (steps 0 and 2), each down to the page
    # of its address, each adding the pages between it and the previous start.
    assert [(g["step"], g["start"]) for g in grows] == [
        (0, (initial_rsp - 0x30000) & ~0xFFF), (2, (initial_rsp - 0x100000) & ~0xFFF)]
    assert grows[0]["end"] == _stack_events(workdir / "t")[0]["start"]
    assert grows[1]["end"] == grows[0]["start"]
    # The map at each step shows the stack of that step (the state before the step runs).
    sizes = []
    for step in (0, 1, 2, 3):
        state = json.loads(trace_cli("state", str(workdir / "t"), str(step), "--json").stdout)
        stack = next(r for r in state["map"] if r["kind"] == "stack")
        assert stack["end"] == STACK_TOP
        sizes.append(stack["start"])
    assert sizes == [_stack_events(workdir / "t")[0]["start"], grows[0]["start"],
                     grows[0]["start"], native[0]]
    assert info["exit"]["code"] == 0
    assert "exactly" in trace_cli("replay", str(workdir / "t"), "--verify").stdout.decode()


def test_a_syscall_writing_below_the_stack_grows_it(prepare):
    run = prepare(next(c for c in all_cases() if c.source.stem == "stack_kernel_grows"))
    assert run.info["exit"]["code"] == run.native.returncode == 0  # no EFAULT
    uname = next(s for s in run.info["syscalls"] if s["name"] == "uname")
    grows = [r for r in _stack_events(run.trace) if r["action"] == "grow"]
    rsp = run.meta["initial"]["rsp"]
    assert [(g["step"], g["start"]) for g in grows] == [
        (uname["step"], (rsp - 0x40000) & ~0xFFF),   # the kernel's write
        (uname["step"] + 3, (rsp - 0x41000 - 8) & ~0xFFF)]  # the push


def test_a_stack_overflow_grows_to_the_limit_and_no_further(prepare):
    run = prepare(next(c for c in all_cases() if c.source.stem == "stack_overflow"))
    assert run.info["exit"]["signal"] == "SIGSEGV"
    start, end = _final_stack(run.trace)
    assert (start, end) == (STACK_TOP - STACK_LIMIT, STACK_TOP)
    grows = [r for r in _stack_events(run.trace) if r["action"] == "grow"]
    assert all(a["start"] == b["end"] for a, b in zip(grows, grows[1:]))  # page by page
    steps = [g["step"] for g in grows]
    assert steps == sorted(steps)


def _regions(rows: list[dict]) -> pa.Table:
    from tracer.format.schema import REGIONS

    return pa.Table.from_pylist(rows, schema=REGIONS)


def test_map_at_applies_grow_events():
    from analysis.regions import map_at
    from analysis.segments import segments_from_events

    top, start = STACK_TOP, STACK_TOP - 0x21000
    events = _regions([
        {"step": 0, "action": "map", "start": 0x401000, "end": 0x402000, "perms": "r-x",
         "kind": "text", "name": ".text"},
        {"step": 0, "action": "map", "start": start, "end": top, "perms": "rw-",
         "kind": "stack", "name": "[stack]"},
        {"step": 5, "action": "grow", "start": start - 0x3000, "end": start, "perms": "rw-",
         "kind": "stack", "name": "[stack]"},
        {"step": 9, "action": "grow", "start": start - 0x5000, "end": start - 0x3000,
         "perms": "rw-", "kind": "stack", "name": "[stack]"},
    ])
    stack = lambda m: [(r.start, r.end) for r in m if r.kind == "stack"]  # noqa: E731
    assert stack(map_at(events, 4)) == [(start, top)]
    assert stack(map_at(events, 5)) == [(start - 0x3000, top)]
    assert stack(map_at(events)) == [(start - 0x5000, top)]
    segs = [s for s in segments_from_events(events, 0x403000) if s.kind == "stack"]
    assert [(s.start, s.end) for s in segs] == [(start - 0x5000, top)]


def test_replay_verify_checks_the_stack_growth(workdir):
    from dataclasses import replace

    from tracer.format import TraceFiles
    from tracer.replay.inputs import load_inputs
    from tracer.replay.verify import verify

    record(PROGRAMS / "stack_far.asm", workdir / "t")
    files = TraceFiles(workdir / "t")
    assert verify(files).ok
    inputs = load_inputs(files)
    moved = [replace(e, start=e.start + 0x1000) if e.action == "grow" else e
             for e in inputs.region_events]
    divergence = verify(files, replace(inputs, region_events=moved)).divergence
    assert divergence is not None and divergence.table == "regions"
    assert "stack growth 1" in divergence.what


def test_a_version_1_trace_is_refused_with_a_sentence(workdir):
    record(PROGRAMS / "stack_far.asm", workdir / "t")
    meta_path = workdir / "t" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 1
    meta_path.write_text(json.dumps(meta))
    done = trace_cli("info", str(workdir / "t"), check=False)
    err = done.stderr.decode()
    assert done.returncode != 0 and "Traceback" not in err
    assert "version 1" in err and "record the program again" in err
