"""`trace record -o DIR` never deletes or half-replaces what is there: only a directory that
is provably a vmtrace trace is replaced, the run is written beside it and renamed into place
at the end, concurrent recordings to one DIR exclude each other, and impossible paths are
refused with one sentence (tracer/output.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES, PROGRAMS, TRACE, record, trace_cli

HELLO = EXAMPLES / "hello.asm"
LOOP = PROGRAMS / "limits" / "loop_forever.asm"


def _refused(done: subprocess.CompletedProcess) -> str:
    """The one-line error of a refused command (non-zero exit, no traceback)."""
    err = done.stderr.decode()
    assert done.returncode != 0
    assert "Traceback" not in err and "trace written" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every path under `directory` with its bytes (None for anything but a regular file)."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(directory))
            regular = path.is_file() and not path.is_symlink()
            out[rel] = path.read_bytes() if regular else None
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recorded") / "trace"
    record(HELLO, out)
    return out


@pytest.fixture
def trace_copy(recorded, tmp_path) -> Path:
    return Path(shutil.copytree(recorded, tmp_path / "t"))


# -- what may be replaced --------------------------------------------------------------------
def test_a_project_with_a_meta_json_is_refused_and_kept(tmp_path):
    """The issue's reproduction: a directory that only happens to hold a meta.json."""
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "main.c").write_text("x\n")
    (proj / "meta.json").write_text('{"name": "p"}')
    before = _snapshot(proj)
    line = _refused(trace_cli("record", str(EXAMPLES / "recursion.asm"), "-o", str(proj),
                              "--no-echo", check=False))
    assert line == f"error: {proj} is not a vmtrace trace (it holds src/, which vmtrace did " \
                   "not write); choose another -o"
    assert _snapshot(proj) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def _foreign_meta(t: Path) -> None:
    (t / "meta.json").write_text('{"name": "p"}')


def _not_json(t: Path) -> None:
    (t / "meta.json").write_text("{not json")


def _deep_json(t: Path) -> None:
    (t / "meta.json").write_text("[" * 100_000)


def _newer_version(t: Path) -> None:
    meta = json.loads((t / "meta.json").read_text())
    (t / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))


def _version_as_text(t: Path) -> None:
    meta = json.loads((t / "meta.json").read_text())
    (t / "meta.json").write_text(json.dumps({**meta, "format_version": "1"}))


def _meta_symlink(t: Path) -> None:
    real = t.parent / "elsewhere.json"
    (t / "meta.json").rename(real)
    (t / "meta.json").symlink_to(real)


def _meta_directory(t: Path) -> None:
    (t / "meta.json").unlink()
    (t / "meta.json").mkdir()


def _no_meta(t: Path) -> None:
    (t / "meta.json").unlink()


def _user_file(t: Path) -> None:
    (t / "notes.txt").write_text("my notes\n")


def _user_directory(t: Path) -> None:
    (t / "src").mkdir()
    (t / "src" / "main.c").write_text("int main;\n")


def _table_is_a_directory(t: Path) -> None:
    (t / "output.arrows").unlink()
    (t / "output.arrows").mkdir()
    (t / "output.arrows" / "keep.txt").write_text("mine\n")


def _table_is_a_symlink(t: Path) -> None:
    (t / "output.arrows").unlink()
    (t / "output.arrows").symlink_to(t.parent / "precious.txt")


def _table_is_a_fifo(t: Path) -> None:
    (t / "output.arrows").unlink()
    os.mkfifo(t / "output.arrows")


@pytest.mark.parametrize("damage, says", [
    (_foreign_meta, "its meta.json was not written by vmtrace"),
    (_not_json, "its meta.json was not written by vmtrace"),
    (_deep_json, "its meta.json was not written by vmtrace"),
    (_newer_version, "format version 99, which this vmtrace does not know"),
    (_version_as_text, "its meta.json was not written by vmtrace"),
    (_meta_symlink, "it holds meta.json, which vmtrace did not write"),
    (_meta_directory, "it holds meta.json/, which vmtrace did not write"),
    (_no_meta, "it has no meta.json"),
    (_user_file, "also holds notes.txt, which vmtrace did not write"),
    (_user_directory, "also holds src/, which vmtrace did not write"),
    (_table_is_a_directory, "also holds output.arrows/, which vmtrace did not write"),
    (_table_is_a_symlink, "also holds output.arrows, which vmtrace did not write"),
    (_table_is_a_fifo, "also holds output.arrows, which vmtrace did not write"),
])
def test_only_a_directory_that_is_nothing_but_a_trace_may_be_replaced(trace_copy, damage, says):
    from tracer.errors import OutputError
    from tracer.output import check_output, claim_output

    (trace_copy.parent / "precious.txt").write_text("precious\n")
    damage(trace_copy)
    before = _snapshot(trace_copy.parent)
    for attempt in (check_output, claim_output):
        with pytest.raises(OutputError, match=says):
            attempt(trace_copy)
    assert _snapshot(trace_copy.parent) == before


@pytest.mark.parametrize("prepare", [
    lambda t: None,
    lambda t: (t / "meta.json.tmp").write_text("{half a rewrite"),
    lambda t: (t / "meta.json").write_text(json.dumps(
        {**json.loads((t / "meta.json").read_text()), "complete": False, "end": None})),
], ids=["complete", "killed-mid-meta-rewrite", "incomplete"])
def test_a_trace_is_replaced_whole_and_nothing_is_left_beside_it(trace_copy, prepare):
    prepare(trace_copy)
    done = trace_cli("record", str(EXAMPLES / "recursion.asm"), "-o", str(trace_copy), "--no-echo")
    assert f"trace written to {trace_copy} " in done.stderr.decode()
    meta = json.loads((trace_copy / "meta.json").read_text())
    assert meta["complete"] and meta["program"]["name"] == "recursion.asm"
    assert not (trace_copy / "meta.json.tmp").exists()
    assert sorted(p.name for p in trace_copy.parent.iterdir()) == ["t"]
    trace_cli("replay", str(trace_copy), "--verify")


def test_an_empty_directory_and_missing_parents_are_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "a" / "b" / "c"):
        trace_cli("record", str(HELLO), "-o", str(out), "--no-echo")
        assert json.loads((out / "meta.json").read_text())["complete"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "empty"]


# -- paths that can never be a trace ---------------------------------------------------------
@pytest.mark.parametrize("make, says", [
    (lambda d: Path("/proc/vmtrace-x"), "is inside /proc, which the kernel provides"),
    (lambda d: Path("/sys/vmtrace-x"), "is inside /sys, which the kernel provides"),
    (lambda d: _link(d, d / "a-dir"), "is a symbolic link (to "),
    (lambda d: _link(d, d / "a-trace"), "is a symbolic link (to "),
    (lambda d: _link(d, d / "a-file"), "is a symbolic link (to "),
    (lambda d: _link(d, d / "nowhere"), "is a symbolic link (to "),
    (lambda d: d / "a-file", "exists and is not a directory"),
    (lambda d: d / "a-file" / "sub" / "t", "a-file is a file, not a directory"),
], ids=["proc", "sys", "link-to-dir", "link-to-trace", "link-to-file",
        "dangling-link", "file", "under-a-file"])
def test_impossible_outputs_are_refused_in_one_sentence(recorded, tmp_path, make, says):
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "a-dir" / "keep.txt").write_text("mine\n")
    (tmp_path / "a-file").write_text("mine\n")
    shutil.copytree(recorded, tmp_path / "a-trace")
    out = make(tmp_path)
    before = _snapshot(tmp_path)
    line = _refused(trace_cli("record", str(HELLO), "-o", str(out), "--no-echo", check=False))
    assert line.startswith(f"error: {out} ") and says in line and "choose another -o" in line
    assert _snapshot(tmp_path) == before
    assert not out.exists() or out.is_symlink() or out.is_file() or out == Path("/proc")


def _link(directory: Path, target: Path) -> Path:
    link = directory / "link"
    link.symlink_to(target)
    return link


# -- failed and concurrent recordings --------------------------------------------------------
def test_a_failed_recording_leaves_the_old_trace_as_it_was(trace_copy):
    from tracer.errors import ProgramError
    from tracer.recorder import RecordOptions, record as record_in_process

    before = _snapshot(trace_copy.parent)
    broken = trace_copy.parent.parent / "broken.asm"
    broken.write_text("section .text\nglobal _start\n_start:\n    mov rax, [\n")
    assert "broken.asm:4: error" in trace_cli("record", str(broken), "-o", str(trace_copy),
                                              check=False).stderr.decode()
    # This one fails inside the run, after the recording directory was made.
    with pytest.raises(ProgramError, match="E2BIG"):
        record_in_process(RecordOptions(program=HELLO, output=trace_copy,
                                        args=("x" * 100_000,) * 25))
    assert _snapshot(trace_copy.parent) == before


def test_two_recordings_to_one_output_one_wins_the_other_says_so(tmp_path):
    """Two real recordings overlap: the first is held (SIGSTOP) once it has claimed -o, so
    the second certainly starts while the first runs."""
    out = tmp_path / "t"
    first = subprocess.Popen([*TRACE, "record", str(LOOP), "-o", str(out), "--no-echo",
                              "--max-steps", "3000000"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    claimed = tmp_path / f"t.recording-{first.pid}"
    deadline = time.monotonic() + 120
    try:
        while not (claimed / "meta.json").exists():
            assert first.poll() is None and time.monotonic() < deadline, "no recording"
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)
        line = _refused(trace_cli("record", str(HELLO), "-o", str(out), "--no-echo", check=False))
        assert line == (f"error: another `trace record` (process {first.pid}) is writing "
                        f"{out} right now; wait for it to finish or choose another -o")
    finally:
        first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err.decode()
    assert f"trace written to {out} " in err.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and meta["end"]["instructions"] == 3_000_000
    trace_cli("replay", str(out), "--verify")


def test_a_claim_excludes_others_until_it_ends(tmp_path):
    from tracer.errors import OutputError
    from tracer.output import claim_output

    out = tmp_path / "t"
    with claim_output(out) as first:
        with pytest.raises(OutputError, match=r"another `trace record` \(process \d+\)"):
            claim_output(out)
        assert first.work.is_dir() and not out.exists()
    # Ended without a commit (an error): nothing is left, and the name is free again.
    assert list(tmp_path.iterdir()) == []
    with claim_output(out):
        pass


def test_a_target_that_changed_during_the_recording_is_not_replaced(recorded, tmp_path):
    from tracer.errors import OutputError
    from tracer.output import claim_output

    out = tmp_path / "t"
    with claim_output(out) as claim:
        shutil.copytree(recorded, claim.work, dirs_exist_ok=True)
        (out / "src").mkdir(parents=True)  # the user made a project there meanwhile
        (out / "src" / "main.c").write_text("mine\n")
        with pytest.raises(OutputError, match="the new trace is in .*t.recording-"):
            claim.commit()
    assert (out / "src" / "main.c").read_text() == "mine\n"
    assert (claim.work / "meta.json").is_file()  # the new trace is kept, not deleted
