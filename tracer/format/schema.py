"""The trace format: file names, Arrow schemas and the format version (docs/trace-format.md).

Imports pyarrow only. Any change here changes the contract: update the doc and FORMAT_VERSION.
"""

from __future__ import annotations

import pyarrow as pa

FORMAT_NAME = "vmtrace"
FORMAT_VERSION = 3
# Versions this vmtrace reads: 2 stored every column plainly (tracer/format/layout.py).
READABLE_VERSIONS = (2, 3)
META_FILE = "meta.json"
PROGRAM_FILE = "program.elf"
# One line per batch flushed to any table file, appended after the batch reached the disk.
CHECKSUMS_FILE = "checksums.txt"
# The program's source text and the files it includes (tracer/format/sources.py): optional,
# since traces recorded before it existed lack it.
SOURCES_FILE = "sources.arrows"

SOURCES = ["explicit", "implicit", "kernel"]
RSP_CAUSES = ["push", "pop", "call", "ret", "leave", "enter", "arith", "mov", "other"]
REGION_ACTIONS = ["map", "unmap", "protect", "brk", "grow"]
REGION_KINDS = ["elf", "text", "rodata", "data", "bss", "heap", "mmap", "stack", "vdso"]
# meta.json end.stop_reason values that cut the run short: the trace holds a prefix of it.
TRUNCATING_STOPS = ("max-steps", "max-trace-size", "min-free-disk", "interrupted")


def _dict() -> pa.DataType:
    return pa.dictionary(pa.int8(), pa.string())


ACCESSES = pa.schema([
    pa.field("step", pa.uint64(), nullable=False),
    pa.field("rip", pa.uint64(), nullable=False),
    pa.field("addr", pa.uint64(), nullable=False),
    pa.field("size", pa.uint32(), nullable=False),
    pa.field("is_write", pa.bool_(), nullable=False),
    pa.field("source", _dict(), nullable=False),
    pa.field("value", pa.uint64()),
    pa.field("value_hi", pa.uint64()),
])

RSP = pa.schema([
    pa.field("step", pa.uint64(), nullable=False),
    pa.field("rip", pa.uint64(), nullable=False),
    pa.field("old", pa.uint64(), nullable=False),
    pa.field("new", pa.uint64(), nullable=False),
    pa.field("cause", _dict(), nullable=False),
])

SYSCALLS = pa.schema([
    pa.field("step", pa.uint64(), nullable=False),
    pa.field("rip", pa.uint64(), nullable=False),
    pa.field("nr", pa.int32(), nullable=False),
    pa.field("name", pa.string(), nullable=False),
    pa.field("args", pa.list_(pa.uint64(), 6), nullable=False),
    pa.field("ret", pa.int64()),
    pa.field("detail", pa.string()),
    pa.field("abi", pa.string(), nullable=False),
])

REGIONS = pa.schema([
    pa.field("step", pa.uint64(), nullable=False),
    pa.field("action", pa.string(), nullable=False),
    pa.field("start", pa.uint64(), nullable=False),
    pa.field("end", pa.uint64(), nullable=False),
    pa.field("perms", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("name", pa.string()),
])

KERNEL_WRITES = pa.schema([
    pa.field("step", pa.uint64(), nullable=False),
    pa.field("addr", pa.uint64(), nullable=False),
    pa.field("data", pa.binary(), nullable=False),
])

OUTPUT = pa.schema([
    pa.field("step", pa.uint64(), nullable=False),
    pa.field("fd", pa.int32(), nullable=False),
    pa.field("data", pa.binary(), nullable=False),
])

SYMBOLS = pa.schema([
    pa.field("name", pa.string(), nullable=False),
    pa.field("addr", pa.uint64(), nullable=False),
    pa.field("size", pa.uint64(), nullable=False),
    pa.field("type", pa.string(), nullable=False),
    pa.field("section", pa.string()),
])

LINES = pa.schema([
    pa.field("addr", pa.uint64(), nullable=False),
    pa.field("file", pa.string(), nullable=False),
    pa.field("line", pa.uint32(), nullable=False),
])

MEMORY_IMAGE = pa.schema([
    pa.field("start", pa.uint64(), nullable=False),
    pa.field("perms", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("data", pa.large_binary(), nullable=False),
])

INPUTS = pa.schema([
    pa.field("name", pa.string(), nullable=False),
    pa.field("data", pa.large_binary(), nullable=False),
])

EXEC_COUNTS = pa.schema([
    pa.field("rip", pa.uint64(), nullable=False),
    pa.field("count", pa.uint64(), nullable=False),
])

# Written by `trace record --fast` (docs/trace-format.md, "Pending event tables"): the state
# at chosen steps, so that the event tables can be rebuilt slice by slice. Same schemas as
# the keyframes kept in the replay index (tracer/replay/keyframes.py).
KEYFRAMES = pa.schema([
    ("step", pa.uint64()), ("context", pa.binary()), ("cursor", pa.uint32()),
    ("heap_end", pa.uint64()), ("page_addr", pa.list_(pa.uint64())),
    ("page_id", pa.list_(pa.uint32())),
])
PAGES = pa.schema([("data", pa.binary())])
# ... and the kernel side of each syscall's memory accesses, in order (the accesses table's
# `source = kernel` rows without rip and value: the replay reads those back).
KERNEL_ACCESSES = pa.schema([
    pa.field("step", pa.uint64(), nullable=False),
    pa.field("addr", pa.uint64(), nullable=False),
    pa.field("size", pa.uint32(), nullable=False),
    pa.field("is_write", pa.bool_(), nullable=False),
])
# The three as tables a recording streams (tracer/format/writer.py TableWriter): they are
# not in TABLES because a full recording has none of them.
FAST_TABLES: dict[str, pa.Schema] = {
    "keyframes": KEYFRAMES, "pages": PAGES, "kernel_accesses": KERNEL_ACCESSES}


def schema_of(table: str) -> pa.Schema:
    """The schema of any table a trace may stream: the run's tables and the fast files."""
    return TABLES[table] if table in TABLES else FAST_TABLES[table]


KEYFRAMES_FILE = "keyframes.arrows"
PAGES_FILE = "pages.arrows"
KERNEL_ACCESSES_FILE = "kernel_accesses.arrows"
# The tables a fast recording leaves to be materialised (meta.json `events`: pending).
EVENT_TABLES = ("accesses", "rsp", "exec_counts")
EVENTS_PENDING = "pending"
EVENTS_MATERIALISED = "materialised"

# table name -> (file name, schema). Event tables are streamed while the program runs.
TABLES: dict[str, pa.Schema] = {
    "accesses": ACCESSES,
    "rsp": RSP,
    "syscalls": SYSCALLS,
    "regions": REGIONS,
    "kernel_writes": KERNEL_WRITES,
    "output": OUTPUT,
    "symbols": SYMBOLS,
    "lines": LINES,
    "memory_image": MEMORY_IMAGE,
    "inputs": INPUTS,
    "exec_counts": EXEC_COUNTS,
}


# Written before the program's first instruction: a killed recording that lacks one of
# them stopped before the run began. The other tables of a killed recording may be absent
# (nothing reached the disk), which reads as empty.
STARTUP_TABLES = ("symbols", "lines", "memory_image", "inputs", "regions")


def file_name(table: str) -> str:
    """The file that holds `table` inside a trace directory."""
    return f"{table}.arrows"


TABLE_FILES = {file_name(t): t for t in TABLES}
# Every file a trace directory may hold; a complete trace holds all of them but
# OPTIONAL_FILES.
FAST_FILES = frozenset({KEYFRAMES_FILE, PAGES_FILE, KERNEL_ACCESSES_FILE})
TRACE_FILES = frozenset({META_FILE, PROGRAM_FILE, CHECKSUMS_FILE, SOURCES_FILE,
                         *TABLE_FILES, *FAST_FILES})
# Files a complete trace may lack (older recordings); when present they are checksummed.
OPTIONAL_FILES = frozenset({SOURCES_FILE, *FAST_FILES})
# Every name a recording may leave in its directory: the trace files and meta.json's
# temporary twin (a recording killed while rewriting meta.json leaves it). `trace record -o`
# replaces a directory only if it holds nothing else.
RECORDING_FILES = TRACE_FILES | {META_FILE + ".tmp"}
# Where `trace materialize` stages its files inside the trace (an interrupted one leaves it;
# the next one deletes it).
MATERIALISING_DIR = "materialising.tmp"
