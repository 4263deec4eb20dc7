"""The syscall layer end to end: host files only under --allow-read (and never opened
otherwise, checked with strace on the recorder itself), stdin from a file or from ours, and
the kernel side of read/write recorded as one access of the bytes moved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cases import all_cases, prepare  # noqa: F401  (prepare is a fixture)
from conftest import ROOT, TRACE, record, trace_cli
from oracles import read_table

OPEN_FILE = next(c for c in all_cases() if c.source.stem == "open_file").source
EACCES, ENOENT = 13, 2


@pytest.fixture
def host_files(tmp_path) -> dict[str, Path]:
    """A secret outside the allowed directory, a readable file inside it, and two ways out
    of it (a symlink and a '..' path)."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret\n")
    readable = allowed / "readable.txt"
    readable.write_bytes(b"you may read this\n")
    link = allowed / "link-to-secret"
    link.symlink_to(secret)
    return {"allowed": allowed, "secret": secret, "readable": readable, "link": link,
            "dotdot": allowed / ".." / "secret.txt"}


def _opened_paths(strace_log: Path) -> str:
    return "\n".join(line for line in strace_log.read_text().splitlines()
                     if "open" in line.split("(")[0])


def test_without_allow_read_a_guest_gets_eacces_and_the_host_file_is_never_opened(
        tmp_path, host_files):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    log = tmp_path / "record.strace"
    out = tmp_path / "t"
    done = subprocess.run(
        ["strace", "-f", "-e", "trace=open,openat,openat2", "-o", str(log), *TRACE, "record",
         str(OPEN_FILE), "-o", str(out), "--no-echo", "--", str(host_files["secret"])],
        capture_output=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    info = json.loads(trace_cli("info", str(out), "--json").stdout)
    assert info["exit"]["code"] == EACCES
    assert info["syscalls"][0]["name"] == "open" and info["syscalls"][0]["ret"] == -EACCES
    opened = _opened_paths(log)
    assert "open_file.asm" in opened  # strace saw the recorder's own opens
    assert str(host_files["secret"]) not in opened


def test_etc_passwd_is_refused_by_default(tmp_path):
    info = record(OPEN_FILE, tmp_path / "t", "--", "/etc/passwd")
    assert info["exit"]["code"] == EACCES
    assert info["stdout"] == ""


def test_a_file_outside_the_allowed_directory_is_refused(tmp_path, host_files):
    info = record(OPEN_FILE, tmp_path / "t", "--allow-read", str(host_files["allowed"]),
                  "--", str(host_files["secret"]))
    assert info["exit"]["code"] == EACCES


def test_a_file_inside_the_allowed_directory_is_read(tmp_path, host_files):
    info = record(OPEN_FILE, tmp_path / "t", "--allow-read", str(host_files["allowed"]),
                  "--", str(host_files["readable"]))
    assert info["exit"]["code"] == 0
    assert info["stdout"] == "you may read this\n"
    assert [s["name"] for s in info["syscalls"]] == ["open", "read", "write", "close", "exit"]
    writes = read_table(tmp_path / "t", "kernel_writes")["data"].to_pylist()
    assert b"you may read this\n" in writes  # the file's bytes are an input of the run


@pytest.mark.parametrize("way_out", ["link", "dotdot"])
def test_no_way_out_of_the_allowed_directory(tmp_path, host_files, way_out):
    info = record(OPEN_FILE, tmp_path / "t", "--allow-read", str(host_files["allowed"]),
                  "--", str(host_files[way_out]))
    assert info["exit"]["code"] == EACCES


def test_a_missing_file_in_the_allowed_directory_is_enoent(tmp_path, host_files):
    info = record(OPEN_FILE, tmp_path / "t", "--allow-read", str(host_files["allowed"]),
                  "--", str(host_files["allowed"] / "nothing-here"))
    assert info["exit"]["code"] == ENOENT


def test_stdin_from_our_own_stdin(tmp_path):
    program = next(c for c in all_cases() if c.source.stem == "read_stdin").source
    data = bytes(range(256)) * 3
    done = trace_cli("record", str(program), "-o", str(tmp_path / "t"), "--no-echo", "--stdin", "-",
                     stdin=data)
    assert done.returncode == 0
    output = read_table(tmp_path / "t", "output")
    assert b"".join(output["data"].to_pylist()) == data
    info = json.loads(trace_cli("info", str(tmp_path / "t"), "--json").stdout)
    assert info["exit"]["code"] == len(data) % 256
    inputs = read_table(tmp_path / "t", "inputs").to_pylist()
    assert inputs == [{"name": "stdin", "data": data}]


def test_without_stdin_a_read_gets_end_of_file(tmp_path):
    program = next(c for c in all_cases() if c.source.stem == "read_stdin").source
    info = record(program, tmp_path / "t")
    assert info["exit"]["code"] == 0
    assert [(s["name"], s["ret"]) for s in info["syscalls"]] == [("read", 0), ("exit", None)]


def test_kernel_side_of_read_and_write_is_one_access_of_the_bytes_moved(prepare):
    run = prepare(next(c for c in all_cases() if c.source.stem == "read_stdin"))
    table = read_table(run.trace, "accesses").to_pylist()
    kernel = [(r["is_write"], r["size"]) for r in table if r["source"] == "kernel"]
    stdin = run.case.stdin
    chunks = [len(stdin[i:i + 64]) for i in range(0, len(stdin), 64)]
    # read writes its buffer (bytes delivered), write reads it back (bytes written)
    expected = [kind for n in chunks for kind in ((True, n), (False, n))]
    assert kernel == expected
    assert run.info["accesses"]["by_source"]["kernel"] == {"read": len(chunks),
                                                          "write": len(chunks)}


def test_registers_after_a_syscall_are_what_linux_leaves(prepare):
    run = prepare(next(c for c in all_cases() if c.source.stem == "syscall_regs"))
    assert run.info["stdout"] == "crp" == run.native.stdout.decode()
    assert run.info["exit"]["code"] == 0


def test_environment_can_be_replaced(tmp_path):
    program = next(c for c in all_cases() if c.source.stem == "argv_env").source
    info = record(program, tmp_path / "t", "--env", "ONLY=this", "--", "a")
    assert info["stdout"] == "2\n./argv_env\na\nONLY=this\n"
    assert json.loads((tmp_path / "t" / "meta.json").read_text())["env"] == ["ONLY=this"]


def test_no_host_environment_leaks_into_the_guest(tmp_path):
    program = next(c for c in all_cases() if c.source.stem == "argv_env").source
    out = tmp_path / "t"
    done = subprocess.run([*TRACE, "record", str(program), "-o", str(out), "--no-echo"],
                          capture_output=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "VMTRACE_LEAK_CHECK": "leaked"})
    assert done.returncode == 0
    info = json.loads(trace_cli("info", str(out), "--json").stdout)
    assert "leaked" not in info["stdout"]


# -- what --allow-read opens: regular files, read-only ---------------------------------------
LIMITS = ROOT / "tests" / "programs" / "limits"
ENXIO, EROFS, EEXIST, ECONNREFUSED = 6, 30, 17, 111


def test_a_fifo_under_an_allowed_directory_is_refused_without_blocking(tmp_path, host_files):
    fifo = host_files["allowed"] / "pipe"
    os.mkfifo(fifo)  # no writer: an open(O_RDONLY) of it would wait forever
    done = subprocess.run([*TRACE, "record", str(OPEN_FILE), "-o", str(tmp_path / "t"), "--no-echo",
                           "--allow-read", str(host_files["allowed"]), "--", str(fifo)],
                          capture_output=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    info = json.loads(trace_cli("info", str(tmp_path / "t"), "--json").stdout)
    assert info["exit"]["code"] == EACCES


def test_a_device_under_an_allowed_directory_is_refused(tmp_path):
    info = record(OPEN_FILE, tmp_path / "t", "--allow-read", "/dev", "--", "/dev/null")
    assert info["exit"]["code"] == EACCES


def _native_exit(source: Path, workdir: Path, *args: str) -> int:
    from conftest import build_native

    exe = build_native(source, workdir)
    return subprocess.run([str(exe), *args], capture_output=True, timeout=60).returncode


@pytest.fixture
def unix_socket(host_files):
    """A Unix socket bound in the allowed directory (nobody listens on it yet)."""
    import socket

    path = host_files["allowed"] / "s.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    yield server, path
    server.close()


def test_open_of_an_allowed_unix_socket_is_enxio_as_on_linux(tmp_path, host_files,
                                                             unix_socket):
    _, path = unix_socket
    native = _native_exit(OPEN_FILE, tmp_path, str(path))
    assert native == ENXIO
    info = record(OPEN_FILE, tmp_path / "t", "--allow-read", str(host_files["allowed"]),
                  "--", str(path))
    assert info["exit"]["code"] == native


def test_connect_to_an_allowed_unix_socket_is_refused_as_on_linux(tmp_path, host_files,
                                                                 unix_socket):
    program = LIMITS / "unix_connect.asm"
    server, path = unix_socket
    allow = ("--allow-read", str(host_files["allowed"]))
    # nobody listening: Linux refuses the connection, and so does vmtrace
    native = _native_exit(program, tmp_path, str(path))
    assert native == ECONNREFUSED
    assert record(program, tmp_path / "t", *allow, "--", str(path))["exit"]["code"] == native
    # a missing socket: ENOENT on both
    missing = str(path.with_name("nothing.sock"))
    assert _native_exit(program, tmp_path, missing) == ENOENT
    assert record(program, tmp_path / "t", *allow, "--", missing)["exit"]["code"] == ENOENT
    # someone listening on the host: the emulated process still cannot reach it
    server.listen()
    server.settimeout(0.5)
    info = record(program, tmp_path / "t", *allow, "--", str(path))
    assert info["exit"]["code"] == ECONNREFUSED
    with pytest.raises(TimeoutError):
        server.accept()
    # outside the allowed directories: as any path there
    info = record(program, tmp_path / "t", "--", str(path))
    assert info["exit"]["code"] == EACCES


def test_open_that_would_write_an_allowed_file_is_erofs_and_the_file_is_untouched(
        tmp_path, host_files):
    readable, missing = host_files["readable"], host_files["allowed"] / "new.txt"
    before = readable.stat()
    out = tmp_path / "t"
    record(LIMITS / "open_modes.asm", out, "--allow-read", str(host_files["allowed"]),
           "--", str(readable), str(missing))
    data = b"".join(read_table(out, "output")["data"].to_pylist())
    results = [int.from_bytes(data[i:i + 8], "little", signed=True)
               for i in range(0, len(data), 8)]
    # O_RDONLY|O_TRUNC, O_WRONLY, O_RDWR, O_CREAT (exists: opened read-only),
    # O_CREAT|O_EXCL, O_CREAT|O_WRONLY of a missing file: as on a read-only mount
    assert results == [-EROFS, -EROFS, -EROFS, 3, -EEXIST, -EROFS]
    assert readable.read_bytes() == b"you may read this\n"
    after = readable.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert not missing.exists()


def test_syscall_numbers_with_high_bits_replay_exactly(prepare):
    run = prepare(next(c for c in all_cases() if c.source.stem == "syscall_numbers"))
    names = [s["name"] for s in run.info["syscalls"]]
    assert names[:3] == ["syscall_-1", "write", "read"]  # 0x100000000 is read
    done = trace_cli("replay", str(run.trace), "--verify")
    assert b"replay reproduces the trace exactly" in done.stdout
