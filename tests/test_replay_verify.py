"""`trace replay --verify` end to end: every example replays exactly from its recorded
inputs, and an altered input is reported at the step where the run first departs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from analysis_tables import reseal
from conftest import EXAMPLES, PROGRAMS, record, trace_cli
from oracles import read_table

def _all_cases():
    """Every example and test program, with the arguments, stdin and host files the
    differential tests run it with (tests/cases.py)."""
    from cases import all_cases

    return all_cases()


def _verify(trace: Path) -> tuple[int, dict]:
    done = trace_cli("replay", str(trace), "--verify", "--json", check=False)
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("case", _all_cases(), ids=lambda c: c.id)
def test_replay_reproduces_every_program(case, workdir):
    # Recorded and replayed in-process (the CLI path is covered below): fast enough to run
    # on every program.
    from tracer.recorder import RecordOptions, record as run_record
    from tracer.replay.verify import verify

    data = workdir / "data"
    data.mkdir()
    for name, content in case.files:
        (data / name).write_bytes(content)
    args = tuple(a.replace("{data}", str(data)) for a in case.args)
    recorded = run_record(RecordOptions(program=case.source, output=workdir / "t", args=args,
                                        stdin=case.stdin or b"some bytes from stdin, 32 or so!",
                                        allow_read=(data,), libc=case.libc or "glibc"))
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
    reseal(trace)  # past the checksums: what the replay itself notices


def _accesses(trace: Path) -> list[dict]:
    return read_table(trace, "accesses").to_pylist()


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


FILE_PROGRAM = """; open, fstat, mmap of the file, read, clock_gettime, write: every input kind
section .data
path db "{path}", 0
section .bss
st resb 144
buf resb 64
section .text
global _start
_start:
    mov eax, 2
    lea rdi, [path]
    xor esi, esi
    syscall
    mov r12, rax
    mov eax, 5          ; fstat
    mov rdi, r12
    lea rsi, [st]
    syscall
    mov eax, 9          ; mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0)
    xor edi, edi
    mov esi, 4096
    mov edx, 1
    mov r10d, 2
    mov r8, r12
    xor r9d, r9d
    syscall
    mov rbx, rax
    mov rax, [rbx + 5]
    mov [buf], rax
    mov eax, 0          ; read(fd, buf+8, 20)
    mov rdi, r12
    lea rsi, [buf + 8]
    mov edx, 20
    syscall
    mov eax, 228        ; clock_gettime
    xor edi, edi
    lea rsi, [buf + 32]
    syscall
    mov eax, 1
    mov edi, 1
    lea rsi, [buf]
    mov edx, 48
    syscall
    mov eax, 60
    xor edi, edi
    syscall
"""


def test_file_inputs_replay_and_rebuild_memory(workdir):
    """A file mapping's contents and read/fstat/clock results are kernel writes: replay and
    the memory rebuilt from the trace both take them from the trace."""
    from analysis import open_trace
    from analysis.memory import MemoryReader
    from tracer.recorder import RecordOptions, record as run_record
    from tracer.replay.keyframes import machine_at
    from tracer.replay.verify import verify
    from timetravel.index import open_index

    files = workdir / "files"
    files.mkdir()
    (files / "data.txt").write_text("file contents for the replay test, long enough\n")
    source = workdir / "filemap.asm"
    source.write_text(FILE_PROGRAM.format(path=files / "data.txt"))
    recorded = run_record(RecordOptions(program=source, output=workdir / "t",
                                        allow_read=(files,)))
    assert recorded.exit_code == 0
    assert verify(workdir / "t").ok
    trace = open_trace(workdir / "t")
    reader = MemoryReader(trace, open_index(trace).writes)
    n = recorded.instructions
    machine = machine_at(trace.files, n, None)
    for start, end, _ in machine.mapped():
        if end - start <= 1 << 20:
            assert reader.read(start, end - start, n).data == \
                bytes(machine.uc.mem_read(start, end - start)), hex(start)
    assert trace.table("output").column("data")[0].as_py()[:8] == b"contents"
