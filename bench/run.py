"""`make bench`: builds the workloads in several sizes, runs the native binary, valgrind lackey,
Unicorn with no hooks and `trace record` on each; then issue 13's other figures (start-up,
`trace info` on the largest trace, `--fast` + `trace materialize`: bench/issue13.py); prints
the tables and writes bench/RESULTS.md.

    python bench/run.py                 # small, medium, large (+ memloop huge), 3 runs each
    python bench/run.py --quick         # small and medium only, about a minute
    python bench/run.py --sizes small --runs 1 --no-write   # the smoke test's tiny run"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))

import issue13  # noqa: E402
from harness import BENCH, SIZES, TIME, WORKLOADS, Bench, BenchError  # noqa: E402
from report import machine, markdown, print_tables, row  # noqa: E402

RESULTS = BENCH / "RESULTS.md"
LAST_RUN = BENCH / "out" / "last-run.json"  # raw rows of the last run, for --render-only
NOTES = BENCH / "notes.md"  # hand-written analysis appended to RESULTS.md


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small and medium sizes only (about a minute)")
    parser.add_argument("--sizes", help=f"comma-separated subset of {','.join(SIZES)}")
    parser.add_argument("--workloads",
                        help=f"comma-separated subset of {','.join(w.name for w in WORKLOADS)}")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool; medians reported")
    parser.add_argument("--huge-runs", type=int, default=1,
                        help="runs per tool of the trace-only sizes (huge; lackey alone takes "
                             "~100 s a run there)")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite bench/RESULTS.md from the last run (after editing notes.md)")
    args = parser.parse_args(argv)
    if args.sizes:
        args.sizes = tuple(args.sizes.split(","))
        unknown = set(args.sizes) - set(SIZES)
        if unknown:
            parser.error(f"unknown size(s): {', '.join(sorted(unknown))}")
    else:
        args.sizes = ("small", "medium") if args.quick else SIZES
    names = {w.name for w in WORKLOADS}
    args.workloads = tuple(args.workloads.split(",")) if args.workloads else tuple(names)
    if set(args.workloads) - names:
        parser.error(f"unknown workload(s): {', '.join(sorted(set(args.workloads) - names))}")
    if args.runs < 1 or args.huge_runs < 1:
        parser.error("--runs and --huge-runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Wide tables: keep the terminal's width, but do not squeeze them into 80 columns in a pipe.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 220)
    missing = [t for t in ("valgrind", "nasm", "ld", TIME) if shutil.which(t) is None]
    if missing:
        console.print(f"[bold red]error:[/] {', '.join(missing)} not installed "
                      "(sudo apt-get install valgrind nasm binutils time)")
        return 2
    if args.render_only:
        last = json.loads(LAST_RUN.read_text())
        _write(console, last["rows"], last["runs"], last["machine"], tuple(last["load"]),
               last["minutes"], last.get("sections", []))
        return 0
    started, load_start = time.perf_counter(), _load()
    bench = Bench(args.runs, lambda line: console.print(line, style="dim"), args.huge_runs)
    rows, sections = [], []
    try:
        for w in WORKLOADS:
            if w.name not in args.workloads:
                continue
            for size in SIZES:
                if size in args.sizes and size in w.sizes:
                    rows.append(row(bench.measure(w, size)))
        sections = _issue13(args, bench, lambda line: console.print(line, style="dim"))
    except (BenchError, RuntimeError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 1
    finally:
        bench.close()
    minutes = (time.perf_counter() - started) / 60
    print_tables(console, rows, args.runs, sections)
    console.print(f"{minutes:.1f} min; load average at start {load_start}, now {_load()}")
    if not args.no_write:
        info, load = machine(), (load_start, _load())
        LAST_RUN.write_text(json.dumps({"rows": rows, "runs": args.runs, "machine": info,
                                        "load": load, "minutes": minutes,
                                        "sections": sections}, indent=1))
        _write(console, rows, args.runs, info, load, minutes, sections)
    return 0


def _issue13(args: argparse.Namespace, bench: Bench, progress) -> list[dict]:
    """Start-up, `trace info` on the largest trace recorded above, and `--fast` +
    `trace materialize` on `mixed` at the largest of small/medium/large in this run."""
    sections = [issue13.startup(args.runs, progress),
                issue13.info(bench.largest_trace, args.runs, progress)]
    fast_size = next((s for s in ("large", "medium", "small") if s in args.sizes), None)
    if "mixed" in args.workloads and fast_size is not None:
        sections.append(issue13.fast(fast_size, args.runs, bench.scratch, progress))
    return [s.to_json() for s in sections]


def _write(console: Console, rows: list[dict], runs: int, info: dict[str, str],
           load: tuple[str, str], minutes: float, sections: list[dict]) -> None:
    notes = NOTES.read_text() if NOTES.exists() else None
    RESULTS.write_text(markdown(rows, runs, info, load, minutes, notes, sections))
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
