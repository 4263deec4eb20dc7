"""Shared fixtures: paths, building programs with the real nasm/ld, running them natively
and recording them through the real `trace` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PROGRAMS = Path(__file__).resolve().parent / "programs"
TRACE = [sys.executable, "-m", "vmtrace.cli"]


@dataclass(frozen=True)
class NativeRun:
    stdout: bytes
    returncode: int  # negative: killed by that signal


def build_native(source: Path, workdir: Path, libc: str | None = None) -> Path:
    obj = workdir / (source.stem + ".o")
    exe = workdir / source.stem
    if source.suffix == ".c":
        # What `trace record prog.c` runs (from ROOT, the CLI's working directory in the
        # tests, with the same source path): gcc's output is then the same bytes.
        compiler = "musl-gcc" if libc == "musl" else "gcc"
        subprocess.run([compiler, "-static", "-g", "-O0", "-o", str(exe), str(source)],
                       check=True, capture_output=True, cwd=ROOT)
        return exe
    subprocess.run(["nasm", "-f", "elf64", "-g", "-F", "dwarf", str(source), "-o", str(obj)],
                   check=True, capture_output=True)
    subprocess.run(["ld", "-o", str(exe), str(obj)], check=True, capture_output=True)
    return exe


def run_native(exe: Path, stdin: bytes = b"", args: tuple[str, ...] = ()) -> NativeRun:
    # setarch -R: ASLR off, the fixed layout our emulator reproduces.
    done = subprocess.run(["setarch", "-R", str(exe), *args], input=stdin,
                          capture_output=True, timeout=60)
    return NativeRun(done.stdout, done.returncode)


def trace_cli(*args: str, stdin: bytes | None = None, check: bool = True,
              cwd: Path | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([*TRACE, *args], input=stdin, capture_output=True,
                          cwd=cwd or ROOT, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"trace {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout.decode()}\n{done.stderr.decode()}")
    return done


def record(program: Path, out: Path, *extra: str, stdin: bytes | None = None) -> dict:
    """Records through the CLI and returns `trace info --json`."""
    trace_cli("record", str(program), "-o", str(out), "--no-echo", *extra, stdin=stdin)
    return json.loads(trace_cli("info", str(out), "--json").stdout)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
