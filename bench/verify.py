"""Proves a recorder change lost nothing: records every example and test program and compares
each table, row for row, with a reference saved from the recorder before the change.

    python bench/verify.py --save            # before the change: write the reference
    python bench/verify.py                   # after it: compare (exit 1 on any difference)
    python bench/verify.py --only rsp_zoo,string_rep   # a subset (the test suite's check)

Tables are compared by content (each column's values, in row order), not by file bytes, so a
change of compression or Arrow layout passes as long as every reader sees the same rows. Also
compared: meta.json's `end` (how the run ended, counts, registers); and `end.access_counts` /
`end.lowest_rsp` are checked against the tables themselves."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REFERENCE = ROOT / "bench" / "verify-reference.json"
MAX_STEPS = 3_000_000  # every program here ends well before; a runaway one stays bounded


def programs() -> list[Path]:
    """Every example and test program that records by itself (no stdin or arguments)."""
    found = sorted((ROOT / "examples").glob("*.asm"))
    found += sorted((ROOT / "tests" / "programs").glob("*.asm"))
    found += sorted((ROOT / "tests" / "programs" / "c").glob("*.c"))
    return found


def _digest(values) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


def fingerprint(trace: Path) -> dict:
    """Per table: row count and one digest per column; plus meta.json's `end`.

    Tables are read through the reader's view (`TraceFiles.table`), which is what every
    consumer sees whatever the stored layout (tracer/format/layout.py)."""
    from tracer.format.reader import TraceFiles
    from tracer.format.schema import TABLES, file_name

    files = TraceFiles(trace)
    tables = {}
    for table in TABLES:
        if not (trace / file_name(table)).exists():
            continue
        data = files.table(table)
        tables[table] = {"rows": data.num_rows,
                         **{name: _digest(data.column(name).to_pylist())
                            for name in data.column_names}}
    end = json.loads((trace / "meta.json").read_text())["end"] or {}
    end = {k: v for k, v in end.items() if k not in ("access_counts", "lowest_rsp")}
    return {"tables": tables, "end": _digest(sorted(end.items()))}


def check_totals(trace: Path) -> list[str]:
    """`end.access_counts` and `end.lowest_rsp` against a scan of the tables."""
    from analysis import open_trace
    from analysis.summary import access_counts, max_stack_depth, totals_from_meta

    opened = open_trace(trace)
    totals = totals_from_meta(opened)
    if totals is None:
        return [] if not opened.complete else ["meta.json has no totals"]
    counts, depth = totals
    problems = []
    if counts != access_counts(opened):
        problems.append(f"end.access_counts {counts} != the table's {access_counts(opened)}")
    if depth != max_stack_depth(opened):
        problems.append(f"end.lowest_rsp gives depth {depth} != {max_stack_depth(opened)}")
    return problems


# The ELF's debug information names its source as given and (gcc) the working directory, and
# a small ELF's first page, recorded in memory_image, holds part of it: programs are built from
# a copy at this fixed place, by a relative path, so that the tables do not depend on where
# the checkout is.
FIXED = Path(tempfile.gettempdir()) / "vmtrace-verify-sources"


def _fixed_copy() -> Path:
    import shutil

    shutil.rmtree(FIXED, ignore_errors=True)
    shutil.copytree(ROOT / "examples", FIXED / "examples")
    shutil.copytree(ROOT / "tests" / "programs", FIXED / "tests" / "programs")
    return FIXED


def record_one(program: Path, out: Path) -> Path:
    import os

    from tracer.recorder import RecordOptions, record

    here = Path.cwd()
    os.chdir(FIXED)
    try:
        relative = program.relative_to(ROOT)
        return record(RecordOptions(program=relative, output=out, max_steps=MAX_STEPS)).trace
    finally:
        os.chdir(here)


def materialise_sweep(only: str | None = None) -> int:
    """Every program: its full recording against the same recording made pending
    (bench/fastlike.py) and materialised, with a slice starting at every keyframe."""
    import shutil

    sys.path.insert(0, str(ROOT / "bench"))
    from fastlike import differences, make_fast_like

    from tracer.replay.materialise import materialise

    chosen = programs()
    if only:
        chosen = [p for p in chosen if p.stem in set(only.split(","))]
    _fixed_copy()
    failures, done = [], 0
    with tempfile.TemporaryDirectory(prefix="vmtrace-materialise-") as tmp:
        for program in chosen:
            key = str(program.relative_to(ROOT))
            try:
                full = record_one(program, Path(tmp) / program.stem)
            except Exception:
                continue  # a program that cannot record has nothing to materialise
            steps = json.loads((full / "meta.json").read_text())["end"]["instructions"]
            # A slice at every keyframe (at most ~300), at two phases; then two slices.
            for every, jobs, slices in ((max(7, steps // 300), 2, 10 ** 6),
                                        (max(3, steps // 40) + 1, 1, 10 ** 6),
                                        (max(5, steps // 3), 2, None)):
                fast = Path(tmp) / f"{program.stem}-fast"
                shutil.rmtree(fast, ignore_errors=True)
                shutil.copytree(full, fast)
                try:
                    make_fast_like(fast, every)
                    materialise(fast, jobs=jobs, slices=slices)
                    problems = differences(full, fast)
                except Exception as exc:
                    problems = [f"{type(exc).__name__}: {exc}"]
                failures += [f"{key} (every {every}, jobs {jobs}): {p}" for p in problems]
            done += 1
            shutil.rmtree(full)
            shutil.rmtree(Path(tmp) / f"{program.stem}-fast", ignore_errors=True)
            print(f"{key}: {'ok' if not failures else len(failures)}", flush=True)
    for line in failures:
        print(line)
    print(f"{done} programs x 3 keyframe intervals: {len(failures)} differences")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", action="store_true", help="write the reference")
    parser.add_argument("--only", help="comma-separated program stems")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--materialise", action="store_true",
                        help="instead: full recording -> fast-like -> materialised, with "
                             "jobs 1 and 2 and small keyframe intervals, compared row for row")
    args = parser.parse_args(argv)
    if args.materialise:
        return materialise_sweep(args.only)
    chosen = programs()
    if args.only:
        wanted = set(args.only.split(","))
        chosen = [p for p in chosen if p.stem in wanted]
    known = json.loads(args.reference.read_text()) if args.reference.exists() else {}
    reference = {} if args.save else known
    results, failures = {}, []
    _fixed_copy()
    with tempfile.TemporaryDirectory(prefix="vmtrace-verify-") as tmp:
        for program in chosen:
            key = str(program.relative_to(ROOT))
            try:
                trace = record_one(program, Path(tmp) / program.stem)
            except Exception as exc:  # a program that cannot record: its error is its result
                results[key] = {"error": type(exc).__name__}
            else:
                results[key] = fingerprint(trace)
                failures += [f"{key}: {p}" for p in check_totals(trace)]
            if not args.save:
                want = reference.get(key)
                if want is None:
                    failures.append(f"{key}: not in the reference")
                elif want != results[key]:
                    diff = sorted(t for t in set(want.get("tables", {})) | set(
                        results[key].get("tables", {}))
                        if want.get("tables", {}).get(t) != results[key].get("tables", {}).get(t))
                    failures.append(f"{key}: differs ({', '.join(diff) or 'end/error'})")
    if args.save:
        if args.only:  # add to (or refresh in) the reference only the programs named
            results = {**known, **results}
        args.reference.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"saved {len(results)} programs to {args.reference}")
    for line in failures:
        print(line)
    if not args.save:
        print(f"{len(results) - len(failures)} of {len(results)} programs identical")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
