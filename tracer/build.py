"""Turns a NASM source into a static ELF with the real nasm and ld, keeping nasm's warnings."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tracer.errors import AssembleError, ProgramError

_DIAGNOSTIC = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+): (?P<kind>error|warning|fatal)\s*:"
                         r"\s*(?P<msg>.*)$")


@dataclass(frozen=True)
class BuiltProgram:
    elf: Path
    source: Path | None
    warnings: tuple[str, ...]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        package = "nasm" if name == "nasm" else "binutils"
        raise AssembleError(f"`{name}` is not installed; install it with "
                            f"`sudo apt-get install {package}` (make demo does this for you)")
    return found


def assemble(source: Path, workdir: Path) -> BuiltProgram:
    """Assembles with `nasm -f elf64 -g -F dwarf` and links with `ld`.

    Args:
        source: the .asm file.
        workdir: where the object and executable are written.

    Returns:
        The executable and nasm's warnings, each as `file:line: warning: message`.

    Raises:
        AssembleError: nasm or ld failed; the message lists their errors as file:line.
        ProgramError: the source file does not exist.
    """
    if not source.exists():
        raise ProgramError(f"{source}: no such file")
    obj = workdir / (source.stem + ".o")
    exe = workdir / source.stem
    nasm = subprocess.run([_tool("nasm"), "-f", "elf64", "-g", "-F", "dwarf", str(source),
                           "-o", str(obj)], capture_output=True, text=True)
    warnings, errors = [], []
    for line in nasm.stderr.splitlines():
        m = _DIAGNOSTIC.match(line.strip())
        if m and m["kind"] == "warning":
            warnings.append(line.strip())
        elif line.strip():
            errors.append(line.strip())
    if nasm.returncode != 0:
        raise AssembleError("\n".join(errors) or f"nasm failed on {source}")
    ld = subprocess.run([_tool("ld"), "-o", str(exe), str(obj)], capture_output=True, text=True)
    if ld.returncode != 0:
        raise AssembleError(f"linking {source} failed:\n{ld.stderr.strip()}")
    for line in ld.stderr.splitlines():
        if line.strip():
            warnings.append(line.strip())
    return BuiltProgram(elf=exe, source=source, warnings=tuple(warnings))
