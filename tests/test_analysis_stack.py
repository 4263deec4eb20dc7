"""stack_depth on a hand-built trace (numbers by hand) and on the recursion example."""

from analysis import open_trace
from analysis.figures import stack_figure
from analysis.stack import stack_depth
from analysis_tables import INITIAL_RSP as IR
from analysis_tables import TEXT, make_trace, rsp_row
from analysis_tables import recorded
from conftest import EXAMPLES

# call f at TEXT (E8 rel32 -> TEXT + 0x10), f: push rbp; sub rsp, 32; leave; ret
CODE = b"\xe8\x0b\x00\x00\x00" + b"\x90" * 11 + b"\x90" * 4080
SYMBOLS = [{"name": "_start", "addr": TEXT, "size": 0, "type": "notype", "section": ".text"},
           {"name": "f", "addr": TEXT + 0x10, "size": 0, "type": "notype", "section": ".text"}]
LINES = [{"addr": TEXT, "file": "prog.asm", "line": 3},
         {"addr": TEXT + 0x10, "file": "prog.asm", "line": 7},
         {"addr": TEXT + 0x11, "file": "prog.asm", "line": 8}]


def _trace(tmp_path):
    rows = [rsp_row(0, IR - 8, "call", IR, rip=TEXT),
            rsp_row(1, IR - 16, "push", IR - 8, rip=TEXT + 0x10),
            rsp_row(2, IR - 48, "arith", IR - 16, rip=TEXT + 0x11),
            rsp_row(5, IR - 8, "leave", IR - 48, rip=TEXT + 0x15),
            rsp_row(6, IR, "ret", IR - 8, rip=TEXT + 0x16)]
    image = [{"start": TEXT, "perms": "r-x", "kind": "text", "data": CODE}]
    return open_trace(make_trace(tmp_path / "t", instructions=8, rsp=rows, symbols=SYMBOLS,
                                 lines=LINES, image=image))


def test_exact_series_deepest_point_and_marks(tmp_path):
    s = stack_depth(_trace(tmp_path))
    assert s.bucket == 1
    # By the step convention: the call at step 0 shows in the state at step 1.
    assert s.series.values.tolist() == [[0, 0, 0], [1, 8, 8], [2, 16, 16], [3, 48, 48],
                                        [6, 8, 8], [7, 0, 0]]
    assert (s.deepest.depth, s.deepest.step, s.deepest.rip, s.deepest.line) == \
        (48, 3, TEXT + 0x11, 8)
    assert s.deepest.function == "f"
    assert s.final_depth == 0
    assert s.marks[["step", "cause", "depth", "symbol"]].values.tolist() == [
        [0, "call", 8, "f"], [6, "ret", 0, "f"]]


def test_downsampling_keeps_min_and_max_of_each_bucket(tmp_path):
    s = stack_depth(_trace(tmp_path), max_points=2)
    assert s.bucket == 4  # 8 steps in at most 2 buckets
    # bucket 0 (steps 0-3): depths 8, 16, 48; bucket 1 (steps 4-7): 8, 0
    assert s.series.values.tolist() == [[0, 0, 0], [1, 8, 48], [6, 0, 8]]
    assert s.deepest.depth == 48 and s.deepest.step == 3


def test_figure_draws_depth_downwards_with_marks(tmp_path):
    s = stack_depth(_trace(tmp_path))
    fig = stack_figure(s)
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.title.text.endswith("max 48 bytes at step 3")
    assert list(fig.layout.xaxis.range) == [0, 8]
    names = [t.name for t in fig.data]
    assert names == ["depth", "call", "ret"]
    assert list(fig.data[0].y) == [0, 8, 16, 48, 8, 0]


def test_recursion_depth_is_frames_times_frame_size(tmp_path):
    recorded(EXAMPLES / "recursion.asm", tmp_path / "rec")
    s = stack_depth(open_trace(tmp_path / "rec"))
    # 5 nested calls of fact, 32 bytes each (return address, saved rbp, 16 bytes local)
    assert s.deepest.depth == 5 * 32
    assert s.deepest.function == "fact"
    calls = s.marks[s.marks["cause"] == "call"]
    assert calls["symbol"].tolist() == ["fact"] * 5
    assert calls["depth"].tolist() == [8, 40, 72, 104, 136]
    assert s.final_depth == 0


def test_trace_object_offers_the_analyses(tmp_path):
    t = _trace(tmp_path)
    assert t.stack_depth().deepest.depth == 48
    assert t.heap_timeline().final_brk == t.initial_brk
    assert t.findings() == []
    assert t.df("rsp")["cause"].tolist() == ["call", "push", "arith", "leave", "ret"]


def test_rsp_set_to_any_value_does_not_overflow_the_depth(tmp_path):
    """`mov rsp, -1` is legal: the depth is clamped to 64 bits instead of failing the
    query (found by the trace fuzz test)."""
    rows = [rsp_row(0, (1 << 64) - 1, "mov", IR, rip=TEXT), rsp_row(1, 0, "mov", rip=TEXT)]
    s = stack_depth(open_trace(make_trace(tmp_path / "t", instructions=3, rsp=rows)))
    assert s.series["depth_min"].min() == -(1 << 63)
    assert s.series["depth_max"].max() == IR


def test_the_deepest_step_is_the_one_trace_stack_shows(tmp_path):
    """The chart's "max D bytes at step N": `trace stack TRACE N` shows depth D (issue 15
    item 4: it said the step of the instruction, one before)."""
    import re

    from conftest import ROOT, trace_cli

    fib = tmp_path / "fib.asm"
    fib.write_text("%define N 6\n" + (ROOT / "bench" / "workloads" / "recursion.asm").read_text())
    for source in (EXAMPLES / "recursion.asm", fib):
        trace = recorded(source, tmp_path / source.stem)
        d = stack_depth(open_trace(trace)).deepest
        assert f"max {d.depth} bytes at step {d.step}" in stack_figure(
            stack_depth(open_trace(trace))).layout.title.text
        out = trace_cli("stack", str(trace), str(d.step)).stdout.decode()
        assert re.search(rf"depth\s+{d.depth}\s+bytes", out), out
        before = trace_cli("stack", str(trace), str(d.step - 1)).stdout.decode()
        assert not re.search(rf"depth\s+{d.depth}\s+bytes", before)
