"""Turns a NASM source into a static ELF with the real nasm and ld, keeping nasm's warnings.
Both run in the build sandbox (tracer/sandbox.py): they can read the source's directory, the
--include directories and the toolchain, and write only the build directory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tracer import sandbox
from tracer.errors import AssembleError, ProgramError

_DIAGNOSTIC = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+): (?P<kind>error|warning|fatal)\s*:"
                         r"\s*(?P<msg>.*)$")
# nasm's words when an %include or incbin names a file it cannot open.
_UNREADABLE = re.compile(r"unable to (open|get length of)")
_WHAT_IS_READABLE = ("note: the build can read only the source's directory and --include "
                     "directories (docs/security.md)")


@dataclass(frozen=True)
class BuiltProgram:
    elf: Path
    source: Path | None
    warnings: tuple[str, ...]
    command: str | None = None  # the compile command shown to the user (C sources)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        package = "nasm" if name == "nasm" else "binutils"
        raise AssembleError(f"`{name}` is not installed; install it with "
                            f"`sudo apt-get install {package}` (make demo does this for you)")
    return found


def _ld_warning(line: str) -> str:
    """An ld message as `ld: ...` (ld names itself by its path), with a hint for the one
    a newcomer meets first."""
    text = "ld: " + re.sub(r"^\S*\bld(\.bfd)?: ", "", line)
    if "cannot find entry symbol _start" in text:
        text += " (add `global _start` before the `_start:` label so that ld sees it)"
    return text


def check_build_inputs(source: Path, include: Sequence[Path], error: type[Exception]) -> None:
    """Raises ProgramError for a missing source, `error` for a missing --include directory."""
    if not source.exists():
        raise ProgramError(f"{source}: no such file")
    for directory in include:
        if not directory.is_dir():
            raise error(f"--include {directory}: no such directory")


def assemble(source: Path, workdir: Path, include: Sequence[Path] = (),
             started: Callable[[subprocess.Popen], None] | None = None) -> BuiltProgram:
    """Assembles with `nasm -f elf64 -g -F dwarf` and links with `ld`, both sandboxed.

    `%include` finds files in the source's directory and in each `include` directory
    (nasm's `-i`); `incbin` and `%include` can reach nothing else on the host.

    Args:
        source: the .asm file.
        workdir: where the object and executable are written (the tools' only writable
            directory).
        include: further directories the source may include or incbin from.
        started: told each tool's running sandbox process (sandbox.run).

    Returns:
        The executable and nasm's warnings, each as `file:line: warning: message`.

    Raises:
        AssembleError: nasm or ld failed; the message lists their errors as file:line.
        ProgramError: the source file does not exist.
        SandboxError: the build sandbox is unavailable (nothing is built without it).
    """
    check_build_inputs(source, include, AssembleError)
    # nasm looks for %include files in its working directory and its -i directories only:
    # the source's directory is added so that a file beside the source is found from any
    # working directory. Readable: that directory, where the source points if it is a
    # symlink, and the --include directories.
    source_dir = Path(os.path.abspath(source)).parent
    readable = [source_dir, Path(os.path.realpath(source)).parent, *include]
    search = [arg for d in (source_dir, *include) for arg in ("-i", os.path.join(d, ""))]
    obj = workdir / (source.stem + ".o")
    exe = workdir / source.stem
    nasm = sandbox.run([_tool("nasm"), "-f", "elf64", "-g", "-F", "dwarf", *search, str(source),
                        "-o", str(obj)], read_only=readable, writable=workdir,
                       started=started)
    warnings, errors = [], []
    for line in nasm.stderr.splitlines():
        m = _DIAGNOSTIC.match(line.strip())
        if m and m["kind"] == "warning":
            warnings.append(line.strip())
        elif line.strip():
            errors.append(line.strip())
    if nasm.returncode != 0:
        if any(_UNREADABLE.search(e) for e in errors):
            errors.append(_WHAT_IS_READABLE)
        raise AssembleError("\n".join(errors) or f"nasm failed on {source}")
    ld = sandbox.run([_tool("ld"), "-o", str(exe), str(obj)], read_only=[], writable=workdir,
                     started=started)
    if ld.returncode != 0:
        raise AssembleError(f"linking {source} failed:\n{ld.stderr.strip()}")
    for line in ld.stderr.splitlines():
        if line.strip():
            warnings.append(_ld_warning(line.strip()))
    return BuiltProgram(elf=exe, source=source, warnings=tuple(warnings))
