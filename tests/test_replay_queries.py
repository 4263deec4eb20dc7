"""The replay queries checked by independent means: who-wrote against a brute-force scan of
the accesses table, memory rebuilt from the trace against the replayed emulator's memory,
keyframe restores against a replay from step 0 and RSP against the rsp table."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pyarrow as pa
import pytest

from conftest import EXAMPLES, PROGRAMS, ROOT, trace_cli

from analysis import open_trace
from analysis.memory import MemoryReader, segments_at
from tracer.format import TraceFiles
from tracer.replay.inputs import load_inputs
from tracer.replay.keyframes import Keyframes, machine_at
from timetravel.index import build_index, open_index

STDIN = b"0123456789abcdefghijklmnopqrstuv"
NAMES = ("recursion", "string_ops", "data_bss", "mmap_munmap", "brk_tutorial", "replay_read",
         "replay_frames", "replay_mremap", "replay_syscall_loop")


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    out = {}
    base = tmp_path_factory.mktemp("replay_queries")
    # Recorded in-process (the CLI's record is tested elsewhere); queries go through the CLI
    # where a test says so.
    from tracer.recorder import RecordOptions, record as run_record

    for name in NAMES:
        src = PROGRAMS / f"{name}.asm" if name.startswith("replay_") else EXAMPLES / f"{name}.asm"
        run_record(RecordOptions(program=src, output=base / name, stdin=STDIN))
        out[name] = base / name
    return out


def _brute_force_last_write(rows: list[dict], addr: int, step: int) -> dict | None:
    best = None
    for r in rows:
        if r["is_write"] and r["step"] < step and r["addr"] <= addr < r["addr"] + r["size"]:
            best = r
    return best


@pytest.mark.parametrize("name", ["recursion", "string_ops", "data_bss", "replay_read",
                                  "replay_frames"])
def test_who_wrote_matches_a_brute_force_scan(traces, name):
    trace = open_trace(traces[name])
    index = open_index(trace)
    reader = MemoryReader(trace, index.writes)
    rows = trace.table("accesses").to_pylist()
    n = trace.meta.end.instructions
    written = sorted({r["addr"] + k for r in rows if r["is_write"] for k in range(r["size"])})
    rng = random.Random(6)
    addrs = rng.sample(written, min(40, len(written))) + [written[0] - 1, written[-1] + 1]
    checked = found = 0
    for addr in addrs:
        for step in sorted({0, n, *(rng.randrange(n + 1) for _ in range(6))}):
            got = reader.who_wrote(addr, step)
            want = _brute_force_last_write(rows, addr, step)
            checked += 1
            if want is None:
                assert got is None, (addr, step)
                continue
            found += 1
            assert got is not None, (addr, step)
            assert (got.step, got.rip, got.addr, got.size) == \
                (want["step"], want["rip"], want["addr"], want["size"]), (addr, step)
            assert got.source == want["source"]
            if want["value"] is not None:
                assert int.from_bytes(got.data[:8].ljust(8, b"\0"), "little") == want["value"]
    assert found > 0 and checked > found


def test_who_wrote_cli_reports_the_kernel_and_the_source_line(traces):
    path = traces["replay_read"]
    kw = pa.ipc.open_stream(str(path / "kernel_writes.arrows")).read_all().to_pylist()[0]
    out = json.loads(trace_cli("who-wrote", str(path), hex(kw["addr"] + 3), "--json").stdout)
    assert out["write"]["source"] == "kernel" and out["write"]["syscall"] == "read"
    assert out["write"]["step"] == kw["step"] and out["byte"] == STDIN[3]
    count = json.loads(trace_cli("who-wrote", str(path), "count", "--json").stdout)["write"]
    assert count["line"]["line"] == 16 and count["value"] == len(STDIN)
    assert count["line"]["file"].endswith("replay_read.asm")
    human = trace_cli("who-wrote", str(path), "count").stdout.decode()
    assert "replay_read.asm:16" in human


@pytest.mark.parametrize("name", NAMES)
def test_memory_from_the_trace_equals_the_replayed_memory(traces, name):
    files = TraceFiles(traces[name])
    trace = open_trace(traces[name])
    reader = MemoryReader(trace, open_index(trace).writes)
    inputs = load_inputs(files)
    n = inputs.instructions
    rng = random.Random(1)
    for step in sorted({0, 1, n // 2, n - 1, n, *(rng.randrange(n) for _ in range(4))}):
        machine = machine_at(files, step, None, inputs)
        rsp = machine.registers()["rsp"]
        for seg in segments_at(trace, step):
            lo, hi = seg.start, seg.end
            if seg.kind == "stack":
                lo, hi = (rsp - 256) & ~0xFFF, seg.end
            view = reader.read(lo, hi - lo, step)
            assert all(view.mapped), (name, step, seg)
            assert view.data == bytes(machine.uc.mem_read(lo, hi - lo)), (name, step, seg)
        mapped = {(s.start, s.end) for s in segments_at(trace, step)}
        # Unicorn holds the stack's whole RLIMIT_STACK reservation; the map shows Linux's
        # [stack] of that step, the part of it grown so far.
        stack_start = min(s.start for s in segments_at(trace, step) if s.kind == "stack")
        emulated = {(max(a, stack_start) if a < stack_start < b else a, b)
                    for a, b, _ in machine.mapped()}
        assert _merge(mapped) == _merge(emulated), (name, step)


def _merge(ranges):
    out = []
    for a, b in sorted(ranges):
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


@pytest.mark.parametrize("name", ["mmap_munmap", "recursion", "replay_read",
                                  "replay_syscall_loop"])
def test_keyframe_restores_equal_a_replay_from_the_start(traces, name, tmp_path):
    files = TraceFiles(traces[name])
    trace = open_trace(traces[name])
    inputs = load_inputs(files)
    n = inputs.instructions
    every = max(7, n // 10)
    build_index(trace, every=every, directory=tmp_path / "idx")
    keyframes = Keyframes(tmp_path / "idx")
    rsp_rows = trace.table("rsp").to_pylist()
    rng = random.Random(2)
    for step in sorted({0, every - 1, every, every + 1, n - 1, n,
                        *(rng.randrange(n) for _ in range(20))}):
        a = machine_at(files, step, keyframes, inputs)
        b = machine_at(files, step, None, inputs)
        assert a.registers() == b.registers(), step
        for start, end, _ in b.mapped():
            if end - start <= 1 << 20:
                assert a.uc.mem_read(start, end - start) == b.uc.mem_read(start, end - start)
        # RSP before step N is the `new` of the last RSP change made by a step < N.
        expected = trace.initial_rsp
        for r in rsp_rows:
            if r["step"] < step:
                expected = r["new"]
        assert a.registers()["rsp"] == expected, step


def test_memory_moved_by_mremap_keeps_its_bytes_and_writers(traces):
    path = traces["replay_mremap"]
    trace = open_trace(path)
    reader = MemoryReader(trace, open_index(trace).writes)
    calls = {r["name"]: r for r in trace.syscalls.to_pylist()}
    old, new, step = calls["mremap"]["args"][0], calls["mremap"]["ret"], calls["mremap"]["step"]
    end = trace.meta.end.instructions
    view = reader.read(new, 16, end)
    assert view.data == bytes([0x5A] * 7 + [0x11] + [0x5A] * 8)
    assert reader.read(new + 4096, 8, end).data == bytes(8)  # grown part: zeros
    assert not any(reader.read(old, 8, end).mapped)         # the old place is gone
    moved = reader.who_wrote(new + 3, end)                   # written at the old address
    assert moved.addr == old + 3 and moved.step < step and moved.source == "implicit"
    assert reader.who_wrote(new + 7, end).step > step        # the byte written after


def test_state_json_has_instruction_source_line_and_map(traces):
    path = traces["recursion"]
    state = json.loads(trace_cli("state", str(path), "30", "--json").stdout)
    assert state["instruction"]["text"] == "cmp rdi, 1"
    assert state["instruction"]["symbol"] == "fact+0xc"
    assert state["source"]["line"] == 12
    assert {r["kind"] for r in state["map"]} >= {"text", "stack"}
    assert state["flags"]["IF"] is True
    bad = trace_cli("state", str(path), "100000", check=False)
    assert bad.returncode == 2 and b"outside the run" in bad.stderr


def test_stack_picture_shows_frames_return_addresses_and_arguments(traces):
    path = traces["recursion"]
    pic = json.loads(trace_cli("stack", str(path), "40", "--json").stdout)
    kinds = [r["kind"] for r in pic["rows"]]
    assert kinds.count("return address") == 5          # five nested calls of fact
    assert [f["function"] for f in pic["frames"]] == ["fact"] * 5 + ["_start"]
    assert sum(1 for r in pic["rows"] if r["kind"] == "red zone") == 16
    rbp_row = next(r for r in pic["rows"] if "RBP" in r["marks"])
    assert rbp_row["kind"] == "saved rbp"
    assert any("RSP" in r["marks"] for r in pic["rows"])
    text = trace_cli("stack", str(path), "40").stdout.decode()
    assert "fact+0x1a" in text and "frame 0: fact" in text
    # replay_frames pushes an argument before calling sum3 in its loop.
    frames = traces["replay_frames"]
    n = json.loads(trace_cli("info", str(frames), "--json").stdout)["instructions"]
    found = False
    for step in range(30, n):
        from timetravel import open_session, stack_at

        pic = stack_at(open_session(frames), step)
        if any(r.kind == "argument" for r in pic.rows):
            found = True
            break
    assert found


def test_the_index_sits_beside_the_trace_and_never_changes_it(traces):
    path = traces["recursion"]
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    trace_cli("who-wrote", str(path), "buf", "--step", "40", check=False)
    trace_cli("state", str(path), "40")
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    digest = TraceFiles(path).content_hash()
    assert (path.parent / f"{path.name}.index" / digest[:16] / "index.json").exists()


def test_read_side_modules_do_not_load_the_emulator():
    code = ("import sys, analysis.memory, analysis.write_index, analysis.stack_picture; "
            "assert 'unicorn' not in sys.modules and 'capstone' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_explore_steps_and_follows_writes_of_an_address(traces):
    path = traces["recursion"]
    # The innermost return address at step 40: 0x88 below the initial RSP (five frames).
    slot = open_trace(path).initial_rsp - 0x88
    keys = f"n\nn\ng 40\nw {slot:#x}\n<\n>\np\nbogus\nq\n".encode()
    out = trace_cli("explore", str(path), stdin=keys).stdout.decode()
    heads = [line.split("/")[0].strip() for line in out.splitlines()
             if line.startswith("step ") and " / " in line]
    # start, n, n, g 40, w (same step), < (to the write at 33), > (none later), p, bogus
    assert heads == ["step 0", "step 1", "step 2", "step 40", "step 40", "step 33",
                     "step 33", "step 32", "step 32"]
    assert f"step 33 writes 8 byte(s) at {slot:#x} (implicit)" in out
    assert f"no later write to {slot:#x}" in out
    assert "unknown command 'bogus'" in out
    assert "call fact" in out and "return" in out  # the disassembly names addresses


def test_next_write_matches_a_brute_force_scan(traces):
    trace = open_trace(traces["replay_read"])
    index = open_index(trace)
    rows = trace.table("accesses").to_pylist()
    n = trace.meta.end.instructions
    addrs = sorted({r["addr"] + k for r in rows if r["is_write"] for k in range(r["size"])})
    for addr in addrs:
        for step in range(0, n + 1, 3):
            want = next((r for r in rows if r["is_write"] and r["step"] >= step
                         and r["addr"] <= addr < r["addr"] + r["size"]), None)
            got = index.writes.next_write(addr, step)
            assert (got.step if got else None) == (want["step"] if want else None)


def test_a_new_recording_gets_a_new_index_and_the_stale_one_goes(tmp_path):
    from tracer.recorder import RecordOptions, record as run_record

    path = tmp_path / "t"
    run_record(RecordOptions(program=EXAMPLES / "hello.asm", output=path))
    first = open_index(open_trace(path)).directory
    run_record(RecordOptions(program=EXAMPLES / "recursion.asm", output=path))
    second = open_index(open_trace(path)).directory
    assert first != second and second.exists() and not first.exists()
    assert second.parent == tmp_path / "t.index"


def test_mem_and_accesses_cli(traces):
    path = traces["string_ops"]
    text = trace_cli("mem", str(path), "dst", "32").stdout.decode()
    assert "string ops copy" in text and "dst" in text
    hist = json.loads(trace_cli("accesses", str(path), "dst", "4", "--step", "10",
                                "--json").stdout)
    steps = [a["step"] for a in hist["accesses"]]
    assert steps == sorted(steps) and len(steps) == 4 + 4 + 1  # movsb, repne scasb, write
    assert hist["previous"]["step"] < 10 <= hist["next"]["step"]
    assert {a["source"] for a in hist["accesses"]} == {"implicit", "kernel"}
    human = trace_cli("accesses", str(path), "dst", "4", "--step", "10").stdout.decode()
    assert "previous: step" in human and "next: step" in human
    bad = trace_cli("mem", str(path), "no_such_symbol", check=False)
    assert bad.returncode == 2 and b"neither an address nor a symbol" in bad.stderr
