"""Turns a C source into a static ELF with the system compiler: `gcc -static -g -O0` (glibc)
or `musl-gcc -static -g -O0` (musl), run in the build sandbox (tracer/sandbox.py) like nasm:
it reads the source's directory, the --include directories and the toolchain, and writes
only the build directory."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from tracer import sandbox
from tracer.build import BuiltProgram, check_build_inputs
from tracer.errors import AssembleError

C_SUFFIXES = (".c",)
LIBCS = {"glibc": ("gcc", "gcc"), "musl": ("musl-gcc", "musl-tools")}  # compiler, package
BASE_FLAGS = ("-static", "-g", "-O0")
# gcc's `file:line:col: kind: message` (the column is optional, e.g. for the linker).
_DIAGNOSTIC = re.compile(r"^(?P<file>[^:\s][^:]*):(?P<line>\d+):(?:\d+:)? "
                         r"(?P<kind>error|warning|fatal error|note):")
_WHAT_IS_READABLE = ("note: the build can read only the source's directory, --include "
                     "directories and the system headers and libraries (docs/security.md)")


class CompileError(AssembleError):
    """gcc or musl-gcc rejected the program (message in file:line form)."""


def compile_command(source: Path, exe: Path, libc: str = "glibc",
                    cc_flags: Sequence[str] = (), include: Sequence[Path] = ()) -> list[str]:
    """The compiler's argv (the compiler by name; it is looked up on PATH to run it)."""
    if libc not in LIBCS:
        raise CompileError(f"--libc {libc}: choose one of {', '.join(LIBCS)}")
    search = [arg for d in include for arg in ("-I", str(d))]
    return [LIBCS[libc][0], *BASE_FLAGS, *cc_flags, *search, "-o", str(exe), str(source)]


def compile_c(source: Path, workdir: Path, libc: str = "glibc", cc_flags: Sequence[str] = (),
              include: Sequence[Path] = (),
              started: Callable[[subprocess.Popen], None] | None = None) -> BuiltProgram:
    """Compiles and links `source` statically, sandboxed.

    Args:
        source: the .c file.
        workdir: where the executable is written (the compiler's only writable directory).
        libc: "glibc" (gcc) or "musl" (musl-gcc).
        cc_flags: further compiler flags, after the base ones (so they can override -O0).
        include: further directories the source may #include from (gcc's -I).
        started: told the compiler's running sandbox process (sandbox.run).

    Returns:
        The executable, the compiler's warnings as `file:line:col: warning: message`, and
        the command that was run.

    Raises:
        CompileError: the compiler is missing or failed; the message lists its diagnostics.
        ProgramError: the source file does not exist.
        SandboxError: the build sandbox is unavailable (nothing is built without it).
    """
    check_build_inputs(source, include, CompileError)
    exe = workdir / source.stem
    argv = compile_command(source, exe, libc, cc_flags, include)
    compiler = shutil.which(argv[0])
    if compiler is None:
        raise CompileError(f"`{argv[0]}` is not installed; install it with "
                           f"`sudo apt-get install {LIBCS[libc][1]}`")
    readable = [Path(os.path.abspath(source)).parent, Path(os.path.realpath(source)).parent,
                *include]
    done = sandbox.run([compiler, *argv[1:]], read_only=readable, writable=workdir,
                       started=started)
    # gcc's source excerpts, carets and "In function" headers are left out: the file:line
    # lines say it all. The linker's messages (no line number) are kept.
    messages = [line.rstrip() for line in done.stderr.splitlines()
                if _DIAGNOSTIC.match(line) or (line.strip() and not line.startswith(" ")
                                               and not line.rstrip().endswith(":"))]
    if done.returncode != 0:
        if any("No such file or directory" in m for m in messages):
            messages.append(_WHAT_IS_READABLE)
        raise CompileError("\n".join(messages) or f"{argv[0]} failed on {source}")
    warnings = tuple(m for m in messages if _DIAGNOSTIC.match(m) or "warning" in m)
    return BuiltProgram(elf=exe, source=source, warnings=warnings,
                        command=shlex.join(argv))
