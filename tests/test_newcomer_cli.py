"""The rough edges a newcomer met on the command line (issue 15): a directory as the
program, ld's warnings, plurals, piped output, help screens, syscall arguments, piped
stdin, --open without a browser, -q."""

from __future__ import annotations

import os
import sys

from conftest import EXAMPLES, ROOT, TRACE, trace_cli

EXIT_ONLY = "section .text\nglobal _start\n_start:\n    mov eax, 60\n    mov edi, 3\n    syscall\n"


def test_a_directory_as_the_program_is_one_sentence(tmp_path):
    trace_cli("record", str(EXAMPLES / "hello.asm"), "-o", str(tmp_path / "t"), "-q")
    for program, words in ((".", "is a directory"), (str(tmp_path / "t"), "is a trace, not")):
        done = trace_cli("record", program, "-o", str(tmp_path / "out"), check=False)
        err = done.stderr.decode()
        assert done.returncode == 2 and words in err and "Traceback" not in err, err
        assert err.count("\n") == 1


def test_ld_warning_is_labelled_ld_with_the_global_start_hint(tmp_path):
    src = tmp_path / "nostart.asm"
    src.write_text(EXIT_ONLY.replace("global _start\n", ""))
    err = trace_cli("record", str(src), "-o", str(tmp_path / "t")).stderr.decode()
    line = next(x for x in err.splitlines() if "entry symbol" in x)
    assert line.startswith("ld: warning: cannot find entry symbol _start")
    assert "nasm:" not in line and "global _start" in line


def test_counts_of_one_are_singular(tmp_path):
    src = tmp_path / "exit.asm"
    src.write_text(EXIT_ONLY)
    err = trace_cli("record", str(src), "-o", str(tmp_path / "t")).stderr.decode()
    assert "(3 instructions, 0 memory accesses)" in err
    out = trace_cli("record", str(EXAMPLES / "hello.asm"), "-o", str(tmp_path / "h")
                    ).stderr.decode()
    assert "1 memory access)" in out and "1 memory accesses" not in out
    verified = trace_cli("replay", str(tmp_path / "t"), "--verify").stdout.decode()
    assert "1 syscall)" in verified and "1 syscalls" not in verified


def test_piped_output_never_wraps(tmp_path):
    deep = tmp_path / ("a-rather-long-directory-name-" * 3) / "brk_tutorial"
    err = trace_cli("record", str(EXAMPLES / "brk_tutorial.asm"), "-o", str(deep)
                    ).stderr.decode()
    nxt = next(x for x in err.splitlines() if x.startswith("next:"))
    assert f"trace info {deep}" in nxt and f"trace report {deep} --open" in nxt
    assert "warning: byte data exceeds bounds [-w+number-overflow]" in err  # one line
    out = trace_cli("info", str(deep)).stdout.decode()
    assert any(x.startswith("max stack depth:") and x.endswith("put there by Linux)")
               for x in out.splitlines())


def test_help_shows_no_bool_and_useful_metavars():
    for command in ("info", "record", "report", "stack"):
        text = trace_cli(command, "--help", check=False).stdout.decode()
        assert "<bool>" not in text, command
    record_help = trace_cli("record", "--help").stdout.decode()
    assert "KEY=VALUE" in record_help and "SIZE" in record_help


def test_syscall_arguments_are_named_and_decoded(tmp_path):
    trace = tmp_path / "m"
    trace_cli("record", str(EXAMPLES / "mmap_munmap.asm"), "-o", str(trace), "-q")
    out = trace_cli("info", str(trace)).stdout.decode()
    assert "prot=PROT_READ|PROT_WRITE, flags=MAP_PRIVATE|MAP_ANONYMOUS, fd=-1, offset=0" in out
    hello = tmp_path / "h"
    trace_cli("record", str(EXAMPLES / "hello.asm"), "-o", str(hello), "-q")
    out = trace_cli("info", str(hello)).stdout.decode()
    assert "fd=1 (stdout), buf=0x" in out and "count=14" in out
    assert "status=0" in out and "0x0, 0x0" not in out  # no leftover registers
    html = tmp_path / "h.html"
    trace_cli("report", str(hello), "-o", str(html))
    assert "fd=1 (stdout)" in html.read_text()


def test_piped_stdin_without_stdin_option_is_mentioned(tmp_path):
    err = trace_cli("record", str(EXAMPLES / "hello.asm"), "-o", str(tmp_path / "t"),
                    stdin=b"some input").stderr.decode()
    assert "add --stdin - to give it" in err
    err = trace_cli("record", str(EXAMPLES / "hello.asm"), "-o", str(tmp_path / "t"),
                    "--stdin", "-", stdin=b"some input").stderr.decode()
    assert "--stdin -" not in err


def test_open_without_a_browser_says_why_and_where(tmp_path):
    import subprocess

    trace = tmp_path / "t"
    trace_cli("record", str(EXAMPLES / "hello.asm"), "-o", str(trace), "-q")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    env["PATH"] = str(tmp_path / "nothing-here")
    done = subprocess.run([*TRACE, "report", str(trace), "-o", str(tmp_path / "r.html"),
                           "--open"], capture_output=True, cwd=ROOT, env=env, timeout=300)
    err = done.stderr.decode()
    assert done.returncode == 0
    assert "could not open a browser: no web browser was found" in err
    assert str((tmp_path / "r.html").resolve()) in err


def test_quiet_prints_errors_only(tmp_path):
    done = trace_cli("record", str(EXAMPLES / "brk_tutorial.asm"), "-o", str(tmp_path / "t"),
                     "-q", stdin=b"piped")
    assert done.stdout == b"" and done.stderr == b""
    hello = trace_cli("record", str(EXAMPLES / "hello.asm"), "-o", str(tmp_path / "h"), "-q")
    assert hello.stdout == b"" and hello.stderr == b""
    bad = trace_cli("record", str(tmp_path / "missing.asm"), "-q", check=False)
    assert bad.returncode == 2 and b"error:" in bad.stderr
