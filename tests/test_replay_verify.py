"""`trace replay --verify` end to end: every example replays exactly from its recorded
inputs, and an altered input is reported at the step where the run first departs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import EXAMPLES, PROGRAMS, record, trace_cli

PROGRAMS_TO_VERIFY = sorted(EXAMPLES.glob("*.asm")) + sorted(PROGRAMS.glob("replay_*.asm"))


def _verify(trace: Path) -> tuple[int, dict]:
    done = trace_cli("replay", str(trace), "--verify", "--json", check=False)
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("program", PROGRAMS_TO_VERIFY, ids=lambda p: p.stem)
def test_replay_reproduces_every_program(program, workdir):
    # Recorded and replayed in-process (the CLI path is covered below): fast enough to run
    # on every program.
    from tracer.recorder import RecordOptions, record as run_record
    from tracer.replay.verify import verify

    recorded = run_record(RecordOptions(program=program, output=workdir / "t",
                                        stdin=b"some bytes from stdin, 32 or so!"))
    result = verify(workdir / "t")
    assert result.divergence is None, result.divergence.sentence()
    assert result.instructions == recorded.instructions
    assert result.accesses == recorded.accesses


def test_replay_cli_verifies_a_clean_trace(workdir):
    info = record(EXAMPLES / "string_ops.asm", workdir / "t")
    code, result = _verify(workdir / "t")
    assert code == 0 and result["divergence"] is None
    assert result["instructions"] == info["instructions"]
    assert result["syscalls"] == len(info["syscalls"])


def _rewrite(trace: Path, table: str, change) -> None:
    path = trace / f"{table}.arrows"
    original = pa.ipc.open_stream(str(path)).read_all()
    rows = change(original.to_pylist())
    altered = pa.Table.from_pylist(rows, schema=original.schema)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, original.schema) as w:
        w.write_table(altered)


def _accesses(trace: Path) -> list[dict]:
    table = pa.ipc.open_stream(str(trace / "accesses.arrows")).read_all()
    return table.to_pylist()


@pytest.fixture
def read_trace(workdir) -> Path:
    record(PROGRAMS / "replay_read.asm", workdir / "read", "--stdin", "-",
           stdin=b"0123456789abcdefghijklmnopqrstuv")
    return workdir / "read"


def test_an_altered_kernel_byte_shows_at_the_first_read_of_it(read_trace, workdir):
    tampered = workdir / "tampered"
    shutil.copytree(read_trace, tampered)
    offset = 20  # past the 8 bytes an access row keeps as its value
    kw = pa.ipc.open_stream(str(read_trace / "kernel_writes.arrows")).read_all().to_pylist()
    syscall_step, buf = kw[0]["step"], kw[0]["addr"]

    def flip(rows):
        data = bytearray(rows[0]["data"])
        data[offset] ^= 0x20
        rows[0]["data"] = bytes(data)
        return rows

    _rewrite(tampered, "kernel_writes", flip)
    # Independently: the first CPU read of that byte after the read syscall.
    target = buf + offset
    expected = next(a for a in _accesses(read_trace)
                    if a["step"] > syscall_step and not a["is_write"]
                    and a["source"] != "kernel" and a["addr"] <= target < a["addr"] + a["size"])
    code, result = _verify(tampered)
    assert code == 1
    d = result["divergence"]
    assert (d["step"], d["rip"], d["table"]) == (expected["step"], expected["rip"], "accesses")
    assert "value" in d["what"]
    # The untouched copy still verifies.
    assert _verify(read_trace)[0] == 0


def test_an_altered_syscall_result_shows_at_the_next_step(read_trace, workdir):
    tampered = workdir / "tampered"
    shutil.copytree(read_trace, tampered)

    def change_ret(rows):
        rows[0]["ret"] = rows[0]["ret"] - 3
        return rows

    _rewrite(tampered, "syscalls", change_ret)
    read_step = pa.ipc.open_stream(str(read_trace / "syscalls.arrows")).read_all() \
        .column("step")[0].as_py()
    # `mov [count], rax` right after the syscall stores the result: the first difference.
    expected = next(a for a in _accesses(read_trace)
                    if a["step"] > read_step and a["source"] != "kernel")
    assert expected["step"] == read_step + 1
    code, result = _verify(tampered)
    assert code == 1
    d = result["divergence"]
    assert d["step"] == expected["step"] and d["rip"] == expected["rip"]


def test_human_output_names_the_step(read_trace, workdir):
    tampered = workdir / "tampered"
    shutil.copytree(read_trace, tampered)

    def change_ret(rows):
        rows[0]["ret"] = 1
        return rows

    _rewrite(tampered, "syscalls", change_ret)
    done = trace_cli("replay", str(tampered), "--verify", check=False)
    assert done.returncode == 1
    assert "diverges from the trace at step" in done.stdout.decode()
    ok = trace_cli("replay", str(read_trace)).stdout.decode()
    assert "reproduces the trace exactly" in ok
