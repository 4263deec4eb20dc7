"""Turns a full recording into what `trace record --fast` writes (docs/trace-format.md,
"Pending event tables"), to develop and test materialisation against: keyframes and the
kernel side of syscalls added, accesses/rsp/exec_counts removed, meta.json `events:
pending`. The one place to swap for real `--fast` recordings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_fast_like(trace: Path, every: int = 1 << 16) -> None:
    """Converts the full recording in `trace` in place.

    Args:
        trace: a complete full recording.
        every: steps between keyframes.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from tracer.format import TraceFiles
    from tracer.format.journal import parse_journal
    from tracer.format.schema import (
        CHECKSUMS_FILE, EVENT_TABLES, KERNEL_ACCESSES, KERNEL_ACCESSES_FILE, KEYFRAMES_FILE,
        PAGES_FILE, SOURCES, file_name,
    )
    from tracer.format.writer import file_checksums, write_meta
    from tracer.replay.keyframes import collect_keyframes

    trace = Path(trace)
    files = TraceFiles(trace)
    frames, pages, _ = collect_keyframes(files, every)
    kernel = []
    for batch in files.batches("accesses", ["step", "addr", "size", "is_write", "source"]):
        mask = pc.equal(batch.column("source").indices, SOURCES.index("kernel"))
        kernel.append(batch.filter(mask).select(["step", "addr", "size", "is_write"]))
    kernel_table = pa.Table.from_batches(kernel, schema=KERNEL_ACCESSES)
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    for name, table in ((KEYFRAMES_FILE, frames), (PAGES_FILE, pages),
                        (KERNEL_ACCESSES_FILE, kernel_table)):
        with pa.OSFile(str(trace / name), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema, options=options) as writer:
            writer.write_table(table)
    gone = {file_name(t) for t in EVENT_TABLES}
    journal = (trace / CHECKSUMS_FILE).read_bytes()
    parse_journal(journal, True, trace / CHECKSUMS_FILE)
    kept = b"".join(line + b"\n" for line in journal.splitlines()
                    if line.split(b" ", 1)[0].decode() not in gone)
    (trace / CHECKSUMS_FILE).write_bytes(kept)
    for name in gone:
        os.unlink(trace / name)
    meta = {k: v for k, v in files.meta.raw.items() if k not in ("format", "format_version")}
    end = dict(meta["end"])
    end.pop("access_counts", None)
    end.pop("lowest_rsp", None)
    end["accesses"] = end["rsp_changes"] = 0  # a fast recording cannot know them
    meta["end"] = end
    meta["events"] = "pending"
    meta["files"] = file_checksums(trace)
    write_meta(trace, meta)


def differences(full: Path, materialised: Path) -> list[str]:
    """What differs between a full recording and a materialised one: the event tables row
    for row, and meta.json's `end` (empty when they are identical)."""
    import json

    import pyarrow as pa

    out = []
    from tracer.format import TraceFiles

    for table in ("accesses", "rsp", "exec_counts"):
        # Through the reader: the stored layout depends on where batches begin.
        a = TraceFiles(full).table(table)
        b = TraceFiles(materialised).table(table)
        if not a.equals(b):
            n = next((i for i in range(min(a.num_rows, b.num_rows))
                      if a.slice(i, 1).to_pylist() != b.slice(i, 1).to_pylist()),
                     min(a.num_rows, b.num_rows))
            out.append(f"{table}: {a.num_rows} rows recorded, {b.num_rows} materialised; "
                       f"first difference at row {n}: "
                       f"{a.slice(n, 1).to_pylist()} vs {b.slice(n, 1).to_pylist()}")
    ea = json.loads((full / "meta.json").read_text())["end"]
    eb = json.loads((materialised / "meta.json").read_text())["end"]
    if ea != eb:
        out.append(f"end differs: { {k: (ea.get(k), eb.get(k)) for k in ea if ea[k] != eb.get(k)} }")
    return out
