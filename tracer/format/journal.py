"""The checksum journal, checksums.txt: one line per batch flushed to a table file, with the
SHA-256 of the bytes that batch added, appended after the bytes reached the file. A
recording killed at any moment therefore leaves a provable prefix of every table: the
bytes its lines cover (docs/trace-format.md, "Checksums"). Stdlib only."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tracer.format.errors import TraceFormatError
from tracer.format.schema import CHECKSUMS_FILE, FAST_FILES, TABLE_FILES

MAX_JOURNAL_BYTES = 1 << 30
_LINE = re.compile(rb"([a-z_]+\.arrows) (\d{1,20}) (\d{1,20}) (\d{1,20}) ([0-9a-f]{64})")


@dataclass(frozen=True)
class JournalEntry:
    """One line: the bytes [start, end) of `file`, holding `rows` rows, hash to `sha256`."""

    file: str
    start: int
    end: int
    rows: int
    sha256: str

    def line(self) -> bytes:
        return f"{self.file} {self.start} {self.end} {self.rows} {self.sha256}\n".encode()


class JournalWriter:
    """Appends lines to a directory's journal. Each line is one write(2) to a file opened
    with O_APPEND, so lines of writers on several threads never interleave, and a process
    killed between two writes leaves whole lines only."""

    def __init__(self, directory: Path):
        self._fd = os.open(directory / CHECKSUMS_FILE,
                           os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def append(self, entry: JournalEntry) -> None:
        os.write(self._fd, entry.line())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def parse_journal(data: bytes, complete: bool, path: Path) -> dict[str, list[JournalEntry]]:
    """The journal's lines by file, each file's lines checked to follow one another.

    Args:
        data: the journal's bytes.
        complete: whether the recording completed (then a cut last line is damage; after a
            kill it is the line being written, and is ignored).
        path: the journal's path, for messages.

    Raises:
        TraceFormatError: a line that is not one the writer writes, or lines of a file that
            leave a gap or overlap.
    """
    lines = data.split(b"\n")
    if lines[-1]:
        if complete:
            raise TraceFormatError(f"{path} is cut: its last line is incomplete")
    lines.pop()
    out: dict[str, list[JournalEntry]] = {}
    for number, line in enumerate(lines, 1):
        m = _LINE.fullmatch(line)
        if m is None or (m.group(1).decode() not in TABLE_FILES
                          and m.group(1).decode() not in FAST_FILES):
            raise TraceFormatError(f"{path} is damaged at line {number}: it is not a "
                                   "checksum line")
        name = m.group(1).decode()
        start, end, rows = int(m.group(2)), int(m.group(3)), int(m.group(4))
        entries = out.setdefault(name, [])
        expected = entries[-1].end if entries else 0
        if start != expected or end <= start:
            raise TraceFormatError(f"{path} is damaged at line {number}: it covers bytes "
                                   f"{start:,} to {end:,} of {name}, where bytes from "
                                   f"{expected:,} on follow")
        entries.append(JournalEntry(name, start, end, rows, m.group(5).decode()))
    return out


def verified_length(entries: list[JournalEntry], data: memoryview, path: Path) -> int:
    """Checks the bytes of one table file against its journal lines.

    Returns:
        How many bytes from the start are covered and intact (the end of the last line).

    Raises:
        TraceFormatError: the file is shorter than its lines say, or a batch's bytes do not
            match its checksum.
    """
    rows = 0
    for batch, entry in enumerate(entries, 1):
        if entry.end > len(data):
            raise TraceFormatError(
                f"{path} is cut: it has {len(data):,} bytes, but batch {batch} was written "
                f"up to byte {entry.end:,}; the {rows:,} rows before byte {entry.start:,} "
                "are intact")
        if hashlib.sha256(data[entry.start:entry.end]).hexdigest() != entry.sha256:
            raise TraceFormatError(
                f"{path} is damaged: batch {batch} (bytes {entry.start:,} to {entry.end:,}) "
                f"does not match its checksum; the {rows:,} rows before it are intact "
                "(record the program again)")
        rows += entry.rows
    return entries[-1].end if entries else 0
