"""`trace view`'s JSON API (docs/viewer.md), endpoint by endpoint, on a real recording of
tests/programs/viewer_walk.asm: the state is `trace state --json`'s, the stack `trace
stack --json`'s, jumps land where the docs say, and a bad request gets a 4xx and a sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PROGRAMS, trace_cli

starlette = pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

WALK = PROGRAMS / "viewer_walk.asm"
COUNTER_WRITES = (3, 9, 27)  # the steps whose `inc` writes `counter`


@pytest.fixture(scope="module")
def walk(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("viewer") / "walk"
    trace_cli("record", str(WALK), "-o", str(out), "-q")
    return out


@pytest.fixture(scope="module")
def client(walk: Path) -> TestClient:
    from vmtrace.viewer.app import open_app

    return TestClient(open_app(walk), base_url="http://127.0.0.1")


def cli_state(walk: Path, step: int) -> dict:
    return json.loads(trace_cli("state", str(walk), str(step), "--json").stdout)


def get(client: TestClient, path: str, status: int = 200) -> dict:
    res = client.get(path)
    assert res.status_code == status, res.text
    return res.json()


@pytest.mark.parametrize("step", [0, 1, 3, 16, 24, 33])
def test_state_is_trace_state_json(client, walk, step):
    served = get(client, f"/api/state?step={step}")
    expected = cli_state(walk, step)
    assert {k: served[k] for k in expected} == expected
    assert served["registers_hex"]["rip"] == hex(expected["registers"]["rip"])


def test_state_marks_what_the_last_step_changed(client):
    after_call = get(client, "/api/state?step=1")       # `call bump` ran as step 0
    assert set(after_call["changed"]) == {"rsp", "rip"}
    assert get(client, "/api/state?step=0")["changed"] == []
    # Stepping forward and jumping give the same answer (the server replays forward).
    get(client, "/api/state?step=30")
    assert get(client, "/api/state?step=1") == after_call


def test_stack_is_trace_stack_json_with_pushes_and_pops(client, walk):
    for step in (2, 5):
        served = get(client, f"/api/stack?step={step}")
        cli = json.loads(trace_cli("stack", str(walk), str(step), "--json").stdout)
        assert [{k: r[k] for k in cli["rows"][0]} for r in served["rows"]] == cli["rows"]
        assert served["frames"] == cli["frames"]
    pushed = get(client, "/api/stack?step=2")            # `push rbp` ran as step 1
    assert [r["addr"] for r in pushed["rows"] if r["pushed"]] == [pushed["rsp"]]
    assert not any(r["popped"] for r in pushed["rows"])
    popped = get(client, "/api/stack?step=5")            # `pop rbp` ran as step 4
    assert [r["addr"] for r in popped["rows"] if r["popped"]] == [popped["rsp"] - 8]


def test_memory_marks_bytes_the_last_step_wrote(client):
    mem = get(client, "/api/memory?step=4&addr=counter&len=16")
    assert mem["symbol"] == "counter"
    assert bytes.fromhex(mem["bytes"])[:8] == (1).to_bytes(8, "little")
    assert mem["written_by_last_step"] == [True] * 8 + [False] * 8
    assert not any(get(client, "/api/memory?step=5&addr=counter&len=16")
                   ["written_by_last_step"])


def test_who_wrote_is_trace_who_wrote_json(client, walk):
    served = get(client, "/api/who-wrote?step=12&addr=counter")
    cli = json.loads(trace_cli("who-wrote", str(walk), "counter", "--step", "12",
                               "--json").stdout)
    assert {k: served[k] for k in cli if k != "write"} == {k: v for k, v in cli.items()
                                                          if k != "write"}
    assert {k: served["write"][k] for k in cli["write"]} == cli["write"]
    assert served["write"]["step"] == COUNTER_WRITES[1]


@pytest.mark.parametrize("query, landing", [
    ("what=call&step=0", 1),                 # lands in the callee
    ("what=ret&step=1", 6),                  # back in the caller
    ("what=call&step=10&dir=prev", 7),
    ("what=syscall&step=0", 16),             # on the syscall, its arguments in registers
    ("what=syscall&step=16", 19),
    ("what=write&step=0&addr=counter", COUNTER_WRITES[0] + 1),
    ("what=write&step=4&addr=counter", COUNTER_WRITES[1] + 1),
    ("what=write&step=12&addr=counter&dir=prev", COUNTER_WRITES[1] + 1),
    ("what=write&step=10&addr=counter&dir=prev", COUNTER_WRITES[0] + 1),
    ("what=write&step=28&addr=counter", None),
    ("what=ret&step=30", None),
])
def test_seek_lands_where_the_docs_say(client, query, landing):
    assert get(client, f"/api/seek?{query}")["step"] == landing


def test_timeline_points_are_steps_to_look_at(client):
    t = get(client, "/api/timeline")
    assert t["steps"] == 33
    assert (t["depth"]["step"][0], t["depth"]["max"][0]) == (0, 0)
    deepest = t["deepest"]
    stack = get(client, f"/api/stack?step={deepest['step']}")
    assert stack["initial_rsp"] - stack["rsp"] == deepest["depth"] == 16
    # Every depth point is what `stack` shows at that step.
    for step, depth in zip(t["depth"]["step"], t["depth"]["max"]):
        pic = get(client, f"/api/stack?step={step}")
        assert pic["initial_rsp"] - pic["rsp"] == depth, step
    assert t["brk"]["step"] == [0, 24] and t["brk"]["above_start"] == [0, 4096]
    assert [s["name"] for s in t["syscalls"]] == ["write", "brk", "brk", "exit"]
    assert [(c["step"], c["kind"]) for c in t["calls"][:2]] == [(1, "call"), (6, "ret")]


def test_output_up_to_a_step(client):
    assert get(client, "/api/output?step=16")["chunks"] == []
    chunks = get(client, "/api/output?step=17")["chunks"]
    assert chunks == [{"fd": 1, "text": "<img src=x onerror=alert(1)>\n"}]


def test_disassembly_names_operands_and_stops_at_padding(client):
    d = get(client, "/api/disassembly?step=3")
    current = [i for i in d["instructions"] if i["current"]]
    assert current[0]["symbolic"] == "inc qword ptr [counter]"
    assert d["instructions"][0]["label"] == "bump"
    start = get(client, "/api/disassembly?step=0")
    assert start["instructions"][0]["symbolic"] == "call bump"
    assert "add byte ptr [rax], al" not in [i["text"] for i in
                                            get(client, "/api/disassembly?step=32")
                                            ["instructions"]]


def test_view_is_the_panes_in_one_answer(client):
    v = get(client, "/api/view?step=4&addr=counter&len=16")
    assert v["state"]["step"] == v["stack"]["step"] == v["memory"]["step"] == 4
    assert get(client, "/api/view?step=4&addr=nowhere")["memory"]["error"]


def test_heap_without_an_allocator_says_why(client):
    h = get(client, "/api/heap?step=5")
    assert h["available"] is False and "malloc" in h["reason"]


def test_meta(client):
    m = get(client, "/api/meta")
    assert m["program"] == "viewer_walk.asm" and m["steps"] == 33
    assert m["end"]["exit_code"] == 0


@pytest.mark.parametrize("path, words", [
    ("/api/state?step=34", "outside the run"),
    ("/api/state?step=-1", "outside the run"),
    ("/api/state", "needs ?step="),
    ("/api/state?step=ten", "whole number"),
    ("/api/stack?step=99999999999999999999999", "outside the run"),
    ("/api/memory?step=1&addr=0x401000&len=0", "1 to 4,096 bytes"),
    ("/api/memory?step=1&addr=0x401000&len=100000", "1 to 4,096 bytes"),
    ("/api/memory?step=1&addr=nowhere", "neither an address nor a symbol"),
    ("/api/memory?step=1&addr=0x7ffffffffff0&len=64", "user memory"),
    ("/api/who-wrote?step=1", "needs ?addr="),
    ("/api/seek?step=1&what=jump", "cannot seek"),
    ("/api/seek?step=1&what=call&dir=sideways", "next or prev"),
    ("/api/seek?step=1&what=write", "address to watch"),
])
def test_bad_requests_get_a_sentence(client, path, words):
    body = get(client, path, 400)
    assert words in body["error"]


@pytest.mark.parametrize("path", ["/api/nothing", "/assets/../../etc/passwd",
                                  "/assets/%2e%2e%2fsession.py", "/assets/index.html",
                                  "/etc/passwd"])
def test_no_path_reaches_the_file_system(client, path):
    assert client.get(path).status_code == 404


def test_only_loopback_host_names(walk):
    from vmtrace.viewer.app import open_app

    evil = TestClient(open_app(walk), base_url="http://attacker.example")
    assert evil.get("/api/meta").status_code == 400


def test_page_and_assets_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and 'data-testid="stack"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    js = client.get("/assets/plotly.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")


def test_export_refuses_a_folder_that_is_not_an_export(walk, tmp_path):
    from vmtrace.viewer.export import ExportError, export_viewer

    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "homework.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an exported view"):
        export_viewer(walk, mine)
    assert (mine / "homework.txt").read_text() == "mine"
    a_file = tmp_path / "file.html"
    a_file.write_text("mine")
    with pytest.raises(ExportError, match="not a folder"):
        export_viewer(walk, a_file)
    done = export_viewer(walk, tmp_path / "view")
    again = export_viewer(walk, tmp_path / "view")       # an earlier export is replaced
    assert done == again and again.is_file()
    (tmp_path / "view" / "extra.txt").write_text("added by the user")
    with pytest.raises(ExportError, match="not an exported view"):
        export_viewer(walk, tmp_path / "view")
    assert (tmp_path / "view" / "extra.txt").is_file()


def test_export_refuses_a_long_run(walk, tmp_path, monkeypatch):
    from vmtrace.viewer import export

    monkeypatch.setattr(export, "MAX_STEPS", 10)
    with pytest.raises(export.ExportError, match="up to 10"):
        export.export_viewer(walk, tmp_path / "view")
    assert not (tmp_path / "view").exists()


def test_heap_blocks_of_a_c_program_at_a_step(tmp_path):
    """fragments.c: a..d = malloc(100), free(a), free(c), ... (see test_heap_findings)."""
    from vmtrace.commands.report import allocator_tracking
    from vmtrace.viewer.session import ViewerSession

    out = tmp_path / "fragments"
    trace_cli("record", str(PROGRAMS / "c_heap" / "fragments.c"), "-o", str(out), "-q")
    session = ViewerSession(out)
    frag, heap = allocator_tracking(session.trace, None)
    a, b, c, d = [x for x in heap.blocks if x.alloc_line is not None][:4]
    after_two_frees = session.heap(c.free_step + 1)
    assert after_two_frees["available"]
    state = {blk["ptr"]: blk["state"] for blk in after_two_frees["blocks"]}
    assert [state[x.ptr] for x in (a, b, c, d)] == ["freed", "live", "freed", "live"]
    assert {(h["start"], h["end"]) for h in after_two_frees["holes"]} >= {
        (a.ptr, a.ptr + 100), (c.ptr, c.ptr + 100)}
    before = session.heap(a.alloc_step)          # malloc has not returned a yet
    assert a.ptr not in {blk["ptr"] for blk in before["blocks"]}
