"""The build tools run in a file-system sandbox (tracer/sandbox.py): an .asm source can
`incbin` or `%include` only files under its own directory and --include directories, however
it names them, and vmtrace refuses to build when the sandbox is unavailable."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import EXAMPLES, TRACE, build_native, trace_cli
from oracles import read_table

TOKEN = b"VMTRACE-SECRET-7f3a9c"

# Writes the bytes between `secret` and `secret_end` to stdout, then exits 0.
PROGRAM = """\
section .data
secret:
{data}
secret_end:
section .text
global _start
_start:
    mov eax, 1
    mov edi, 1
    lea rsi, [rel secret]
    mov edx, secret_end - secret
    syscall
    mov eax, 60
    xor edi, edi
    syscall
"""


@pytest.fixture
def layout(tmp_path) -> dict[str, Path]:
    """tmp/src/ holds the program; tmp/secret/s.inc is a host file outside it (valid NASM,
    so that both incbin and %include would carry TOKEN into the program)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "secret").mkdir()
    secret = tmp_path / "secret" / "s.inc"
    secret.write_bytes(b'db "' + TOKEN + b'", 10\n')
    return {"root": tmp_path, "src": tmp_path / "src", "secret": secret}


def _nowhere_but_in_the_secret(root: Path, secret: Path, *streams: bytes) -> None:
    for stream in streams:
        assert TOKEN not in stream
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path != secret and not path.is_symlink():
                assert TOKEN not in path.read_bytes(), path


def _half(path: Path) -> tuple[str, str]:
    text = str(path)
    return text[:len(text) // 2], text[len(text) // 2:]


# data line, the working directory to record from, and links to make in src/
ESCAPES = {
    "incbin-absolute": (lambda s: f'incbin "{s}"', "src", {}),
    "include-absolute": (lambda s: f'%include "{s}"', "src", {}),
    "incbin-dotdot": (lambda s: 'incbin "../secret/s.inc"', "src", {}),
    "include-dotdot": (lambda s: '%include "../secret/s.inc"', "src", {}),
    "include-dotdot-from-elsewhere": (lambda s: '%include "../secret/s.inc"', "root", {}),
    "incbin-relative-to-the-working-directory": (lambda s: 'incbin "secret/s.inc"', "root", {}),
    "incbin-strcat": (lambda s: '%strcat P "{}", "{}"\nincbin P'.format(*_half(s)), "src", {}),
    "include-strcat": (lambda s: '%strcat P "{}", "{}"\n%include P'.format(*_half(s)), "src",
                       {}),
    "incbin-defstr": (lambda s: f"%defstr P {s}\nincbin P", "src", {}),
    "incbin-symlink-to-file": (lambda s: 'incbin "link"', "src", {"link": "secret"}),
    "include-symlink-to-dir": (lambda s: '%include "dir/s.inc"', "src", {"dir": "../secret"}),
    "incbin-etc-passwd": (lambda s: 'incbin "/etc/passwd"', "src", {}),
}


@pytest.mark.parametrize("name", ESCAPES)
def test_a_source_cannot_read_host_files_outside_its_directory(layout, name):
    data, cwd, links = ESCAPES[name]
    secret = layout["secret"]
    for link, target in links.items():
        (layout["src"] / link).symlink_to(secret if target == "secret" else target)
    source = layout["src"] / "prog.asm"
    source.write_text(PROGRAM.format(data=data(secret)))
    out = layout["root"] / "trace"
    done = trace_cli("record", str(source), "-o", str(out), check=False, cwd=layout[cwd])
    err = done.stderr.decode()
    assert done.returncode != 0 and "Traceback" not in err
    assert f"{source}:" in err and (": error: " in err or ": fatal: " in err)
    assert err.rstrip().endswith("note: the build can read only the source's directory and "
                                 "--include directories (docs/security.md)")
    assert not out.exists()
    passwd = Path("/etc/passwd").read_bytes()[:32]
    assert passwd not in done.stdout and passwd not in done.stderr
    _nowhere_but_in_the_secret(layout["root"], secret, done.stdout, done.stderr)


def test_include_directories_and_the_source_directory_are_readable(layout):
    inc = layout["root"] / "inc"
    inc.mkdir()
    (inc / "greeting.inc").write_text('db "hello from --include", 10\n')
    (layout["src"] / "local.inc").write_text('db "hello from beside the source", 10\n')
    (layout["src"] / "data.bin").write_bytes(b"raw bytes\n")
    source = layout["src"] / "prog.asm"
    source.write_text(PROGRAM.format(
        data='%include "greeting.inc"\n%include "local.inc"\nincbin "data.bin"'))
    out = layout["root"] / "trace"
    # From the source's directory (relative paths, as nasm resolves them) and from elsewhere
    # (the source's directory is searched too).
    for cwd in (layout["src"], layout["root"]):
        done = trace_cli("record", os.path.relpath(source, cwd), "-o", str(out), "--include",
                         os.path.relpath(inc, cwd), cwd=cwd)
        expected = b"hello from --include\nhello from beside the source\nraw bytes\n"
        assert done.stdout == expected
        assert b"".join(read_table(out, "output").column("data").to_pylist()) == expected
    # Without --include the same source does not build, and says why.
    done = trace_cli("record", str(source), "-o", str(out), check=False)
    assert "prog.asm:3: error: unable to open include file `greeting.inc'" in \
        done.stderr.decode()
    assert "note: the build can read only" in done.stderr.decode()


def test_a_missing_include_directory_is_one_sentence(layout):
    source = layout["src"] / "prog.asm"
    source.write_text(PROGRAM.format(data='db "x"'))
    done = trace_cli("record", str(source), "--include", str(layout["root"] / "nope"),
                     check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr.decode()
    assert done.stderr.decode().strip() == f"error: --include {layout['root'] / 'nope'}: no " \
                                           "such directory"


def test_diagnostics_keep_the_path_as_the_user_typed_it(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.asm").write_text(
        "section .text\nglobal _start\n_start:\n    mov rax, [\n")
    (tmp_path / "sub" / "warns.asm").write_text(
        "section .text\nglobal _start\n_start:\n    mov al, 300\n    mov eax, 60\n"
        "    xor edi, edi\n    syscall\n")
    done = trace_cli("record", "sub/broken.asm", check=False, cwd=tmp_path)
    assert done.stderr.decode() == "error: sub/broken.asm:4: error: expression syntax error\n"
    done = trace_cli("record", "sub/warns.asm", "--no-echo", cwd=tmp_path)
    assert "nasm: sub/warns.asm:4: warning: byte data exceeds bounds" in done.stderr.decode()


def test_a_symlinked_source_builds(layout):
    real = layout["root"] / "real"
    real.mkdir()
    (real / "prog.asm").write_text(PROGRAM.format(data='db "linked", 10'))
    (layout["src"] / "prog.asm").symlink_to(real / "prog.asm")
    done = trace_cli("record", str(layout["src"] / "prog.asm"), "-o",
                     str(layout["root"] / "t"))
    assert done.stdout == b"linked\n"


# -- no sandbox, no build --------------------------------------------------------------------
def _path_with(tmp_path: Path, bwrap: str | None) -> dict[str, str]:
    """An environment whose PATH has nasm, ld and true, and `bwrap` as given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("nasm", "ld", "true"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    if bwrap is not None:
        (bin_dir / "bwrap").write_text(bwrap)
        (bin_dir / "bwrap").chmod(0o755)
    return {**os.environ, "PATH": str(bin_dir)}


def _record_with(env: dict[str, str], program: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*TRACE, "record", str(program), "-o", str(out), "--no-echo"],
                          capture_output=True, env=env, timeout=120)


def test_without_bubblewrap_nothing_is_built(tmp_path):
    env = _path_with(tmp_path, bwrap=None)
    done = _record_with(env, EXAMPLES / "hello.asm", tmp_path / "t")
    assert done.returncode != 0
    assert done.stderr.decode().strip() == (
        "error: vmtrace builds programs only inside a sandbox, and bubblewrap (`bwrap`) is "
        "not installed; install it with `sudo apt-get install bubblewrap` (`make setup` "
        "does this for you)")
    assert not (tmp_path / "t").exists()
    # A ready ELF is not built, so it needs no sandbox.
    exe = build_native(EXAMPLES / "hello.asm", tmp_path)
    done = _record_with(env, exe, tmp_path / "t")
    assert done.returncode == 0, done.stderr.decode()
    assert b"trace written to" in done.stderr


def test_a_bubblewrap_that_does_not_work_builds_nothing(tmp_path):
    env = _path_with(tmp_path, bwrap="#!/bin/sh\necho 'bwrap: No permissions to create new "
                                     "namespace' >&2\nexit 1\n")
    done = _record_with(env, EXAMPLES / "hello.asm", tmp_path / "t")
    err = done.stderr.decode()
    assert done.returncode != 0 and len(err.strip().splitlines()) == 1
    assert "bubblewrap does not work here (No permissions to create new namespace)" in err
    assert not (tmp_path / "t").exists()


# -- the sandbox itself ----------------------------------------------------------------------
def test_the_sandbox_reads_writes_and_connects_only_where_it_may(tmp_path):
    from tracer import sandbox

    readable, writable, outside = (tmp_path / n for n in ("readable", "writable", "outside"))
    for d in (readable, writable, outside):
        d.mkdir()
    (readable / "in.txt").write_text("in\n")
    (outside / "secret.txt").write_text("secret\n")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    bash = shutil.which("bash")

    def run(script: str) -> subprocess.CompletedProcess:
        return sandbox.run([bash, "-c", script], read_only=[readable], writable=writable)

    try:
        assert run(f"cat {readable}/in.txt").stdout == "in\n"
        for path in (outside / "secret.txt", "/etc/passwd", "/etc/hostname", "/root",
                     "/home", "/proc/self/environ", "/dev/null"):
            assert run(f"cat {path}").returncode != 0, path
        assert run(f"echo x > {writable}/out.txt").returncode == 0
        assert (writable / "out.txt").read_text() == "x\n"
        for path in (readable / "w.txt", outside / "w.txt", Path("/w.txt")):
            assert run(f"echo x > {path}").returncode != 0, path
        assert not (readable / "w.txt").exists() and not (outside / "w.txt").exists()
        # The host's loopback is another network: the listener here is out of reach.
        assert run(f"echo x > /dev/tcp/127.0.0.1/{port}").returncode != 0
        assert run("echo $HOME $USER").stdout.strip() == ""
    finally:
        listener.close()


def test_a_build_survives_setenv_in_another_thread(tmp_path):
    # `trace record` builds on a thread while pyarrow's import calls setenv; the tool's exec
    # must not read the C library's `environ` meanwhile (it failed with EFAULT, "Bad
    # address", about one recording in a hundred).
    import threading

    from tracer import sandbox

    errors: list[BaseException] = []
    done = threading.Event()

    def build() -> None:
        try:
            for _ in range(100):
                sandbox.run(["/usr/bin/true"], read_only=[], writable=tmp_path)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=build)
    thread.start()
    n = 0
    while not done.is_set():
        os.putenv(f"VMTRACE_SETENV_{n % 50}", "x" * 100)  # the C library's setenv
        n += 1
        if n % 50 == 0:
            for k in range(50):
                os.unsetenv(f"VMTRACE_SETENV_{k}")
    thread.join()
    assert not errors, errors[0]
