"""Damaged and hostile traces (issue 9, items 6-8), end to end through the CLI: every file is
covered by checksums, killed recordings included; meta.json is validated before use; a
trace is read only from regular files inside its own directory, and so is its index."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pytest

from analysis_tables import reseal, simulate_kill
from conftest import PROGRAMS, TRACE, record
from trace_readers import Outcome, by_subprocess, in_process

LIMITS = PROGRAMS / "limits"
STDIN = "hi there"


def refused(outcome: Outcome) -> str:
    """The one line of a refusal (non-zero exit, no traceback, no hang)."""
    assert outcome.code not in (0, None), outcome.report()
    assert outcome.problem() is None, outcome.report()
    return outcome.stderr.strip()


@pytest.fixture(scope="module")
def every_trace(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("every") / "trace"
    record(PROGRAMS / "every_table.asm", out, "--stdin", "-", stdin=STDIN.encode())
    return out


@pytest.fixture
def trace(every_trace, tmp_path) -> Path:
    """A copy of a small complete trace, for one test to damage."""
    return Path(shutil.copytree(every_trace, tmp_path / "t"))


@pytest.fixture(scope="module")
def long_trace(tmp_path_factory) -> Path:
    """A complete trace with several accesses batches."""
    out = tmp_path_factory.mktemp("long") / "trace"
    record(LIMITS / "loop_forever.asm", out, "--max-steps", "3000000")
    return out


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x55
    path.write_bytes(bytes(data))


def _batches(path: Path) -> list[int]:
    with pa.ipc.open_stream(str(path)) as reader:
        return [b.num_rows for b in reader]


# -- item 6: checksums cover every file, killed traces included --------------------------
def test_a_killed_trace_with_flipped_bytes_in_accesses_is_refused(long_trace, tmp_path):
    """Before: read as `reads: 0 writes: 0`."""
    killed = simulate_kill(Path(shutil.copytree(long_trace, tmp_path / "k")))
    rows = _batches(killed / "accesses.arrows")
    intact = json.loads(in_process(["info", str(killed), "--json"]).stdout)
    assert intact["accesses"]["write"] == sum(rows)  # the whole journaled prefix is read
    size = (killed / "accesses.arrows").stat().st_size
    _flip(killed / "accesses.arrows", size // 2)
    line = refused(by_subprocess(["info", str(killed)]))
    assert "accesses.arrows is damaged: batch" in line and "checksum" in line


def _journaled(trace: Path, name: str, batches: int) -> bool:
    """True once checksums.txt has lines for at least `batches` batches of `name`."""
    try:
        lines = (trace / "checksums.txt").read_text().splitlines()
    except OSError:
        return False
    return sum(line.startswith(name + " ") for line in lines) >= batches


def test_sigkill_leaves_a_journaled_prefix_and_damage_in_it_is_refused(tmp_path):
    target = tmp_path / "t"
    proc = subprocess.Popen([*TRACE, "record", str(LIMITS / "loop_forever.asm"), "-o",
                             str(target), "--no-echo"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # A recording writes beside its -o (t.recording-PID) and is renamed into place at the
    # end, so a killed one leaves its partial trace there.
    out = tmp_path / f"t.recording-{proc.pid}"
    accesses = out / "accesses.arrows"
    deadline = time.monotonic() + 120
    try:
        # Waits for the journal to vouch for a batch: the file alone can hold half of the
        # first batch (a batch is journaled once all of it is written).
        while proc.poll() is None and not _journaled(out, "accesses.arrows", 2):
            assert time.monotonic() < deadline, "the recording wrote nothing"
            time.sleep(0.05)
        assert proc.poll() is None, "the recording ended by itself"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    journal = [line.split() for line in (out / "checksums.txt").read_text().splitlines()]
    vouched = [(int(start), int(end), int(rows)) for name, start, end, rows, _ in journal
               if name == "accesses.arrows"]
    assert vouched, "no accesses batch was journaled"
    info = json.loads(in_process(["info", str(out), "--json"]).stdout)
    assert info["stop_reason"].startswith("incomplete")
    assert info["accesses"]["write"] == sum(rows for _, _, rows in vouched)
    start, end, _ = vouched[-1]
    _flip(accesses, (start + end) // 2)
    line = refused(by_subprocess(["info", str(out)]))
    assert f"batch {len(vouched)}" in line


def test_a_killed_trace_that_lost_a_startup_table_is_refused(trace):
    simulate_kill(trace)
    (trace / "memory_image.arrows").unlink()
    line = refused(in_process(["state", str(trace), "1"]))
    assert "killed before the program started" in line and "memory_image.arrows" in line


def test_another_program_elf_is_refused_by_replay_verify(trace, long_trace):
    """Before: `replay --verify` passed (program.elf was not checksummed)."""
    shutil.copyfile(long_trace / "program.elf", trace / "program.elf")
    line = refused(by_subprocess(["replay", str(trace), "--verify"]))
    assert "program.elf" in line


def test_another_program_elf_of_the_same_size_is_refused(trace):
    path = trace / "program.elf"
    _flip(path, path.stat().st_size - 1)
    assert "program.elf" in refused(in_process(["replay", str(trace), "--verify"]))
    assert "program.elf" in refused(in_process(["info", str(trace)]))


@pytest.mark.parametrize("table", ["kernel_writes", "exec_counts", "inputs"])
@pytest.mark.parametrize("damage", ["missing", "cut"])
def test_a_missing_or_cut_table_refuses_the_report(trace, tmp_path, table, damage):
    """Before: the report was made anyway."""
    path = trace / f"{table}.arrows"
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    line = refused(in_process(["report", str(trace), "-o", str(tmp_path / "r.html")]))
    assert f"{table}.arrows" in line
    assert not (tmp_path / "r.html").exists()


def test_a_damaged_rsp_table_is_a_sentence_not_a_traceback(trace, tmp_path):
    """Before: a Rich traceback."""
    path = trace / "rsp.arrows"
    _flip(path, path.stat().st_size // 2)
    for args in (["info", str(trace)], ["report", str(trace), "-o", str(tmp_path / "r.html")],
                 ["plot", str(trace), "stack", "--html", str(tmp_path / "p.html")]):
        assert "rsp.arrows" in refused(in_process(args))


@pytest.mark.parametrize("command", [["state", "{t}", "3"], ["stack", "{t}", "3"],
                                     ["mem", "{t}", "buf"], ["who-wrote", "{t}", "buf"]])
def test_a_cut_regions_table_is_refused_by_the_replay_queries(trace, command):
    """Before: UcError from Unicorn."""
    path = trace / "regions.arrows"
    path.write_bytes(path.read_bytes()[:path.stat().st_size - 40])
    line = refused(in_process([a.replace("{t}", str(trace)) for a in command]))
    assert "regions.arrows" in line


def test_a_garbled_journal_is_refused(trace):
    journal = trace / "checksums.txt"
    journal.write_text(journal.read_text().replace("accesses.arrows 0", "accesses.arrows 9", 1))
    assert "checksums.txt" in refused(in_process(["info", str(trace)]))


# -- item 7: meta.json is input ---------------------------------------------------------------
def _edit_meta(trace: Path, change) -> None:
    path = trace / "meta.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


META_DAMAGE = {
    "end is a list": (lambda m: m.update(end=[1]), "end must be an object"),
    "instructions is a word": (lambda m: m["end"].update(instructions="lots"),
                               "end.instructions must be an integer"),
    "initial is missing": (lambda m: m.pop("initial"), "initial is missing"),
    "files is a list": (lambda m: m.update(files=[1]), "files must be an object"),
    "rsp past 2^64": (lambda m: m["initial"].update(rsp=2 ** 70), "initial.rsp"),
    "files names /dev/zero": (
        lambda m: m["files"].update({"/dev/zero": {"bytes": 0, "sha256": "0" * 64}}),
        "not a file of a trace"),
    "files names ../meta.json": (
        lambda m: m["files"].update({"../x/meta.json": {"bytes": 0, "sha256": "0" * 64}}),
        "not a file of a trace"),
    "a register past 2^64": (lambda m: m["initial"]["registers"].update(rax=-1),
                             "initial.registers.rax"),
    "complete is a string": (lambda m: m.update(complete="yes"), "complete must be true"),
    "a fault with a list step": (
        lambda m: m["end"].update(fault={"signal": "SIGSEGV", "cause": "x", "step": [],
                                         "rip": 0, "address": None, "access": None}),
        "end.fault.step"),
    "deep nesting under an unknown key": (
        lambda m: m.update(extra=[[[[[[[[1]]]]]]]]), "deeper"),
    "an older format version": (lambda m: m.update(format_version=1), "version 1"),
}


@pytest.mark.parametrize("name", sorted(META_DAMAGE))
def test_meta_json_is_validated_before_use(trace, name):
    """Before: AttributeError, ValueError, KeyError, OverflowError, or a hang on /dev/zero."""
    change, words = META_DAMAGE[name]
    _edit_meta(trace, change)
    # By subprocess where the old reader hung (a hang in-process could not be stopped).
    run = by_subprocess if "/dev/zero" in name else in_process
    line = refused(run(["info", str(trace)]))
    assert words in line


@pytest.mark.parametrize("text", ["[" * 100_000, "{" * 100_000, '{"a": ' + "9" * 10_000 + "}",
                                  "\xff\xfe"])
def test_meta_json_that_json_itself_chokes_on_is_refused(trace, text):
    (trace / "meta.json").write_bytes(text.encode("latin-1"))
    line = refused(in_process(["info", str(trace)]))
    assert "meta.json" in line


def test_a_huge_meta_json_is_refused_before_it_is_parsed(trace):
    with open(trace / "meta.json", "ab") as f:
        f.truncate(65 << 20)
    assert "meta.json" in refused(in_process(["info", str(trace)]))


# -- item 8: only regular files inside the trace directory -----------------------------------
@pytest.mark.parametrize("target", ["/etc/passwd", "/dev/zero"])
@pytest.mark.parametrize("command", [["info", "{t}"], ["state", "{t}", "3"],
                                     ["stack", "{t}", "3"], ["mem", "{t}", "buf"],
                                     ["who-wrote", "{t}", "buf"], ["index", "{t}"]])
def test_a_table_that_is_a_symlink_is_refused(trace, target, command):
    """Before: /etc/passwd read as an empty table, /dev/zero hung the replay queries."""
    path = trace / "accesses.arrows"
    path.unlink()
    path.symlink_to(target)
    run = by_subprocess if target == "/dev/zero" else in_process
    line = refused(run([a.replace("{t}", str(trace)) for a in command]))
    assert "accesses.arrows is a symbolic link" in line


@pytest.mark.parametrize("name", ["accesses.arrows", "meta.json", "program.elf",
                                  "checksums.txt"])
def test_a_fifo_in_place_of_a_file_is_refused_without_blocking(trace, name):
    (trace / name).unlink()
    os.mkfifo(trace / name)
    line = refused(by_subprocess(["info", str(trace)]))
    assert f"{name} is a FIFO" in line


@pytest.mark.parametrize("name", ["meta.json", "program.elf"])
def test_meta_json_and_program_elf_are_not_followed(trace, tmp_path, name):
    real = tmp_path / f"real-{name}"
    shutil.move(trace / name, real)
    (trace / name).symlink_to(real)
    assert f"{name} is a symbolic link" in refused(in_process(["info", str(trace)]))


def test_a_killed_trace_with_a_symlinked_table_is_refused(trace):
    simulate_kill(trace)
    (trace / "output.arrows").unlink()
    (trace / "output.arrows").symlink_to("/dev/zero")
    assert "output.arrows is a symbolic link" in refused(in_process(["info", str(trace)]))


def test_an_index_directory_that_is_a_symlink_is_refused_and_left_alone(trace, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "keep").mkdir(parents=True)
    (elsewhere / "keep" / "precious").write_text("do not delete")
    Path(f"{trace}.index").symlink_to(elsewhere)
    line = refused(in_process(["state", str(trace), "3"]))
    assert "symbolic link" in line and ".index" in line
    assert (elsewhere / "keep" / "precious").read_text() == "do not delete"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep"]


def test_links_planted_inside_the_index_directory_are_never_followed(trace, tmp_path):
    """A planted hash directory, an old cache to prune and a FIFO stamp: the index is
    rebuilt, nothing outside it is touched, nothing blocks."""
    assert in_process(["index", str(trace)]).code == 0
    root = Path(f"{trace}.index")
    built = next(p for p in root.iterdir() if p.is_dir())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("do not delete")
    shutil.rmtree(built)
    built.symlink_to(elsewhere)                      # the index this trace would use
    (root / "0123456789abcdef").symlink_to(elsewhere)  # a stale cache to prune
    (root / "stamp.json").unlink()
    os.mkfifo(root / "stamp.json")
    outcome = in_process(["state", str(trace), "3"], timeout=60)
    assert outcome.code == 0, outcome.report()
    assert (elsewhere / "precious").read_text() == "do not delete"
    assert [p.name for p in elsewhere.iterdir()] == ["precious"]
    assert built.is_dir() and not built.is_symlink()


def test_a_fifo_planted_in_the_index_is_not_read(trace):
    assert in_process(["index", str(trace)]).code == 0
    built = next(p for p in Path(f"{trace}.index").iterdir() if p.is_dir())
    (built / "index.json").unlink()
    os.mkfifo(built / "index.json")
    outcome = in_process(["who-wrote", str(trace), "buf"], timeout=60)
    assert outcome.code == 0, outcome.report()


def test_a_symlink_planted_at_the_default_report_path_is_replaced_not_followed(trace,
                                                                                tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("do not overwrite")
    planted = Path(f"{trace}.report.html")
    planted.symlink_to(victim)
    outcome = in_process(["report", str(trace)])
    assert outcome.code == 0, outcome.report()
    assert victim.read_text() == "do not overwrite"
    assert not planted.is_symlink() and "<html" in planted.read_text()[:200].lower()


# -- forged: valid streams, checksums rewritten to match -------------------------------------
def _forge(trace: Path, table: str, change) -> None:
    path = trace / f"{table}.arrows"
    original = pa.ipc.open_stream(str(path)).read_all()
    rows = change(original.to_pylist())
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, original.schema) as w:
        w.write_table(pa.Table.from_pylist(rows, schema=original.schema))
    reseal(trace)


def test_forged_regions_are_refused_before_the_emulator_sees_them(trace):
    """Before (found by the fuzz test): UcError from Unicorn."""
    def unaligned(rows):
        rows[1]["start"] += 3
        return rows

    _forge(trace, "regions", unaligned)
    line = refused(in_process(["state", str(trace), "3"]))
    assert "regions.arrows has a row with a range" in line and "forged" in line


def test_a_forged_memory_image_is_an_inconsistent_trace_not_a_uc_error(trace):
    def elsewhere(rows):
        rows[0]["start"] = 0x10000000  # a page nothing maps
        return rows

    _forge(trace, "memory_image", elsewhere)
    line = refused(in_process(["replay", str(trace), "--verify"]))
    assert "the memory image at 0x10000000 does not fit" in line
    assert "not a run vmtrace recorded" in line


def test_dictionary_words_reach_readers_in_the_format_order(trace):
    """A file whose `source` dictionary lists words in another order (or an unknown word)
    is re-indexed (or refused): readers index SOURCES by position."""
    from tracer.format import TraceFiles
    from tracer.format.schema import SOURCES

    path = trace / "accesses.arrows"
    original = pa.ipc.open_stream(str(path)).read_all().combine_chunks()
    source = original.column("source").chunk(0)
    reordered = pa.DictionaryArray.from_arrays(
        pa.array([2 - i for i in source.indices.to_pylist()], pa.int8()),
        pa.array(list(reversed(SOURCES))))
    table = original.set_column(5, original.schema.field("source"), reordered)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, original.schema) as w:
        w.write_table(table)
    reseal(trace)
    read = TraceFiles(trace).table("accesses", ["source"]).column("source").combine_chunks()
    assert read.dictionary.to_pylist() == SOURCES
    assert read.to_pylist() == source.to_pylist()
    _forge(trace, "accesses", lambda rows: [{**r, "source": "bogus"} for r in rows])
    assert "has a source 'bogus'" in refused(in_process(["info", str(trace)]))


@pytest.mark.parametrize("command", [["mem", "{t}", "0xfffffffffffffff0", "16"],
                                     ["who-wrote", "{t}", "0xffffffffffffffff"],
                                     ["accesses", "{t}", "0x7ffffffffff8", "16"]])
def test_an_address_outside_user_memory_is_a_sentence(trace, command):
    """Before (found by the fuzz test, a symbol forged to such an address; the same from
    the command line): OverflowError in the write index."""
    line = refused(in_process([a.replace("{t}", str(trace)) for a in command]))
    assert "not all in user memory" in line
