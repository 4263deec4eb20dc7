"""meta.json as typed records, validated before any field is used: the file is input from
wherever the trace came from, not something this machine wrote (docs/trace-format.md).

Hand-written rather than a schema library: `trace info` should not pay for importing one,
and each refusal names the key and says what it should hold. Stdlib only."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tracer.ending import Fault
from tracer.format.errors import TraceFormatError
from tracer.format.schema import (
    EVENTS_MATERIALISED, EVENTS_PENDING, FORMAT_NAME, META_FILE, READABLE_VERSIONS, SOURCES,
    TRACE_FILES,
)

MAX_META_BYTES = 64 << 20   # argv and env are capped at 2 MiB by the recorder (E2BIG)
MAX_DEPTH = 6               # the deepest meta.json the recorder writes is 4
U64 = (1 << 64) - 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class ProgramInfo:
    """`program`: what ran."""

    path: str                   # as given to `trace record`
    name: str
    kind: str                   # asm, c or elf
    elf_sha256: str             # of program.elf
    source_sha256: str | None   # of the .asm, for kind asm
    entry: int


@dataclass(frozen=True)
class InitialState:
    """`initial`: the machine before step 0."""

    rip: int
    rsp: int
    brk: int
    stack_top: int
    stack_limit: int
    registers: Mapping[str, int]
    auxv: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class RunEnd:
    """`end`: how the run ended (absent from a killed recording)."""

    stop_reason: str
    exit_code: int | None
    signal: str | None
    fault: Fault | None
    instructions: int
    accesses: int
    rsp_changes: int
    truncated: bool
    error: str | None
    brk_start: int
    brk_end: int
    registers: Mapping[str, int]
    # Totals for `trace info` (traces recorded before they were added have neither):
    # access rows by source then "read"/"write", and the lowest RSP of the run.
    access_counts: Mapping[str, Mapping[str, int]] | None = None
    lowest_rsp: int | None = None


@dataclass(frozen=True)
class FileChecksum:
    """One entry of `files`: a file's size and SHA-256 when the recording completed."""

    bytes: int
    sha256: str


@dataclass(frozen=True)
class TraceMeta:
    """meta.json as a typed record; `raw` keeps every key for tools that want more."""

    format_version: int
    complete: bool
    program: ProgramInfo
    argv: tuple[str, ...]
    env: tuple[str, ...]
    warnings: tuple[str, ...]
    initial: InitialState
    end: RunEnd | None
    files: Mapping[str, FileChecksum] | None
    raw: dict[str, Any] = field(repr=False)
    # `pending`: a fast recording whose event tables are still to be materialised;
    # `materialised` once they are; None for a full recording.
    events: str | None = None

    @property
    def pending(self) -> bool:
        """True while the event tables are still to be materialised."""
        return self.events == EVENTS_PENDING


class _Invalid(Exception):
    """A value that does not fit the schema; `where` is its key path."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where} {problem}")


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(where, f"must be an object, not {_show(value)}")
    return value


def _key(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise _Invalid(f"{where}.{key}" if where else key, "is missing")
    return obj[key]


def _int(value: Any, where: str, lo: int = 0, hi: int = U64) -> int:
    # bool is an int in Python; JSON true is not a number.
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        span = "0 to 2^64-1" if (lo, hi) == (0, U64) else f"{lo} to {hi}"
        raise _Invalid(where, f"must be an integer from {span}, not {_show(value)}")
    return value


def _opt_int(value: Any, where: str, lo: int = 0, hi: int = U64) -> int | None:
    return None if value is None else _int(value, where, lo, hi)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(where, f"must be a string, not {_show(value)}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(where, f"must be true or false, not {_show(value)}")
    return value


def _choice(value: Any, where: str, choices: tuple[str | None, ...]) -> Any:
    if value not in choices or isinstance(value, bool):
        shown = ", ".join("null" if c is None else c for c in choices)
        raise _Invalid(where, f"must be one of {shown}, not {_show(value)}")
    return value


def _sha256(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise _Invalid(where, f"must be a SHA-256 in lowercase hex, not {_show(value)}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Invalid(where, f"must be a list of strings, not {_show(value)}")
    return tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(value))


def _registers(value: Any, where: str) -> Mapping[str, int]:
    regs = _obj(value, where)
    for name, v in regs.items():
        if not _NAME.fullmatch(name):
            raise _Invalid(where, f"has a key that is not a register name: {_show(name)}")
        _int(v, f"{where}.{name}")
    return MappingProxyType(dict(regs))


def _depth_ok(value: Any, limit: int) -> bool:
    """Whether `value` nests no deeper than `limit` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > limit:
                return False
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return True


def _program(value: Any) -> ProgramInfo:
    p = _obj(value, "program")
    kind = _choice(_key(p, "kind", "program"), "program.kind", ("asm", "c", "elf"))
    source = p.get("source_sha256")
    return ProgramInfo(
        path=_str(_key(p, "path", "program"), "program.path"),
        name=_str(_key(p, "name", "program"), "program.name"),
        kind=kind,
        elf_sha256=_sha256(_key(p, "elf_sha256", "program"), "program.elf_sha256"),
        source_sha256=None if source is None else _sha256(source, "program.source_sha256"),
        entry=_int(_key(p, "entry", "program"), "program.entry"))


def _initial(value: Any) -> InitialState:
    i = _obj(value, "initial")
    auxv = _key(i, "auxv", "initial")
    if not isinstance(auxv, list):
        raise _Invalid("initial.auxv", f"must be a list of [type, value] pairs, not {_show(auxv)}")
    pairs = []
    for n, pair in enumerate(auxv):
        if not isinstance(pair, list) or len(pair) != 2:
            raise _Invalid(f"initial.auxv[{n}]", f"must be a [type, value] pair, not "
                                                f"{_show(pair)}")
        pairs.append((_int(pair[0], f"initial.auxv[{n}][0]"),
                      _int(pair[1], f"initial.auxv[{n}][1]")))
    state = InitialState(
        **{k: _int(_key(i, k, "initial"), f"initial.{k}")
           for k in ("rip", "rsp", "brk", "stack_top", "stack_limit")},
        registers=_registers(_key(i, "registers", "initial"), "initial.registers"),
        auxv=tuple(pairs))
    if not state.stack_top - state.stack_limit <= state.rsp <= state.stack_top:
        raise _Invalid("initial.rsp", "is not inside the stack (stack_top - stack_limit to "
                                      "stack_top)")
    return state


def _fault(value: Any) -> Fault | None:
    if value is None:
        return None
    f = _obj(value, "end.fault")
    return Fault(
        signal=_str(_key(f, "signal", "end.fault"), "end.fault.signal"),
        cause=_str(_key(f, "cause", "end.fault"), "end.fault.cause"),
        step=_int(_key(f, "step", "end.fault"), "end.fault.step"),
        rip=_int(_key(f, "rip", "end.fault"), "end.fault.rip"),
        address=_opt_int(_key(f, "address", "end.fault"), "end.fault.address"),
        access=_choice(_key(f, "access", "end.fault"), "end.fault.access",
                       ("read", "write", "execute", None)))


def _end(value: Any) -> RunEnd | None:
    if value is None:
        return None
    e = _obj(value, "end")
    brk = _obj(_key(e, "brk", "end"), "end.brk")
    return RunEnd(
        stop_reason=_str(_key(e, "stop_reason", "end"), "end.stop_reason"),
        exit_code=_opt_int(_key(e, "exit_code", "end"), "end.exit_code", -(1 << 31),
                           (1 << 31) - 1),
        signal=_opt_str(_key(e, "signal", "end"), "end.signal"),
        fault=_fault(_key(e, "fault", "end")),
        instructions=_int(_key(e, "instructions", "end"), "end.instructions"),
        accesses=_int(_key(e, "accesses", "end"), "end.accesses"),
        rsp_changes=_int(_key(e, "rsp_changes", "end"), "end.rsp_changes"),
        truncated=_bool(_key(e, "truncated", "end"), "end.truncated"),
        error=_opt_str(_key(e, "error", "end"), "end.error"),
        brk_start=_int(_key(brk, "start", "end.brk"), "end.brk.start"),
        brk_end=_int(_key(brk, "end", "end.brk"), "end.brk.end"),
        registers=_registers(_key(e, "registers", "end"), "end.registers"),
        access_counts=_access_counts(e.get("access_counts")),
        lowest_rsp=_opt_int(e.get("lowest_rsp"), "end.lowest_rsp"))


def _access_counts(value: Any) -> dict[str, dict[str, int]] | None:
    if value is None:
        return None
    counts = _obj(value, "end.access_counts")
    out = {}
    for source, pair in counts.items():
        where = f"end.access_counts.{source}"
        if source not in SOURCES:
            raise _Invalid(where, f"is no source ({', '.join(SOURCES)})")
        pair = _obj(pair, where)
        out[source] = {k: _int(_key(pair, k, where), f"{where}.{k}") for k in ("read", "write")}
    return out


def _files(value: Any) -> Mapping[str, FileChecksum]:
    files = _obj(value, "files")
    out = {}
    for name, entry in files.items():
        if name not in TRACE_FILES or name == META_FILE:
            raise _Invalid("files", f"names {_show(name)}, which is not a file of a trace")
        e = _obj(entry, f"files.{name}")
        out[name] = FileChecksum(bytes=_int(_key(e, "bytes", f"files.{name}"),
                                            f"files.{name}.bytes"),
                                 sha256=_sha256(_key(e, "sha256", f"files.{name}"),
                                                f"files.{name}.sha256"))
    return MappingProxyType(out)


def _validate(raw: dict[str, Any], version: int) -> TraceMeta:
    complete = _bool(_key(raw, "complete", ""), "complete")
    end = _end(_key(raw, "end", ""))
    files = None if raw.get("files") is None else _files(raw["files"])
    if complete and (end is None or files is None):
        raise _Invalid("complete", "is true, but `end` or `files` is missing")
    if not complete and files is not None:
        raise _Invalid("files", "is written when a recording completes, but `complete` is "
                                "false")
    for key in ("limits", "seed", "stdin_bytes", "allow_read"):
        if key in raw and not _depth_ok(raw[key], 2):
            raise _Invalid(key, "is nested too deeply")
    if "stdin_bytes" in raw:
        _int(raw["stdin_bytes"], "stdin_bytes")
    if "allow_read" in raw:
        _strings(raw["allow_read"], "allow_read")
    if not _depth_ok(raw, MAX_DEPTH):
        raise _Invalid("meta.json", f"nests deeper than {MAX_DEPTH} levels")
    return TraceMeta(
        format_version=version,
        complete=complete,
        program=_program(_key(raw, "program", "")),
        argv=_strings(_key(raw, "argv", ""), "argv"),
        env=_strings(_key(raw, "env", ""), "env"),
        warnings=_strings(raw.get("warnings", []), "warnings"),
        initial=_initial(_key(raw, "initial", "")),
        end=end,
        files=files,
        raw=raw,
        events=_choice(raw.get("events"), "events", (None, EVENTS_PENDING, EVENTS_MATERIALISED)))


def parse_meta(data: bytes, path: Path) -> TraceMeta:
    """Parses and validates the bytes of a meta.json.

    Args:
        data: the file's bytes (the caller caps their size at MAX_META_BYTES).
        path: where they came from, for messages.

    Raises:
        TraceFormatError: not JSON, not a vmtrace trace, another format version, or a key
            missing or of the wrong type or range.
    """
    directory = path.parent
    try:
        raw = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a 5000-digit number
        raise TraceFormatError(f"{path} is corrupt: it is not valid JSON ({exc})") from None
    except RecursionError:
        raise TraceFormatError(f"{path} is corrupt: it nests deeper than any meta.json "
                               "(it is not one vmtrace wrote)") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise TraceFormatError(f"{path} does not describe a vmtrace trace")
    version = raw.get("format_version")
    if (not isinstance(version, int) or isinstance(version, bool)
            or version not in READABLE_VERSIONS):
        shown = _show(version)
        raise TraceFormatError(
            f"{directory} uses trace format version {shown}; this vmtrace reads versions "
            f"{' and '.join(map(str, READABLE_VERSIONS))} (upgrade vmtrace, or record the "
            "program again)"
        )
    try:
        return _validate(raw, version)
    except _Invalid as exc:
        raise TraceFormatError(f"{path} is not a valid vmtrace meta.json: {exc}") from None
