"""Fuzzing the readers with damaged traces (issue 9, "How it is checked"): random meta.json
mutations, random byte flips, cuts, deletions and symlink/FIFO swaps of every file of a real
recording, complete or killed. Every reader must answer, or exit non-zero with one line on
stderr and no traceback, and never hang (docs/security.md).

Deterministic: fixed seeds and counts. VMTRACE_FUZZ_CASES=N runs N cases per test instead
(for a longer local run)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from analysis_tables import reseal, simulate_kill
from conftest import PROGRAMS, record
from trace_readers import by_subprocess, in_process, reader_commands
from tracer.format.schema import FAST_FILES, META_FILE, TABLES, TRACE_FILES

CASES = int(os.environ.get("VMTRACE_FUZZ_CASES", "0"))
# (A full recording: it has none of the files a fast recording adds.)
OTHER_FILES = sorted(TRACE_FILES - {META_FILE} - FAST_FILES)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz") / "trace"
    record(PROGRAMS / "every_table.asm", out, "--stdin", "-", stdin=b"hi there")
    return out


def _copy(base: Path, where: Path, killed: bool) -> Path:
    if where.exists():
        shutil.rmtree(where)
    shutil.rmtree(Path(f"{where}.index"), ignore_errors=True)
    trace = Path(shutil.copytree(base, where))
    return simulate_kill(trace) if killed else trace


# -- meta.json ---------------------------------------------------------------------------------
def _random_value(rng: random.Random):
    return rng.choice([
        None, True, False, 0, -1, 1 << 63, (1 << 64) - 1, 1 << 64, 1 << 70, -(1 << 70), 0.5,
        float("inf"), "", "lots", "x" * 10_000, "\x1b]52;c;eA==\x07[red]", [], [1], {},
        {"a": 1}, [[[[[[[[[[1]]]]]]]]]], {"bytes": 1, "sha256": "0" * 64},
    ])


def _paths(value, prefix=()):
    """Every (container, key) position inside a parsed JSON value."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((value, k))
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((value, i))
            out.extend(_paths(v, prefix + (i,)))
    return out


def mutate_meta(trace: Path, rng: random.Random) -> str:
    """One random change of meta.json; returns what it did."""
    path = trace / META_FILE
    text = path.read_text()
    kind = rng.choice(["replace", "replace", "delete", "add", "rename-file", "text-cut",
                       "text-flip", "deep", "huge-number"])
    if kind == "text-cut":
        n = rng.randrange(len(text))
        path.write_text(text[:n])
        return f"cut at {n}"
    if kind == "text-flip":
        data = bytearray(text.encode())
        i = rng.randrange(len(data))
        data[i] = rng.randrange(256)
        path.write_bytes(bytes(data))
        return f"byte {i} set"
    if kind == "deep":
        path.write_text(rng.choice("[{") * rng.choice([100, 1000, 100_000]))
        return "deep nesting"
    if kind == "huge-number":
        path.write_text(text.replace("0", "9" * 5000, 1))
        return "5000-digit number"
    meta = json.loads(text)
    container, key = rng.choice(_paths(meta))
    if kind == "replace":
        container[key] = _random_value(rng)
    elif kind == "delete":
        del container[key]
    elif kind == "add":
        target = container[key] if isinstance(container[key], dict) else meta
        target[rng.choice(["extra", "files", "end", "program", "/dev/zero", "../x"])] = \
            _random_value(rng)
    else:
        files = meta.get("files")
        if isinstance(files, dict) and files:
            name = rng.choice(sorted(files))
            files[rng.choice(["/dev/zero", "../meta.json", "accesses.arrows.bak",
                              "program.elf"])] = files.pop(name)
    try:
        path.write_text(json.dumps(meta))
    except ValueError:  # a float("inf") in strict JSON
        path.write_text(json.dumps(meta, allow_nan=True))
    return f"{kind} at {key!r}"


# -- the other files ---------------------------------------------------------------------------
def damage_file(trace: Path, rng: random.Random) -> str:
    """One random damage of one file other than meta.json; returns what it did."""
    name = rng.choice(OTHER_FILES)
    path = trace / name
    kind = rng.choice(["flip", "flip", "flip", "cut", "cut", "delete", "empty", "append",
                       "symlink", "fifo", "directory", "swap"])
    regular = path.is_file() and not path.is_symlink()
    if not regular and kind not in ("symlink", "fifo", "directory"):
        kind = "symlink"  # an earlier damage made it something else already
    if kind == "flip":
        data = bytearray(path.read_bytes())
        if not data:
            return f"{name}: empty, left as is"
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
    elif kind == "cut":
        data = path.read_bytes()
        path.write_bytes(data[:rng.randrange(len(data) + 1)])
    elif kind == "delete":
        path.unlink()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "append":
        with open(path, "ab") as f:
            f.write(bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))))
    elif kind == "swap":
        other = trace / rng.choice([n for n in OTHER_FILES if n != name])
        if other.is_file() and not other.is_symlink():
            shutil.copyfile(other, path)
    else:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        if kind == "symlink":
            path.symlink_to(rng.choice(["/dev/zero", "/etc/passwd", "/nonexistent",
                                        str(trace / "meta.json"), "."]))
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            path.mkdir()
    return f"{name}: {kind}"


def _readers_for(case: int, trace: Path, scratch: Path) -> list[tuple[list[str], str]]:
    commands = list(reader_commands(trace, scratch).values())
    picks = {0, 1 + case % (len(commands) - 1), 1 + (case * 7 + 3) % (len(commands) - 1)}
    return [commands[i] for i in sorted(picks)]


def _run_case(trace: Path, scratch: Path, case: int, what: str) -> None:
    for args, stdin in _readers_for(case, trace, scratch):
        outcome = in_process(args, stdin=stdin, timeout=30)
        assert outcome.problem() is None, f"case {case} ({what}):\n{outcome.report()}"


@pytest.mark.parametrize("killed", [False, True], ids=["complete", "killed"])
def test_meta_json_mutations(base, tmp_path, killed):
    rng = random.Random(9_000 + killed)
    for case in range(CASES or 25):
        trace = _copy(base, tmp_path / "t", killed)
        what = mutate_meta(trace, rng)
        _run_case(trace, tmp_path, case, what)


@pytest.mark.parametrize("killed", [False, True], ids=["complete", "killed"])
def test_file_damage(base, tmp_path, killed):
    rng = random.Random(9_100 + killed)
    for case in range(CASES or 25):
        trace = _copy(base, tmp_path / "t", killed)
        what = "; ".join(damage_file(trace, rng) for _ in range(rng.choice([1, 1, 2])))
        _run_case(trace, tmp_path, case, what)


def test_damage_past_the_checksums(base, tmp_path):
    """Damage a forger resealed (journal and `files` rewritten to match): the bytes decode
    or not, the values are anything; readers still answer or refuse with one line."""
    rng = random.Random(9_200)
    for case in range(CASES or 20):
        trace = _copy(base, tmp_path / "t", killed=False)
        # (Of the tables this trace has: keyframes.arrows and pages.arrows are --fast's.)
        name = rng.choice([n for n in OTHER_FILES if n.endswith(".arrows")
                           and (trace / n).exists()])
        data = bytearray((trace / name).read_bytes())
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        (trace / name).write_bytes(bytes(data))
        reseal(trace)
        _run_case(trace, tmp_path, case, f"{name} flipped and resealed")


def _forged_value(type_: pa.DataType, rng: random.Random):
    if pa.types.is_integer(type_):
        bits, signed = type_.bit_width, pa.types.is_signed_integer(type_)
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        return rng.choice([lo, hi, 0, 1, 7, 4096, 0x401000, 0x7FFF_FFFF_E000,
                           rng.randint(lo, hi)])
    if pa.types.is_boolean(type_):
        return rng.random() < 0.5
    if pa.types.is_dictionary(type_):
        return rng.choice(["explicit", "kernel", "push", "ret", "bogus", ""])
    if pa.types.is_string(type_):
        return rng.choice(["", "map", "brk", "unmap", "rwx", "zz", "stack", "[red]\x1b",
                           "[]", '[{"action": 1}]', "{", "unsupported", "i386", "x86_64"])
    if pa.types.is_fixed_size_list(type_):
        return [_forged_value(type_.value_type, rng) for _ in range(type_.list_size)]
    return rng.choice([b"", b"\x00" * 5, bytes(range(256)) * 40])


def forge_values(trace: Path, rng: random.Random) -> str:
    """Rewrites one table with a few values changed to anything of the column's type (a
    valid stream), and reseals the checksums."""
    table = rng.choice(sorted(TABLES))
    path = trace / f"{table}.arrows"
    if not path.exists() or not path.stat().st_size:  # absent or empty in a killed trace
        return f"{table}: absent, left as is"
    original = pa.ipc.open_stream(str(path)).read_all()
    rows = original.to_pylist()
    changed = []
    for _ in range(rng.randint(1, 3) if rows else 0):
        row, field = rng.randrange(len(rows)), rng.choice(list(original.schema))
        rows[row][field.name] = _forged_value(field.type, rng)
        changed.append(f"{field.name}[{row}]")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, original.schema) as w:
        w.write_table(pa.Table.from_pylist(rows, schema=original.schema))
    reseal(trace)
    return f"{table}: {', '.join(changed) or 'rewritten'}"


def test_forged_values_past_the_checksums(base, tmp_path):
    """Valid streams with values vmtrace never writes (unaligned regions, unknown words,
    memory images where nothing is mapped), resealed: answered or refused, one line."""
    rng = random.Random(9_400)
    for case in range(CASES or 20):
        trace = _copy(base, tmp_path / "t", killed=rng.random() < 0.3)
        what = forge_values(trace, rng)
        _run_case(trace, tmp_path, case, what)


def test_a_few_damaged_traces_by_subprocess(base, tmp_path):
    """The same promise for a real process (its exit status and stderr as a shell sees
    them), for one damage of each kind."""
    rng = random.Random(9_300)
    for case, killed in enumerate([False, True]):
        trace = _copy(base, tmp_path / "t", killed)
        what = mutate_meta(trace, rng) if case % 2 else damage_file(trace, rng)
        for args, stdin in _readers_for(case, trace, tmp_path)[:2]:
            outcome = by_subprocess(args, stdin=stdin)
            assert outcome.problem() is None, f"case {case} ({what}):\n{outcome.report()}"
