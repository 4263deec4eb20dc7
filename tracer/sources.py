"""Collects the program's source files to keep inside its trace: the .asm or .c, the files
it %include's or #include's "locally", and the files its DWARF line table names.

Read by vmtrace on the host, never by the traced program, and only inside the directories
the build sandbox could read (the source's directory and --include directories; for an ELF
given as the program, its own directory): a hostile source or ELF naming /etc/shadow gets
nothing kept."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

from tracer.format.sources import (
    MAX_SOURCE_FILE_BYTES, MAX_SOURCE_FILES, MAX_SOURCES_BYTES, SourceFile,
)

_INCLUDE = re.compile(rb'^\s*(?:%include|#\s*include)\s+"([^"\n]{1,4096})"', re.M)
_NASM_INCLUDE_ANGLED = re.compile(rb"^\s*%include\s+<([^>\n]{1,4096})>", re.M)


def _inside(path: Path, roots: list[Path]) -> bool:
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(root) for root in roots)


def _read(path: Path, budget: int) -> tuple[bytes, int, str, bool] | None:
    """(kept bytes, size, SHA-256 of the whole file, truncated) of a regular file."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a FIFO or device is never opened
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        digest = hashlib.sha256()
        kept = bytearray()
        size = 0
        cap = min(MAX_SOURCE_FILE_BYTES, budget)
        for block in iter(lambda: os.read(fd, 1 << 20), b""):
            digest.update(block)
            if len(kept) < cap:
                kept += block[:cap - len(kept)]
            size += len(block)
        return bytes(kept), size, digest.hexdigest(), size > len(kept)
    except OSError:
        return None
    finally:
        os.close(fd)


def collect_sources(program: Path, kind: str, include: tuple[Path, ...],
                    dwarf_files: list[str]) -> list[SourceFile]:
    """The files to keep, the program's source first.

    Args:
        program: the path given to `trace record`.
        kind: asm, c or elf.
        include: the --include directories.
        dwarf_files: the file names of the program's line table.
    """
    base = Path(os.path.abspath(program)).parent
    roots = [Path(os.path.realpath(d)) for d in (base, Path(os.path.realpath(program)).parent,
                                                  *include)]
    search = [base, *include]
    kept: list[SourceFile] = []
    seen: set[str] = set()
    budget = MAX_SOURCES_BYTES
    queue: list[tuple[str, Path | None, str]] = []
    if kind in ("asm", "c"):
        queue.append((str(program), program, "main"))
    queue += [(name, None, "include") for name in dwarf_files]
    while queue and len(kept) < MAX_SOURCE_FILES and budget > 0:
        name, where, role = queue.pop(0)
        candidates = [where] if where is not None else (
            [Path(name)] if os.path.isabs(name) else [Path(name), *(d / name for d in search)])
        path = next((c for c in candidates if c.is_file() and _inside(c, roots)), None)
        if path is None or os.path.realpath(path) in seen:
            continue
        seen.add(os.path.realpath(path))
        read = _read(path, budget)
        if read is None:
            continue
        data, size, sha, truncated = read
        budget -= len(data)
        kept.append(SourceFile(name, role, size, sha, data, truncated))
        if kind in ("asm", "c"):
            for m in [*_INCLUDE.finditer(data), *_NASM_INCLUDE_ANGLED.finditer(data)]:
                queue.append((m.group(1).decode(errors="replace"), None, "include"))
            # An include is looked up beside the file that includes it first.
            search = [path.parent, *[d for d in search if d != path.parent]]
    return kept
