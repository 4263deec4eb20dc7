"""Every program the differential and lackey tests run (examples/*.asm, tests/programs/*.asm),
how each is run (arguments, stdin, host files), and one cache per test session so that each
program is built, recorded and run natively once per worker however many tests look at it."""

from __future__ import annotations

import fcntl
import hashlib
import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import EXAMPLES, PROGRAMS, build_native, trace_cli
from oracles import (
    DataAccesses, NativeRun, gdb_rsp_changes, lackey, run_native, strace_native,
)


@dataclass(frozen=True)
class Case:
    source: Path
    args: tuple[str, ...] = ()
    stdin: bytes = b""
    # Files created in the case's data directory, which is passed to --allow-read; "{data}"
    # in an argument is replaced by that directory.
    files: tuple[tuple[str, bytes], ...] = ()
    # stdout that depends on the host (checked by a dedicated test instead).
    stdout_checked_elsewhere: str | None = None
    # Known, reported differences from Linux: (test kind, reason) pairs; the tests of that
    # kind ("ending", "syscalls", "lackey", "gdb") are strict xfails for this program.
    known_differences: tuple[tuple[str, str], ...] = ()
    # C sources: the libc they are compiled against (`trace record --libc`).
    libc: str | None = None

    @property
    def id(self) -> str:
        suffix = f"-{self.libc}" if self.libc else ""
        return f"{self.source.parent.name}/{self.source.stem}{suffix}"

    @property
    def record_options(self) -> tuple[str, ...]:
        return ("--libc", self.libc) if self.libc else ()


_SPECIAL = {
    "read_stdin": Case(PROGRAMS / "read_stdin.asm", stdin=b"line one\n" * 20 + b"no newline"),
    "argv_env": Case(PROGRAMS / "argv_env.asm", args=("first arg", "-x", "")),
    "open_file": Case(PROGRAMS / "open_file.asm", args=("{data}/greeting.txt",),
                      files=(("greeting.txt", b"hello from a host file\n"),)),
    "iovec": Case(PROGRAMS / "iovec.asm", stdin=b"helloworld, scattered\n"),
    "file_ops": Case(PROGRAMS / "file_ops.asm", args=("{data}/numbers.txt",),
                     files=(("numbers.txt", b"0123456789 and the rest of the file\n"),)),
    "stack_dump": Case(PROGRAMS / "stack_dump.asm", args=("a1", "bb2"),
                       stdout_checked_elsewhere="auxv values (AT_HWCAP, AT_UID, AT_RANDOM "
                       "bytes) are host-specific: tests/test_loader.py compares the dump "
                       "field by field"),
}


C_PROGRAMS = PROGRAMS / "c"
LIBCS = ("glibc", "musl")
_SPECIAL_C = {
    "read_stdin": {"stdin": b"first line\nsecond, longer line\n" * 40 + b"no newline"},
    "argv": {"args": ("first arg", "-x", "")},
}


def c_cases() -> list[Case]:
    """The C programs of tests/programs/c, each compiled against both libcs."""
    return [Case(s, libc=libc, **_SPECIAL_C.get(s.stem, {}))
            for s in sorted(C_PROGRAMS.glob("*.c")) for libc in LIBCS]


def all_cases() -> list[Case]:
    sources = sorted(EXAMPLES.glob("*.asm")) + sorted(PROGRAMS.glob("*.asm"))
    return [_SPECIAL.get(s.stem, Case(s)) if s.parent == PROGRAMS else Case(s)
            for s in sources] + c_cases()


def case_params(kind: str) -> list:
    """Every case as a pytest parameter, a strict xfail where it differs for `kind`."""
    out = []
    for case in all_cases():
        if kind == "lackey" and case.libc == "glibc":
            # Valgrind reports another CPU (AVX2, ...) than the emulator's CPUID, and
            # glibc picks its string functions by CPUID at start-up: the instructions
            # differ by design. musl does not look at CPUID.
            continue
        marks = [pytest.mark.xfail(strict=True, reason=reason)
                 for k, reason in case.known_differences if k == kind]
        if case.libc == "musl" and shutil.which("musl-gcc") is None:
            marks.append(pytest.mark.skip(reason="musl-gcc is not installed (musl-tools)"))
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


@dataclass
class Prepared:
    """One case built, with its recording and native runs, each made on first use and kept
    on disk so that the other xdist worker reuses it instead of redoing it."""

    case: Case
    workdir: Path
    exe: Path
    args: tuple[str, ...]
    data: Path

    def _once(self, key: str, make):
        done = self.workdir / f"{key}.pickle"
        with open(self.workdir / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                tmp = done.with_suffix(".tmp")
                tmp.write_bytes(pickle.dumps(make()))
                tmp.replace(done)
            return pickle.loads(done.read_bytes())

    @property
    def trace(self) -> Path:
        def make() -> Path:
            out = self.workdir / "trace"
            extra = ["--allow-read", str(self.data)] if self.case.files else []
            if self.case.stdin:
                stdin_file = self.workdir / "stdin.bin"
                stdin_file.write_bytes(self.case.stdin)
                extra += ["--stdin", str(stdin_file)]
            trace_cli("record", str(self.case.source), "-o", str(out), "--no-echo", *extra,
                      *self.case.record_options,
                      *(["--", *self.args] if self.args else []))
            return out
        return self._once("trace", make)

    @property
    def info(self) -> dict:
        return self._once("info", lambda: json.loads(
            trace_cli("info", str(self.trace), "--json").stdout))

    @property
    def meta(self) -> dict:
        return json.loads((self.trace / "meta.json").read_text())

    @property
    def native(self) -> NativeRun:
        return self._once("native", lambda: run_native(self.exe, self.args, self.case.stdin))

    @property
    def strace(self) -> NativeRun:
        return self._once("strace", lambda: strace_native(self.exe, self.workdir, self.args,
                                                          self.case.stdin))

    @property
    def lackey(self) -> DataAccesses:
        return self._once("lackey", lambda: lackey(self.exe, self.workdir, self.args,
                                                   self.case.stdin))

    @property
    def gdb_rsp(self) -> list[tuple[int, int]]:
        return self._once("gdb_rsp", lambda: gdb_rsp_changes(self.exe, self.workdir,
                                                             self.args))

    @property
    def exe_sha256(self) -> str:
        return hashlib.sha256(self.exe.read_bytes()).hexdigest()


class Prepare:
    """Builds each case once per test run, in a directory both xdist workers share."""

    def __init__(self, root: Path):
        self._root = root

    def __call__(self, case: Case) -> Prepared:
        workdir = self._root / case.id.replace("/", "-")
        data = workdir / "data"
        exe = workdir / case.source.stem
        args = tuple(a.replace("{data}", str(data)) for a in case.args)
        workdir.mkdir(parents=True, exist_ok=True)
        with open(workdir / "build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not exe.exists():
                data.mkdir(exist_ok=True)
                for name, content in case.files:
                    (data / name).write_bytes(content)
                build_dir = workdir / "build"
                build_dir.mkdir(exist_ok=True)
                build_native(case.source, build_dir, case.libc).replace(exe)
        return Prepared(case, workdir, exe, args, data)


@pytest.fixture(scope="session")
def prepare(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Prepare:
    """Builds and records each case once per test run, shared by the xdist workers."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / "vmtrace-cases"
    root.mkdir(exist_ok=True)
    return Prepare(root)
