"""Hand-built traces for the analysis unit tests: small tables written with the real
trace writer, so the analysis reads them exactly as it reads a recording."""

from __future__ import annotations

from pathlib import Path

from tracer.format.schema import TABLES
from tracer.format.writer import write_meta, write_table

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
        "syscalls": list(syscalls), "kernel_writes": [], "output": [],
        "symbols": list(symbols), "lines": list(lines),
        "memory_image": image if image is not None else [
            {"start": TEXT, "perms": "r-x", "kind": "text", "data": b"\x90" * 4096}],
        "inputs": [{"name": "stdin", "data": b""}], "exec_counts": list(exec_counts),
    }
    for name, rows in tables.items():
        write_table(directory, name, _columns(name, rows))
    write_meta(directory, {
        "complete": True,
        "program": {"path": "prog.asm", "name": "prog.asm", "kind": "elf"},
        "argv": ["./prog"], "env": [], "warnings": list(warnings),
        "limits": {"max_steps": None, "max_trace_mb": None}, "seed": 0,
        "initial": {"rip": TEXT, "rsp": INITIAL_RSP, "brk": BRK, "stack_top": STACK_TOP,
                    "stack_limit": STACK_LIMIT, "registers": {}, "auxv": []},
        "end": {"stop_reason": "exit", "exit_code": 0, "signal": None, "fault": None,
                "instructions": instructions, "accesses": len(tables["accesses"]),
                "rsp_changes": len(tables["rsp"]), "truncated": False, "error": None,
                "brk": {"start": BRK, "end": BRK}, "registers": {}, **(end or {})},
    })
    return directory


def recorded(program: Path, out: Path) -> Path:
    """Records `program` in this process (the CLI path is covered by the report tests;
    skipping an interpreter start per recording keeps these tests fast)."""
    from tracer.recorder import RecordOptions, record

    record(RecordOptions(program=program, output=out, echo=None))
    return out
