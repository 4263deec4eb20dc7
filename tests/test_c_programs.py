"""`trace record prog.c`: compiled with the system gcc (or musl-gcc) in the build sandbox, the
command shown, diagnostics as file:line, and the libc start-up and stdio questions answered
as Linux answers them (tests/test_differential.py compares the C programs with native)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PROGRAMS, trace_cli
from oracles import read_table

UNITS = PROGRAMS / "c_units"
LIBCS = ["glibc", pytest.param("musl", marks=pytest.mark.skipif(
    shutil.which("musl-gcc") is None, reason="musl-gcc is not installed (musl-tools)"))]


def _record(source: Path, out: Path, *extra: str, check: bool = True
            ) -> subprocess.CompletedProcess:
    return trace_cli("record", str(source), "-o", str(out), *extra, check=check)


def _stdout(trace: Path) -> str:
    table = read_table(trace, "output")
    return b"".join(d for fd, d in zip(table["fd"].to_pylist(), table["data"].to_pylist())
                    if fd == 1).decode()


def _refused(done: subprocess.CompletedProcess) -> str:
    err = done.stderr.decode()
    assert done.returncode != 0 and "Traceback" not in err
    return err


@pytest.mark.parametrize("libc", LIBCS)
def test_the_compile_command_is_shown_and_the_program_runs(tmp_path, libc):
    done = _record(PROGRAMS / "c" / "hello.c", tmp_path / "t", "--libc", libc,
                   "--cc-flag=-Wall", "--cc-flag", "-DUNUSED=1")
    compiler = "musl-gcc" if libc == "musl" else "gcc"
    shown = next(line for line in done.stderr.decode().splitlines()
                 if line.startswith("compiling: "))
    assert shown.startswith(f"compiling: {compiler} -static -g -O0 -Wall -DUNUSED=1 -o ")
    assert shown.endswith(f" {PROGRAMS / 'c' / 'hello.c'}")
    assert done.stdout.decode() == "hello, world\n"
    meta = json.loads((tmp_path / "t" / "meta.json").read_text())
    assert meta["program"]["kind"] == "c"
    assert meta["program"]["name"] == "hello.c"
    assert meta["end"]["stop_reason"] == "exit" and meta["end"]["exit_code"] == 0


def test_compiler_errors_are_file_line_and_leave_no_trace(tmp_path):
    source = tmp_path / "broken.c"
    source.write_text("int main(void) {\n    int x = y;\n    return 0\n}\n")
    out = tmp_path / "t"
    err = _refused(_record(source, out, check=False))
    assert f"{source}:2:13: error: 'y' undeclared" in err
    assert f"{source}:3:13: error: expected ';'" in err
    assert "  |" not in err  # gcc's source excerpts are left out
    assert not out.exists()


def test_compiler_warnings_are_shown_and_kept_in_the_metadata(tmp_path):
    source = tmp_path / "warns.c"
    source.write_text("int main(void) {\n    int unused;\n    return 0;\n}\n")
    done = _record(source, tmp_path / "t", "--no-echo", "--cc-flag=-Wall")
    assert f"gcc: {source}:2:9: warning: unused variable 'unused'" in done.stderr.decode()
    info = json.loads(trace_cli("info", str(tmp_path / "t"), "--json").stdout)
    assert any(":2:9: warning: unused variable" in w for w in info["warnings"])


def test_a_link_error_is_one_message(tmp_path):
    source = tmp_path / "undefined.c"
    source.write_text("void nowhere(void);\nint main(void) { nowhere(); return 0; }\n")
    err = _refused(_record(source, tmp_path / "t", check=False))
    assert "undefined reference to `nowhere'" in err


@pytest.mark.parametrize("include", ['"/etc/passwd"', '"../secret/s.h"', '"/home"'])
def test_a_c_source_cannot_include_host_files_outside_its_directory(tmp_path, include):
    (tmp_path / "src").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "s.h").write_text('#define SECRET "VMTRACE-SECRET"\n')
    source = tmp_path / "src" / "peek.c"
    source.write_text(f"#include {include}\nint main(void) {{ return 0; }}\n")
    err = _refused(_record(source, tmp_path / "t", check=False))
    assert "No such file or directory" in err
    assert "the build can read only" in err


def test_include_directories_are_readable_to_the_compiler(tmp_path):
    headers = tmp_path / "headers"
    headers.mkdir()
    (headers / "message.h").write_text('#define MESSAGE "from an --include directory"\n')
    done = _record(UNITS / "uses_include.c", tmp_path / "t", "--include", str(headers))
    assert done.stdout.decode() == "from an --include directory\n"
    assert f" -I {headers} " in done.stderr.decode()


def test_an_unknown_libc_is_one_sentence(tmp_path):
    err = _refused(_record(PROGRAMS / "c" / "hello.c", tmp_path / "t", "--libc", "bionic",
                           check=False))
    assert "--libc bionic: choose one of glibc, musl" in err


def test_a_dynamically_linked_c_program_gets_one_sentence(tmp_path):
    exe = tmp_path / "dyn"
    subprocess.run(["gcc", "-o", str(exe), str(PROGRAMS / "c" / "hello.c")], check=True)
    err = _refused(_record(exe, tmp_path / "t", check=False))
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "dynamically linked" in lines[0] and "-static" in lines[0]
    assert "trace record prog.c" in lines[0]


@pytest.mark.parametrize("libc", LIBCS)
def test_libc_questions_are_answered_as_linux_answers_them(tmp_path, libc):
    _record(UNITS / "libc_calls.c", tmp_path / "t", "--no-echo", "--libc", libc)
    assert _stdout(tmp_path / "t").splitlines() == [
        "exe /home/user/libc_calls",      # readlink("/proc/self/exe")
        "isatty 0 0 0",                    # ioctl(TCGETS) -> ENOTTY: pipes, not a terminal
        "stack limit 8388608",             # prlimit64(RLIMIT_STACK)
        "sigaction USR1 0",
        "handler kept 1",
        "sigaction KILL -1 EINVAL",
        "USR2 blocked 1",
        "uname Linux x86_64",
        "pid 4242",
        "uid 1000 gid 1000 cwd /home/user",
        "cpus 1 yield 0",                  # sched_getaffinity: one CPU
        "clock advances 1",                # virtual time: one nanosecond per instruction
        "cpu sse4.2 1 avx 0 avx2 0",       # CPUID: what the emulator executes
        "rdrand 0",                        # QEMU's RDRAND is host randomness: not offered
    ]
    assert trace_cli("replay", str(tmp_path / "t"), "--verify").returncode == 0


def test_glibc_start_up_registers_rseq_as_linux_does(tmp_path):
    _record(PROGRAMS / "c" / "hello.c", tmp_path / "t", "--no-echo")
    calls = read_table(tmp_path / "t", "syscalls").to_pylist()
    rseq = next(c for c in calls if c["name"] == "rseq")
    assert rseq["ret"] == 0 and rseq["args"][1] == 32
    # The kernel stores the CPU number (0) in cpu_id_start and cpu_id on the way back.
    writes = [w for w in read_table(tmp_path / "t", "kernel_writes").to_pylist()
              if w["step"] == rseq["step"]]
    assert writes == [{"step": rseq["step"], "addr": rseq["args"][0], "data": bytes(8)}]


def test_a_futex_wait_nothing_can_wake_stops_the_run_with_a_sentence(tmp_path):
    done = _record(UNITS / "futex_deadlock.c", tmp_path / "t", "--no-echo")
    err = done.stderr.decode()
    assert "waits on the futex" in err and "block it forever" in err
    info = json.loads(trace_cli("info", str(tmp_path / "t"), "--json").stdout)
    assert info["stop_reason"] == "unsupported-syscall"
    assert info["stdout"] == "waiting\n"


@pytest.mark.parametrize("libc", LIBCS)
def test_listing_state_and_stack_speak_c(tmp_path, libc):
    """The listing is the C file's (musl's start files carry line information too), and
    `trace state`/`trace stack` name C functions and lines from gcc's DWARF 5; an
    instruction inside the C library has no line of the program."""
    from analysis import open_trace
    from analysis.listing import listing
    from analysis.symbols import Symbolizer

    source = PROGRAMS / "c" / "recursion.c"
    _record(source, tmp_path / "t", "--no-echo", "--libc", libc)
    t = open_trace(tmp_path / "t")
    lst = listing(t)
    assert lst.file.endswith("recursion.c") and lst.source_available
    row = lst.lines[lst.lines["text"].str.contains("return depth")].iloc[0]
    assert row.line == 9 and row.executed >= 10_000  # instructions run on that line
    middle = t.instructions // 2  # deep in the recursion
    state = trace_cli("state", str(tmp_path / "t"), str(middle)).stdout.decode()
    assert "<depth+" in state and "recursion.c:" in state
    stack = json.loads(trace_cli("stack", str(tmp_path / "t"), str(middle), "--json").stdout)
    names = [f["function"] for f in stack["frames"]]
    assert names[0] == "depth" and "main" in names
    sym = Symbolizer(t.symbols, t.lines)
    assert sym.line_at(sym.by_name("printf").addr + 4) is None


def test_fs_relative_accesses_are_recorded_at_the_thread_pointer(tmp_path):
    """glibc's TLS (errno, the TCB, tcache pointer) is reached through %fs, whose base
    arch_prctl(ARCH_SET_FS) set: each such access is recorded at base + offset."""
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs
    from elftools.elf.elffile import ELFFile

    _record(PROGRAMS / "c" / "hello.c", tmp_path / "t", "--no-echo")
    fs_base = json.loads((tmp_path / "t" / "meta.json").read_text())["end"]["registers"][
        "fs_base"]
    set_fs = next(c for c in read_table(tmp_path / "t", "syscalls").to_pylist()
                  if c["name"] == "arch_prctl")
    assert set_fs["args"][:2] == [0x1002, fs_base]
    with open(tmp_path / "t" / "program.elf", "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        uses_fs = {i.address for i in Cs(CS_ARCH_X86, CS_MODE_64).disasm(
            text.data(), text["sh_addr"]) if "fs:" in i.op_str}
    accesses = read_table(tmp_path / "t", "accesses")
    offsets = {addr - fs_base for rip, addr in zip(accesses["rip"].to_pylist(),
                                                   accesses["addr"].to_pylist())
               if rip in uses_fs}
    assert offsets and all(-0x1000 < off < 0x1000 for off in offsets)
    assert 0 in offsets  # the TCB's self pointer, read by THREAD_SELF
