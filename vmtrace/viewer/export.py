"""`trace view --export DIR`: the viewer as a folder that works from file:// with no server.

The page is the same; its data come from `data.js` (a browser will not `fetch` from
file://, but it runs a script): every step's registers, the stack pictures, disassembly and
heap states (each distinct one stored once), and, for the memory pane, the initial memory
and every write, from which the page rebuilds the bytes at any step as the server would."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tracer.errors import TracerError
from vmtrace.viewer.app import ASSETS, INDEX, asset_bytes
from vmtrace.viewer.session import ViewerSession

MAX_STEPS = 50_000
MAX_BUNDLE_BYTES = 96 << 20
MARKER = "vmtrace-view.json"     # what makes a folder one we may replace


class ExportError(TracerError):
    """The trace cannot be exported (too long), or the folder is not ours to write."""


def _ours(out: Path) -> set[Path]:
    return {out / "index.html", out / MARKER, out / "assets",
            *(out / "assets" / name for name in [*ASSETS, "data.js"])}


def _check_destination(out: Path) -> None:
    """An export may go into a new or empty folder, or replace an earlier export that holds
    nothing but the files an export writes."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ExportError(f"{out} exists and is not a folder: choose another --export path")
    if not out.is_dir() or not any(out.iterdir()):
        return
    found = {*out.iterdir(), *((out / "assets").iterdir() if (out / "assets").is_dir() else [])}
    if not (out / MARKER).is_file() or not found <= _ours(out) \
            or any(p.is_symlink() for p in found):
        raise ExportError(f"{out} is not empty and not an exported view: choose an empty or "
                          "new folder (files there are never replaced)")


def _remove_export(out: Path) -> None:
    for p in sorted(_ours(out), key=lambda p: len(p.parts), reverse=True):
        if p.is_dir():
            p.rmdir()
        elif p.exists():
            p.unlink()
    out.rmdir()


def _intern(table: list, index: dict, value) -> int:
    key = json.dumps(value, sort_keys=True, separators=(",", ":"))
    if key not in index:
        index[key] = len(table)
        table.append(value)
    return index[key]


def bundle(session: ViewerSession) -> dict:
    """Everything the page asks for, for every step of a small trace.

    Raises:
        ExportError: the run is longer than MAX_STEPS, or moved memory with mremap (the page
            rebuilds memory from writes, which cannot follow a move).
    """
    steps = session.last_step
    if steps > MAX_STEPS:
        raise ExportError(f"the run has {steps:,} steps: --export writes every step into the "
                          f"page, for runs of up to {MAX_STEPS:,}; use `trace view` for this one")
    if any(r["name"] == "mremap" for r in session.trace.table("syscalls", ["name"]).to_pylist()):
        raise ExportError("the run moved memory with mremap, which an exported page cannot "
                          "rebuild; use `trace view` for this one")
    tables: dict[str, list] = {"stack": [], "disasm": [], "insn": [], "line": [], "map": [],
                               "heap": []}
    seen: dict[str, dict] = {k: {} for k in tables}
    regs, changed, per_step = [], [], []
    for step in range(steps + 1):
        st = session.state(step)
        regs.append([st["registers_hex"][k] for k in st["registers"]])
        changed.append(st["changed"])
        per_step.append([
            _intern(tables["insn"], seen["insn"], st["instruction"]),
            _intern(tables["line"], seen["line"], st["source"]),
            _intern(tables["map"], seen["map"], [st["map"], st["newest_mapping"]]),
            int(st["ended"]),
            _intern(tables["stack"], seen["stack"], _without_step(session.stack(step))),
            _intern(tables["disasm"], seen["disasm"],
                    _without_step(session.disassembly(step))),
            _intern(tables["heap"], seen["heap"], _without_step(session.heap(step))),
        ])
    return {
        "meta": session.meta(), "timeline": session.timeline(), "source": session.source(),
        "register_names": list(session.state(0)["registers"]),
        "registers": regs, "changed": changed, "steps": per_step, "tables": tables,
        "output": [{"step": r["step"], "fd": r["fd"],
                    "text": r["data"].decode("utf-8", "replace")}
                   for r in session.trace.table("output", ["step", "fd", "data"]).to_pylist()],
        "memory": _memory(session),
        "seek": {kind: _seek_steps(session, kind) for kind in ("call", "ret", "syscall")},
        "symbols": _symbols(session),
    }


def _symbols(session: ViewerSession) -> dict[str, int]:
    """Name -> address, for the memory pane's address box (the first of a repeated name)."""
    out: dict[str, int] = {}
    for r in session.trace.table("symbols", ["name", "addr", "type"]).to_pylist():
        if r["name"] and r["type"] != "file":
            out.setdefault(r["name"], r["addr"])
    return out


def _without_step(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "step"}


def _seek_steps(session: ViewerSession, kind: str) -> list[int]:
    from vmtrace.viewer.seek import event_steps

    return [int(s) for s in event_steps(session, kind)]


def _memory(session: ViewerSession) -> dict:
    """The initial image, every write in execution order (CPU stores and kernel writes),
    and every fresh mapping (zeros from then on), with the writers' symbols and lines."""
    trace, symbols = session.trace, session.symbols(session.last_step)
    image = [{"start": r["start"], "data": r["data"].hex()}
             for r in trace.table("memory_image", ["start", "data"]).to_pylist()]
    writes = []
    for batch in trace.files.batches("accesses", ["step", "rip", "addr", "size", "is_write",
                                                  "source", "value", "value_hi"]):
        for r in batch.to_pylist():
            if not r["is_write"] or r["source"] == "kernel":
                continue
            data = (r["value"] or 0).to_bytes(8, "little")
            if r["size"] > 8:
                data += (r["value_hi"] or 0).to_bytes(8, "little")
            writes.append([r["step"], r["rip"], r["addr"], data[:r["size"]].hex(),
                           r["source"]])
    for r in trace.table("kernel_writes", ["step", "addr", "data"]).to_pylist():
        writes.append([r["step"], None, r["addr"], r["data"].hex(), "kernel"])
    writes.sort(key=lambda w: w[0])
    syscalls = {r["step"]: r["name"]
                for r in trace.table("syscalls", ["step", "name"]).to_pylist()}
    rips = {w[1] for w in writes if w[1] is not None}
    writers = {}
    for rip in rips:
        line = symbols.line_at(rip)
        writers[f"{rip:#x}"] = {"symbol": symbols.name(rip),
                                "line": None if line is None else {"file": line.file,
                                                                   "line": line.line}}
    fresh = []   # [step, start, end]: zeros from that step on (a new mapping, grown pages)
    heap_end = None
    for r in trace.table("regions", ["step", "action", "start", "end"]).to_pylist():
        if r["action"] == "brk":
            # Only what a brk adds is new: the heap below the old break keeps its bytes.
            if r["step"] and heap_end is not None and r["end"] > heap_end:
                fresh.append([r["step"], heap_end, r["end"]])
            heap_end = r["end"] if heap_end is None else max(r["start"], r["end"])
        elif r["step"] and r["action"] in ("map", "grow"):
            fresh.append([r["step"], r["start"], r["end"]])
    return {"image": image, "writes": writes, "writers": writers, "fresh": fresh,
            "syscalls": {str(k): v for k, v in syscalls.items()}}


def export_viewer(trace_path: Path, out: Path, allocator: str | None = None) -> Path:
    """Writes the folder and returns its index.html.

    Raises:
        ExportError: see `bundle`; or `out` holds files that are not an exported view.
    """
    out = Path(out)
    _check_destination(out)
    data = bundle(ViewerSession(trace_path, allocator))
    text = "window.VMTRACE_BUNDLE = " + json.dumps(data, separators=(",", ":")) + ";\n"
    if len(text) > MAX_BUNDLE_BYTES:
        raise ExportError(f"the exported data would be {len(text) / 1e6:.0f} MB (at most "
                          f"{MAX_BUNDLE_BYTES / 1e6:.0f} MB load well in a browser); use "
                          "`trace view` for this run")
    tmp = out.with_name(f".{out.name}.export-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "assets").mkdir(parents=True)
    page = asset_bytes(*INDEX).decode()
    page = page.replace('<script src="assets/viewer.js" defer></script>',
                        '<script src="assets/data.js"></script>\n'
                        '<script src="assets/viewer.js" defer></script>')
    (tmp / "index.html").write_text(page)
    for name, (package, path, _kind) in ASSETS.items():
        (tmp / "assets" / name).write_bytes(asset_bytes(package, path))
    (tmp / "assets" / "data.js").write_text(text)
    (tmp / MARKER).write_text(json.dumps({"trace": str(Path(trace_path).resolve()),
                                          "steps": data["meta"]["steps"]}))
    if out.exists():
        _check_destination(out)   # again: nothing may have been added meanwhile
        _remove_export(out)
    tmp.rename(out)
    return out / "index.html"
