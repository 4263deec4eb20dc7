"""What a batch records: the inputs named on the command line (files, directories, globs)
expanded into programs, each with a stable id (its partition in the dataset) and the hash of
its source bytes and options (what a resumed batch compares)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from tracer.errors import TracerError
from tracer.format.schema import FORMAT_VERSION

SOURCE_SUFFIXES = (".asm", ".s", ".nasm", ".c")
_ELF_MAGIC = b"\x7fELF"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BatchOptions:
    """The `trace record` options a batch applies to every program."""

    args: tuple[str, ...] = ()
    stdin: bytes = b""
    max_steps: int | None = None
    max_trace_mb: float | None = None
    allow_read: tuple[str, ...] = ()
    libc: str = "glibc"
    seed: int = 0
    timeout: float | None = None   # seconds per program; past it the run is stopped
    reports: bool = True           # write each program's HTML report beside its trace

    def fingerprint(self) -> dict:
        """What the recording depends on (not `reports`: it changes no row)."""
        doc = asdict(self)
        doc.pop("reports")
        doc["stdin"] = hashlib.sha256(self.stdin).hexdigest()
        return doc


@dataclass(frozen=True)
class ProgramJob:
    """One program of the batch."""

    program: str        # its id: the partition name, the trace directory's name
    path: str           # absolute path of the input
    source: str         # the input as the user named it (relative to where they were)
    kind: str           # asm, c, elf
    input_hash: str


class BatchInputError(TracerError):
    """An input names nothing to record."""


def kind_of(path: Path) -> str | None:
    """asm, c or elf for a file a batch can record; None for anything else."""
    suffix = path.suffix.lower()
    if suffix == ".c":
        return "c"
    if suffix in (".asm", ".s", ".nasm"):
        return "asm"
    try:
        with open(path, "rb") as f:
            return "elf" if f.read(4) == _ELF_MAGIC else None
    except OSError:
        return None


def expand(inputs: list[str]) -> list[Path]:
    """The program files `inputs` name: a file as is, a directory's recordable files
    (recursively, sorted), a glob's matches (quoted globs the shell did not expand).

    Raises:
        BatchInputError: an input matches nothing, or nothing at all is left to record.
    """
    found: list[Path] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            hits = sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()
                          and not any(part.startswith(".") for part in p.relative_to(path).parts)
                          and kind_of(p) is not None)
        elif path.is_file():
            hits = [path]
        elif glob.has_magic(text):
            hits = sorted(Path(p) for p in glob.glob(text, recursive=True)
                          if Path(p).is_file() and kind_of(Path(p)) is not None)
        else:
            raise BatchInputError(f"{text}: no such file or directory")
        if not hits:
            raise BatchInputError(f"{text}: no .asm, .c or ELF file there")
        found.extend(hits)
    unique: dict[str, Path] = {}
    for p in found:
        unique.setdefault(os.path.abspath(p), p)
    return list(unique.values())


def program_ids(paths: list[Path]) -> list[str]:
    """A short, unique, partition-safe id for each path: its name without the suffix, or
    with it, or with its directories, as far as it takes to tell them apart."""
    absolute = [Path(os.path.abspath(p)) for p in paths]
    common = Path(os.path.commonpath([str(a.parent) for a in absolute])) if absolute else None
    candidates = [
        [a.stem, a.name, str(a.relative_to(common).with_suffix("")),
         str(a.relative_to(common))] for a in absolute]
    ids: list[str] = []
    for level in range(4):
        ids = [_safe(c[level]) for c in candidates]
        if len(set(ids)) == len(ids):
            return ids
    # Still equal after sanitising (e.g. `a b.asm` and `a_b.asm`): number them.
    return [f"{i}-{n}" for n, i in enumerate(ids, 1)]


def _safe(text: str) -> str:
    out = _UNSAFE.sub("_", text.replace(os.sep, "-")).strip("._-") or "program"
    return out[:200]


def input_hash(path: Path, options: BatchOptions) -> str:
    """SHA-256 of the program's bytes, the options and the trace format version."""
    h = hashlib.sha256()
    h.update(path.read_bytes())
    h.update(json.dumps({"options": options.fingerprint(), "format": FORMAT_VERSION},
                        sort_keys=True).encode())
    return h.hexdigest()


def plan(inputs: list[str], options: BatchOptions) -> list[ProgramJob]:
    """The programs to record, in input order.

    Raises:
        BatchInputError: an input matches nothing or cannot be read.
    """
    paths = expand(inputs)
    jobs = []
    for path, program in zip(paths, program_ids(paths)):
        try:
            digest = input_hash(path, options)
        except OSError as exc:
            raise BatchInputError(f"cannot read {path}: {exc.strerror}") from None
        jobs.append(ProgramJob(program=program, path=os.path.abspath(path), source=str(path),
                               kind=kind_of(path) or "elf", input_hash=digest))
    return jobs
