"""The native hot path: batch boundaries and determinism never change the trace, and the
instruction classes it relies on (privileged, int 0x80) behave as Linux."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from conftest import EXAMPLES, record
from tracer import native
from tracer.format import TraceFiles
from tracer.recorder import RecordOptions
from tracer.recorder import record as record_in_process

EVENT_TABLES = ("accesses", "rsp", "syscalls", "regions", "kernel_writes", "output")


def _tables(path: Path) -> dict[str, pa.Table]:
    files = TraceFiles(path)
    return {name: files.table(name).combine_chunks() for name in EVENT_TABLES}


@pytest.mark.parametrize("example", ["string_ops", "mmap_munmap", "recursion"])
def test_small_and_large_batches_give_identical_tables(tmp_path, example):
    program = EXAMPLES / f"{example}.asm"
    small = record_in_process(RecordOptions(program=program, output=tmp_path / "small",
                                            batch_events=1024))
    large = record_in_process(RecordOptions(program=program, output=tmp_path / "large",
                                            batch_events=1 << 20))
    assert small.accesses == large.accesses > 0
    a, b = _tables(small.trace), _tables(large.trace)
    for name in EVENT_TABLES:
        assert a[name].equals(b[name]), name
    # With 1024-event chunks the big example really was split into several batches.
    if example == "mmap_munmap":
        assert len(list(TraceFiles(small.trace).batches("accesses"))) > 5


def test_recording_twice_gives_byte_identical_files(tmp_path):
    for name in ("one", "two"):
        record(EXAMPLES / "mmap_munmap.asm", tmp_path / name)
    for path in sorted((tmp_path / "one").iterdir()):
        assert path.read_bytes() == (tmp_path / "two" / path.name).read_bytes(), path.name


def _asm(tmp_path: Path, body: str, data: str = "") -> Path:
    src = tmp_path / "prog.asm"
    src.write_text(f"section .data\n{data}\nsection .text\nglobal _start\n_start:\n{body}\n"
                   "mov rax, 60\nmov rdi, 7\nsyscall\n")
    return src


@pytest.mark.parametrize("insn", ["hlt", "cli", "in al, dx", "int 0x10"])
def test_privileged_instructions_end_in_sigsegv_like_linux(tmp_path, insn):
    info = record(_asm(tmp_path, f"nop\n{insn}"), tmp_path / "t")
    assert info["exit"]["signal"] == "SIGSEGV"
    fault = info["exit"]["fault"]
    assert fault["rip"] == 0x401001  # after the 1-byte nop
    assert "general protection" in fault["cause"]


def test_int80_uses_the_i386_syscall_table(tmp_path):
    body = ("mov eax, 4\nmov ebx, 1\nmov ecx, msg\nmov edx, 3\nint 0x80\n"
            "mov eax, 1\nmov ebx, 5\nint 0x80")
    info = record(_asm(tmp_path, body, 'msg: db "hi", 10'), tmp_path / "t")
    assert info["stdout"] == "hi\n"
    assert info["exit"]["code"] == 5
    assert [s["name"] for s in info["syscalls"]] == ["write", "exit"]
    calls = TraceFiles(tmp_path / "t").table("syscalls").to_pylist()
    assert [c["abi"] for c in calls] == ["i386", "i386"]
    assert [c["nr"] for c in calls] == [4, 1]


def _c_defines(prefix: str) -> dict[str, int]:
    import re

    source = (Path(native.__file__).with_name("recorder.c")).read_text()
    out = {}
    for name, value in re.findall(rf"#define ({prefix}\w+) \(?([0-9]+u? << [0-9]+|[0-9]+)\)?",
                                  source):
        out[name] = eval(value.replace("u", ""))  # "1u << 9" or "3"
    return out


def test_the_flag_bits_and_fault_numbers_are_the_same_in_c_and_python():
    import tracer.classify as classify
    from tracer.interrupts import NativeFault

    flags = _c_defines("F_")
    for name in ("MAY_CHANGE_RSP", "PRIVILEGED", "INVALID", "DEBUG_TRAP", "ALIGNED"):
        assert flags[f"F_{name}"] == getattr(classify, name), name
    faults = {k.removeprefix("FAULT_"): v for k, v in _c_defines("FAULT_").items()}
    assert faults.pop("NONE") == 0
    assert faults == {f.name: f.value for f in NativeFault}


def test_the_stop_codes_are_the_same_in_c_and_python():
    from tracer.event_stream import NativeStopCode

    stops = {k.removeprefix("STOP_"): v for k, v in _c_defines("STOP_").items()}
    assert stops == {s.name: s.value for s in NativeStopCode}


def test_no_magic_stop_numbers_are_left_in_c_or_python():
    import re

    import tracer.event_stream as event_stream

    source = Path(native.__file__).with_name("recorder.c").read_text()
    assert not re.findall(r"stop_reason\s*=\s*[^;]*\b[0-9]+\b", source)
    python = Path(event_stream.__file__).read_text()
    assert not re.findall(r"vm_stop_reason\(self\._r\)\s*[!=<>]=?\s*[0-9]", python)
    assert not re.findall(r"(?:reason|code) == [0-9]", python)


@pytest.mark.parametrize("asm, expected", [
    ("movaps xmm0, [rax]", ("rax", None, 16, False)),
    ("movdqa [rbx + rcx*4 + 8], xmm1", ("rbx", "rcx", 16, True)),
    ("addps xmm0, [rsi]", ("rsi", None, 16, False)),
    ("vmovaps xmm0, [rdi]", ("rdi", None, 16, False)),
    ("movups xmm0, [rax]", None),
    ("lddqu xmm0, [rax]", None),
    ("vaddps xmm0, xmm0, [rax]", None),
    ("addss xmm0, [rax]", None),
    ("movq xmm0, [rax]", None),
    ("pcmpistri xmm0, [rax], 0", None),
    ("mov rax, [rbx]", None),
])
def test_the_classifier_finds_the_operands_the_cpu_checks_for_alignment(tmp_path, asm,
                                                                          expected):
    import subprocess

    from capstone import CS_ARCH_X86, CS_MODE_64, Cs

    from tracer.classify import aligned_operand

    src = tmp_path / "i.asm"
    src.write_text(f"bits 64\n{asm}\n")
    subprocess.run(["nasm", "-f", "bin", str(src), "-o", str(tmp_path / "i.bin")], check=True)
    cs = Cs(CS_ARCH_X86, CS_MODE_64)
    cs.detail = True
    insn = next(cs.disasm((tmp_path / "i.bin").read_bytes(), 0x1000, 1))
    op = aligned_operand(insn)
    if expected is None:
        assert op is None
    else:
        assert (op.base, op.index, op.align, op.write) == expected


def test_a_rip_relative_operand_is_folded_into_an_absolute_address(tmp_path):
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs

    from tracer.classify import aligned_operand

    cs = Cs(CS_ARCH_X86, CS_MODE_64)
    cs.detail = True
    # movaps xmm0, [rip + 0x100] at 0x401000 (7 bytes): the operand is at 0x401107.
    insn = next(cs.disasm(bytes.fromhex("0f280500010000"), 0x401000, 1))
    op = aligned_operand(insn)
    assert (op.base, op.index, op.disp) == (None, None, 0x401107)
