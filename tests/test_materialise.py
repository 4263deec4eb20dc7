"""Materialising a fast recording (meta.json `events: pending`): full recording -> fast-like
(bench/fastlike.py) -> materialised gives the full recording's accesses, rsp and exec_counts
row for row and its `end`, whatever the slices; an interrupted materialisation leaves the
trace pending and readable; damaged keyframes are refused; the CLI materialises first."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import EXAMPLES, PROGRAMS, ROOT, TRACE, trace_cli

sys.path.insert(0, str(ROOT / "bench"))
from fastlike import differences, make_fast_like  # noqa: E402

from tracer.errors import TracerError  # noqa: E402
from tracer.format import TraceFiles, TraceFormatError  # noqa: E402
from tracer.format.errors import EventsPending  # noqa: E402
from tracer.replay.materialise import materialise  # noqa: E402

# One behaviour each at a slice boundary: rep iterations, calls and pushes, syscalls with
# kernel reads and writes, the stack growing (by the CPU and by the kernel), rewritten
# code, SSE halves joined, a fault ending the run.
CASES = ["replay_rep", "rsp_zoo", "replay_syscall_loop", "stack_kernel_grows", "stack_far",
         "smc", "sse", "div_zero", "iovec"]


def _full(tmp_path_factory, name: str) -> Path:
    out = tmp_path_factory.mktemp("full") / name
    source = PROGRAMS / f"{name}.asm"
    if not source.exists():
        source = EXAMPLES / f"{name}.asm"
    trace_cli("record", str(source), "-o", str(out), "--no-echo")
    return out


@pytest.fixture(scope="module")
def fulls(tmp_path_factory):
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = _full(tmp_path_factory, name)
        return cache[name]

    return get


def _fast(full: Path, where: Path, every: int) -> Path:
    fast = where / (full.name + "-fast")
    shutil.rmtree(fast, ignore_errors=True)
    shutil.copytree(full, fast)
    make_fast_like(fast, every)
    return fast


@pytest.mark.parametrize("name", CASES)
def test_materialised_tables_equal_the_full_recording(fulls, tmp_path, name):
    full = fulls(name)
    steps = json.loads((full / "meta.json").read_text())["end"]["instructions"]
    # A slice at every keyframe, keyframes 3 steps apart: every kind of instruction lands
    # on a boundary somewhere; then two slices on two workers.
    for every, jobs, slices in ((3, 1, 10 ** 6), (max(2, steps // 2 - 1), 2, 2)):
        fast = _fast(full, tmp_path, every)
        assert TraceFiles(fast).pending
        materialise(fast, jobs=jobs, slices=slices)
        assert differences(full, fast) == [], (every, jobs)
        files = TraceFiles(fast)
        assert not files.pending and files.meta.events == "materialised"
        files.verify()  # every file, the new tables included, against its checksums


def test_a_pending_trace_refuses_its_event_tables_with_a_typed_error(fulls, tmp_path):
    fast = _fast(fulls("rsp_zoo"), tmp_path, 5)
    files = TraceFiles(fast)
    files.verify()  # everything it has is intact
    with pytest.raises(EventsPending, match="trace materialize"):
        files.table("accesses")
    assert files.table("syscalls").num_rows > 0


@pytest.mark.parametrize("where", ["slice", "meta"])
def test_an_interrupted_materialisation_leaves_the_trace_pending_then_completes(
        fulls, tmp_path, monkeypatch, where):
    import tracer.replay.materialise as m

    full = fulls("replay_syscall_loop")
    fast = _fast(full, tmp_path, 7)
    if where == "slice":  # the second slice is interrupted
        real = m.materialise_slice

        def slice_(task):
            if task.index == 1:
                raise KeyboardInterrupt
            return real(task)
        monkeypatch.setattr(m, "materialise_slice", slice_)
    else:  # everything is written but meta.json: the latest point
        def meta(*_a):
            raise KeyboardInterrupt
        monkeypatch.setattr(m, "write_meta", meta)
    with pytest.raises(KeyboardInterrupt):
        materialise(fast, jobs=1, slices=3)
    monkeypatch.undo()
    files = TraceFiles(fast)
    assert files.pending
    files.verify()
    assert trace_cli("state", str(fast), "10", "--json").returncode == 0
    materialise(fast, jobs=1, slices=3)
    assert differences(full, fast) == []
    TraceFiles(fast).verify()


def test_a_killed_materialize_leaves_a_readable_trace_and_a_rerun_completes_it(
        fulls, tmp_path):
    full = fulls("replay_syscall_loop")
    fast = _fast(full, tmp_path, 5)
    for delay in (0.3, 0.9):
        proc = subprocess.Popen([*TRACE, "materialize", str(fast), "--jobs", "2"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        files = TraceFiles(fast)  # pending or materialised, never unreadable
        files.verify()
        if not files.pending:
            break
    trace_cli("materialize", str(fast), "--jobs", "2")
    assert differences(full, fast) == []


def _edit_keyframe(fast: Path, k: int, edit) -> None:
    """Rewrites keyframe `k` and re-checksums it, as a careful hand would."""
    from tracer.format.checksum import sha256_file

    path = fast / "keyframes.arrows"
    table = pa.ipc.open_stream(path).read_all()
    rows = table.to_pylist()
    edit(rows[k])
    new = pa.Table.from_pylist(rows, schema=table.schema)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, new.schema) as w:
        w.write_table(new)
    meta = json.loads((fast / "meta.json").read_text())
    meta["files"]["keyframes.arrows"] = {"bytes": path.stat().st_size,
                                         "sha256": sha256_file(path)}
    (fast / "meta.json").write_text(json.dumps(meta))


def test_a_hand_edited_keyframe_is_refused_with_a_sentence(fulls, tmp_path):
    fast = _fast(fulls("rsp_zoo"), tmp_path, 5)

    def bump_rsp(row):  # RSP 8 bytes higher in the saved CPU context
        from unicorn import UC_ARCH_X86, UC_MODE_64, Uc
        from unicorn.unicorn_py3.unicorn import UcContext
        from unicorn.x86_const import UC_X86_REG_RSP

        uc = Uc(UC_ARCH_X86, UC_MODE_64)
        ctx = UcContext.__new__(UcContext)
        ctx.__setstate__((row["context"], len(row["context"]), UC_ARCH_X86, UC_MODE_64))
        uc.context_restore(ctx)
        uc.reg_write(UC_X86_REG_RSP, uc.reg_read(UC_X86_REG_RSP) + 8)
        row["context"] = bytes(uc.context_save())
    _edit_keyframe(fast, 2, bump_rsp)
    with pytest.raises(TracerError, match="does not end where the keyframe at step 10 "
                                          "begins .its CPU state differ"):
        materialise(fast, jobs=1, slices=10 ** 6)
    assert TraceFiles(fast).pending
    for k in range(1, len(pa.ipc.open_stream(fast / "keyframes.arrows").read_all())):
        _edit_keyframe(fast, k, bump_rsp)  # whichever the two slices start from
    done = trace_cli("materialize", str(fast), "--jobs", "2", check=False)
    assert done.returncode == 2
    assert done.stderr.decode().count("\n") == 1 and "error:" in done.stderr.decode()
    assert TraceFiles(fast).pending


def test_a_hand_edited_page_is_refused_with_a_sentence(fulls, tmp_path):
    from tracer.format.checksum import sha256_file

    fast = _fast(fulls("rsp_zoo"), tmp_path, 5)
    path = fast / "pages.arrows"
    pages = pa.ipc.open_stream(path).read_all().to_pylist()
    for row in pages:  # one byte of every stored page
        row["data"] = bytes([row["data"][0] ^ 1]) + row["data"][1:]
    table = pa.Table.from_pylist(pages, schema=pa.schema([("data", pa.binary())]))
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    meta = json.loads((fast / "meta.json").read_text())
    meta["files"]["pages.arrows"] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    (fast / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(TracerError, match="does not end where the keyframe at step 5 "
                                          "begins .the page at 0x"):
        materialise(fast, jobs=1, slices=10 ** 6)


def test_keyframes_whose_steps_do_not_start_at_zero_are_refused(fulls, tmp_path):
    fast = _fast(fulls("rsp_zoo"), tmp_path, 5)

    def move(row):
        row["step"] = 1
    _edit_keyframe(fast, 0, move)
    with pytest.raises(TraceFormatError, match="must start at 0"):
        materialise(fast, jobs=1)


def test_a_damaged_keyframe_file_is_refused(fulls, tmp_path):
    fast = _fast(fulls("rsp_zoo"), tmp_path, 5)
    data = bytearray((fast / "keyframes.arrows").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (fast / "keyframes.arrows").write_bytes(bytes(data))
    with pytest.raises(TraceFormatError, match="keyframes.arrows"):
        materialise(fast, jobs=1)


def test_trace_state_on_a_pending_trace_materialises_nothing(fulls, tmp_path):
    full = fulls("replay_rep")
    fast = _fast(full, tmp_path, 7)
    for step in ("0", "20", "33"):
        got = trace_cli("state", str(fast), step, "--json")
        assert "materialis" not in got.stderr.decode()
        assert json.loads(got.stdout) == json.loads(
            trace_cli("state", str(full), step, "--json").stdout)
    assert TraceFiles(fast).pending
    assert not (fast / "accesses.arrows").exists()


def test_info_answers_a_pending_trace_from_its_metadata(fulls, tmp_path):
    full = fulls("rsp_zoo")
    fast = _fast(full, tmp_path, 5)
    got = trace_cli("info", str(fast), "--json")
    assert "materialis" not in got.stderr.decode()
    assert TraceFiles(fast).pending and not (fast / "accesses.arrows").exists()
    pending, recorded = json.loads(got.stdout), json.loads(
        trace_cli("info", str(full), "--json").stdout)
    assert (pending["events"], recorded["events"]) == ("pending", "recorded")
    assert pending["accesses"] is None and pending["max_stack_depth"] is None
    for key in ("accesses", "max_stack_depth", "events"):
        del pending[key], recorded[key]
    assert pending == recorded
    text = trace_cli("info", str(fast)).stdout.decode()
    assert "not materialised yet" in text and "trace materialize" in text


def test_commands_that_need_the_events_materialise_first_saying_so(fulls, tmp_path):
    full = fulls("rsp_zoo")
    fast = _fast(full, tmp_path, 5)
    addr = hex(TraceFiles(full).table("accesses").column("addr")[0].as_py())
    got = trace_cli("accesses", str(fast), addr, "8")
    assert got.stderr.decode().count("materialising its event tables first") == 1
    assert got.stdout == trace_cli("accesses", str(full), addr, "8").stdout
    assert not TraceFiles(fast).pending
    after = trace_cli("info", str(fast), "--json")
    assert json.loads(after.stdout) == json.loads(trace_cli("info", str(full), "--json").stdout)
    again = trace_cli("stack", str(fast), "12")
    assert "materialis" not in again.stderr.decode()
    assert again.stdout == trace_cli("stack", str(full), "12").stdout


def test_slices_group_keyframes_into_equal_lengths_for_the_workers():
    from tracer.replay.materialise import plan_slices

    steps = list(range(0, 1000, 10))
    assert plan_slices(steps, 995, 1) == [(0, 995)]
    assert plan_slices(steps, 995, 2) == [(0, 500), (500, 995)]
    assert [a for a, _ in plan_slices(steps, 995, 4)] == [0, 250, 500, 750]
    # More slices than keyframes: one per keyframe, the last to the run's end.
    assert plan_slices([0, 7, 14], 20, 10) == [(0, 7), (7, 14), (14, 20)]
    # A keyframe at the final step starts no slice.
    assert plan_slices([0, 5, 10], 10, 10) == [(0, 5), (5, 10)]


def _slices_built(fast: Path) -> list[str]:
    return sorted(p.name for p in fast.parent.glob(f"{fast.name}.index/*/slices/slice-*"))


def test_queries_near_a_step_materialise_only_the_slices_they_reach(fulls, tmp_path):
    full = fulls("replay_frames")
    fast = _fast(full, tmp_path, 7)
    # trace state: keyframes and replay only, no slice.
    trace_cli("state", str(fast), "40")
    assert _slices_built(fast) == []
    # who-wrote a byte written just before the step: the one slice holding that step.
    accesses = TraceFiles(full).table("accesses").to_pylist()
    write = next(r for r in accesses if r["is_write"] and r["step"] >= 40
                 and r["source"] != "kernel")
    step = write["step"] + 1
    ask = ["who-wrote", None, hex(write["addr"]), "--step", str(step), "--json"]
    got = trace_cli(*[str(fast) if a is None else a for a in ask])
    want = trace_cli(*[str(full) if a is None else a for a in ask])
    assert json.loads(got.stdout) == json.loads(want.stdout)
    assert _slices_built(fast) == [f"slice-{write['step'] // 7}"]
    # The stack picture: the slices back to where every byte it shows was written.
    got = trace_cli("stack", str(fast), "60").stdout.decode()
    assert got == trace_cli("stack", str(full), "60").stdout.decode().replace(
        str(full), str(fast))
    assert "materialis" not in got and TraceFiles(fast).pending

