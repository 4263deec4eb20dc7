"""Wall and CPU seconds of a full materialisation (`trace materialize --jobs 1` and `--jobs 2`)
against a full `trace record` of the same program, on the `mixed` workload (large, huge).

    python bench/materialise_bench.py                 # mixed large and huge, one run each
    python bench/materialise_bench.py --sizes large --runs 3

The pending trace comes from `trace record --fast` when that option exists, else from the
full recording made pending (bench/fastlike.py: not timed). Runs are interleaved (record,
materialise -j1, materialise -j2, then again) and each materialised trace is compared with
the full recording, row for row. CPU = user + system of the whole process tree."""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from fastlike import differences, make_fast_like  # noqa: E402
from harness import WORKLOADS, build, run_process  # noqa: E402

TRACE = [sys.executable, "-m", "vmtrace.cli"]


def has_fast() -> bool:
    """Whether `trace record` has --fast (another branch adds it)."""
    done = subprocess.run([*TRACE, "record", "--help"], capture_output=True, text=True,
                          cwd=ROOT)
    return "--fast" in done.stdout


def _timed(cmd: list[str], log: Path):
    run = run_process(cmd, log.with_suffix(".out"), log.with_suffix(".err"))
    if run.exit_code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{log.with_suffix('.err').read_text()}")
    return run


def bench_size(size: str, runs: int, tmp: Path, fast_option: bool) -> dict:
    mixed = next(w for w in WORKLOADS if w.name == "mixed")
    exe = build(mixed, size, tmp)
    full, pending = tmp / f"{size}-full", tmp / f"{size}-pending"
    times: dict[str, list] = {"record": [], "record --fast": [], "materialize -j1": [],
                              "materialize -j2": []}
    for _ in range(runs):
        shutil.rmtree(full, ignore_errors=True)
        times["record"].append(_timed([*TRACE, "record", str(exe), "-o", str(full),
                                       "--no-echo"], tmp / "record"))
        shutil.rmtree(pending, ignore_errors=True)
        if fast_option:
            times["record --fast"].append(_timed(
                [*TRACE, "record", str(exe), "-o", str(pending), "--no-echo", "--fast"],
                tmp / "fast"))
        elif not (tmp / f"{size}-base").exists():
            shutil.copytree(full, tmp / f"{size}-base")
            make_fast_like(tmp / f"{size}-base")
        for jobs in (1, 2):
            work = tmp / f"{size}-j{jobs}"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(pending if fast_option else tmp / f"{size}-base", work)
            times[f"materialize -j{jobs}"].append(_timed(
                [*TRACE, "materialize", str(work), "--jobs", str(jobs)], tmp / f"mat{jobs}"))
            problems = differences(full, work)
            if problems:
                raise SystemExit(f"materialised {size} -j{jobs} differs: {problems[0]}")
            shutil.rmtree(work)
    import json

    end = json.loads((full / "meta.json").read_text())["end"]
    return {"size": size, "instructions": end["instructions"], "accesses": end["accesses"],
            "rsp_changes": end["rsp_changes"],
            **{name: (statistics.median(r.wall_s for r in rs),
                      statistics.median(r.cpu_s for r in rs)) for name, rs in times.items() if rs}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="large,huge")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    fast_option = has_fast()
    print(f"pending traces from: {'trace record --fast' if fast_option else 'fast-like conversion (not timed)'}")
    with tempfile.TemporaryDirectory(prefix="vmtrace-matbench-") as tmp:
        for size in args.sizes.split(","):
            row = bench_size(size, args.runs, Path(tmp), fast_option)
            record_wall, record_cpu = row["record"]
            print(f"\nmixed {size}: {row['instructions']:,} instructions, "
                  f"{row['accesses']:,} accesses, {row['rsp_changes']:,} RSP changes "
                  f"(medians of {args.runs})")
            print(f"  {'':18} {'wall s':>8} {'cpu s':>8} {'wall vs record':>15}")
            for name in ("record", "record --fast", "materialize -j1", "materialize -j2"):
                if name in row:
                    wall, cpu = row[name]
                    print(f"  {name:18} {wall:8.2f} {cpu:8.2f} {wall / record_wall:14.2f}x")
            if "record --fast" in row:
                for jobs in (1, 2):
                    total = row["record --fast"][0] + row[f"materialize -j{jobs}"][0]
                    print(f"  --fast + materialize -j{jobs}: {total:.2f} s wall = "
                          f"{total / record_wall:.2f}x record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
