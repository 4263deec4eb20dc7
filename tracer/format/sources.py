"""sources.arrows: the program's source text and the files it includes, kept inside the
trace so that its listing and findings work from any directory (docs/trace-format.md).
Imports pyarrow only."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from tracer.format.build import record_batch
from tracer.format.errors import TraceFormatError

# What one file and all of them may keep: a source bigger than this is kept cut, and says so.
MAX_SOURCE_FILE_BYTES = 1 << 20
MAX_SOURCES_BYTES = 8 << 20
MAX_SOURCE_FILES = 64
SOURCE_ROLES = ("main", "include")

SOURCES_SCHEMA = pa.schema([
    pa.field("path", pa.string(), nullable=False),
    pa.field("role", pa.string(), nullable=False),
    pa.field("size", pa.uint64(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("data", pa.large_binary(), nullable=False),
    pa.field("truncated", pa.bool_(), nullable=False),
])


@dataclass(frozen=True)
class SourceFile:
    """One kept file. `path`: as the program named it (the source as given to `trace
    record`, an include as written, a DWARF file name); `size` and `sha256`: of the whole
    file on disk; `data`: its bytes, the first MAX_SOURCE_FILE_BYTES when `truncated`."""

    path: str
    role: str
    size: int
    sha256: str
    data: bytes
    truncated: bool

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def write_sources(path: Path, files: list[SourceFile]) -> None:
    """Writes sources.arrows (one Arrow IPC stream, one batch)."""
    batch = record_batch({f.name: [getattr(s, f.name) for s in files]
                          for f in SOURCES_SCHEMA}, SOURCES_SCHEMA)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, SOURCES_SCHEMA) as w:
        w.write_batch(batch)


def parse_sources(data: bytes, path: Path) -> list[SourceFile]:
    """The kept files, each checked against its own SHA-256 unless it was kept cut.

    Raises:
        TraceFormatError: not an Arrow stream of the sources schema, or a file's bytes
            differ from its recorded SHA-256.
    """
    try:
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise TraceFormatError(f"{path} is damaged: {exc}") from None
    if not table.schema.equals(SOURCES_SCHEMA):
        raise TraceFormatError(f"{path} is damaged: its columns are not those of "
                               "sources.arrows")
    out = []
    for row in table.to_pylist():
        kept = SourceFile(**row)
        if kept.role not in SOURCE_ROLES or len(kept.data) > MAX_SOURCE_FILE_BYTES:
            raise TraceFormatError(f"{path} is damaged: {kept.path!r} is not a kept source")
        if not kept.truncated and hashlib.sha256(kept.data).hexdigest() != kept.sha256:
            raise TraceFormatError(f"{path} is corrupt: the text kept for {kept.path!r} does "
                                   "not match its SHA-256")
        out.append(kept)
    return out
