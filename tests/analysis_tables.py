"""Hand-built traces for the analysis unit tests: small tables written with the real
trace writer, so the analysis reads them exactly as it reads a recording."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from tracer.format.schema import PROGRAM_FILE, TABLES
from tracer.format.writer import file_checksums, write_meta, write_table

INITIAL_RSP = 0x7FFF_FFFF_E000
STACK_TOP = 0x7FFF_FFFF_F000
STACK_LIMIT = 8 << 20
STACK_VMA = 0x21000  # Linux's initial [stack]: the argument page + 128 KiB
BRK = 0x403000
TEXT = 0x401000


def _columns(table: str, rows: list[dict]) -> dict[str, list]:
    names = [f.name for f in TABLES[table]]
    return {n: [r.get(n) for r in rows] for n in names}


def base_regions() -> list[dict]:
    return [
        {"step": 0, "action": "map", "start": 0x400000, "end": 0x401000, "perms": "r--",
         "kind": "elf", "name": "prog"},
        {"step": 0, "action": "map", "start": TEXT, "end": 0x402000, "perms": "r-x",
         "kind": "text", "name": ".text"},
        {"step": 0, "action": "map", "start": 0x402000, "end": 0x403000, "perms": "rw-",
         "kind": "data", "name": ".data"},
        {"step": 0, "action": "map", "start": STACK_TOP - STACK_VMA, "end": STACK_TOP,
         "perms": "rw-", "kind": "stack", "name": "[stack]"},
    ]


def access(step: int, addr: int, size: int = 8, write: bool = False, source: str = "explicit",
           rip: int = TEXT, value: int | None = 0) -> dict:
    return {"step": step, "rip": rip, "addr": addr, "size": size, "is_write": write,
            "source": source, "value": value, "value_hi": None}


def rsp_row(step: int, new: int, cause: str, old: int | None = None, rip: int = TEXT) -> dict:
    return {"step": step, "rip": rip, "old": new if old is None else old, "new": new,
            "cause": cause}


def tiny_elf() -> bytes:
    """An ELF64 header with no sections or segments: what a hand-built trace's program.elf
    needs to be (the analyses read its section headers, and there are none)."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, TEXT, 0, 0, 0, 64, 56, 0, 64,
                               0, 0)


def make_trace(directory: Path, *, instructions: int, accesses: list[dict] = (),
               rsp: list[dict] = (), regions: list[dict] | None = None,
               syscalls: list[dict] = (), symbols: list[dict] = (), lines: list[dict] = (),
               image: list[dict] | None = None, exec_counts: list[dict] = (),
               end: dict | None = None, warnings: list[str] = ()) -> Path:
    """Writes a complete trace directory from literal rows and returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    tables = {
        "accesses": list(accesses), "rsp": list(rsp),
        "regions": base_regions() if regions is None else regions,
        "syscalls": [{"abi": "x86_64", **s} for s in syscalls], "kernel_writes": [],
        "output": [],
        "symbols": list(symbols), "lines": list(lines),
        "memory_image": image if image is not None else [
            {"start": TEXT, "perms": "r-x", "kind": "text", "data": b"\x90" * 4096}],
        "inputs": [{"name": "stdin", "data": b""}], "exec_counts": list(exec_counts),
    }
    for name, rows in tables.items():
        write_table(directory, name, _columns(name, rows))
    elf = tiny_elf()
    (directory / PROGRAM_FILE).write_bytes(elf)
    write_meta(directory, {
        "complete": True,
        "program": {"path": "prog.asm", "name": "prog.asm", "kind": "elf", "entry": TEXT,
                    "elf_sha256": hashlib.sha256(elf).hexdigest()},
        "argv": ["./prog"], "env": [], "warnings": list(warnings),
        "limits": {"max_steps": None, "max_trace_mb": None}, "seed": 0,
        "initial": {"rip": TEXT, "rsp": INITIAL_RSP, "brk": BRK, "stack_top": STACK_TOP,
                    "stack_limit": STACK_LIMIT, "registers": {}, "auxv": []},
        "end": {"stop_reason": "exit", "exit_code": 0, "signal": None, "fault": None,
                "instructions": instructions, "accesses": len(tables["accesses"]),
                "rsp_changes": len(tables["rsp"]), "truncated": False, "error": None,
                "brk": {"start": BRK, "end": BRK}, "registers": {}, **(end or {})},
        "files": file_checksums(directory),
    })
    return directory


def recorded(program: Path, out: Path) -> Path:
    """Records `program` in this process (the CLI path is covered by the report tests;
    skipping an interpreter start per recording keeps these tests fast)."""
    from tracer.recorder import RecordOptions, record

    record(RecordOptions(program=program, output=out, echo=None))
    return out


STREAMED = ("accesses", "rsp", "syscalls", "regions", "kernel_writes", "output")


def simulate_kill(directory: Path, cut: dict[str, int] | None = None) -> Path:
    """Turns a complete recording into what SIGKILL leaves: meta.json as written at the
    start (no `end`, no `files`), no exec_counts, the streamed tables without their
    end-of-stream mark, and each file of `cut` (name -> bytes to drop) ending in a batch
    the journal does not vouch for (it was being written)."""
    import json

    from tracer.format.schema import CHECKSUMS_FILE, file_name

    meta_path = directory / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(complete=False, end=None)
    meta.pop("files", None)
    meta_path.write_text(json.dumps(meta))
    (directory / "exec_counts.arrows").unlink()
    streamed = {file_name(t) for t in STREAMED}
    kept, ends = [], {}
    for line in (directory / CHECKSUMS_FILE).read_text().splitlines():
        name, _start, end, rows, _sha = line.split()
        if name == "exec_counts.arrows" or (name in streamed and rows == "0"):
            continue
        kept.append((name, int(end), line))
        ends[name] = int(end)
    for name in streamed:
        path = directory / name
        path.write_bytes(path.read_bytes()[:ends.get(name, 0)])
    for name, drop in (cut or {}).items():
        path = directory / name
        data = path.read_bytes()
        path.write_bytes(data[:len(data) - drop])
        kept = [k for k in kept if k[0] != name or k[1] <= len(data) - drop]
    (directory / CHECKSUMS_FILE).write_text("".join(line + "\n" for _, _, line in kept))
    return directory


def reseal(directory: Path) -> Path:
    """Rewrites the checksums of a trace whose files were changed on purpose: one journal
    line per table file and, for a complete trace, meta.json's `files`. What a careful
    forger does; the tests that use it check what the readers do past the checksums."""
    import json

    from tracer.format.schema import CHECKSUMS_FILE, TABLE_FILES

    lines = []
    for name in sorted(TABLE_FILES):
        path = directory / name
        if path.is_file() and not path.is_symlink() and path.stat().st_size:
            data = path.read_bytes()
            lines.append(f"{name} 0 {len(data)} 0 {hashlib.sha256(data).hexdigest()}\n")
    (directory / CHECKSUMS_FILE).write_text("".join(lines))
    meta_path = directory / "meta.json"
    meta = json.loads(meta_path.read_text())
    if isinstance(meta, dict) and meta.get("complete"):
        meta["files"] = file_checksums(directory)
        meta_path.write_text(json.dumps(meta))
    return directory
