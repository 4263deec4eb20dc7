"""Viewer benchmark: how fast `trace view` answers a step change on a ~10-million-step trace.

Records the replay benchmark's program (calls, frames, pushes, a table in .bss) at ~10 M
steps, builds its replay index, starts a real `trace view` process and times, over HTTP on
loopback, the page's one request per step change (`/api/view`: state, stack, disassembly,
output and a 256-byte memory pane) for what a user does: holding → (consecutive steps),
Shift+→ (100 steps), and seeks to random steps (slider drags, timeline clicks). Prints
median and p95 per pattern; writes bench/out/viewer.json.

Run: .venv/bin/python bench/viewer_bench.py [--iterations N]"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from replay_bench import PROGRAM, TRACE, run  # noqa: E402

TARGET_MEDIAN_MS, TARGET_P95_MS = 50, 150


def fetch(base: str, path: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=120) as res:
        body = json.loads(res.read())
    return (time.perf_counter() - t0) * 1000, body


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=600_000)  # 17 steps each
    parser.add_argument("--requests", type=int, default=200)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vmtrace-viewer-bench-"))
    server = None
    try:
        source = work / "viewer_bench.asm"
        source.write_text(PROGRAM.format(iterations=opts.iterations))
        trace = work / "trace"
        record_s, _ = run("record", str(source), "-o", str(trace), "-q")
        index_s, _ = run("index", str(trace))
        server = subprocess.Popen([*TRACE, "view", str(trace), "--no-open", "--port", "0"],
                                  stdout=subprocess.PIPE, text=True, cwd=ROOT)
        base = server.stdout.readline().split()[2].rstrip("/")
        first = {name: fetch(base, f"/api/{name}")[0] for name in ("meta", "timeline", "source")}
        steps = fetch(base, "/api/meta")[1]["steps"]
        mem = "&addr=table%2B64&len=256"
        rng = random.Random(0)
        patterns: dict[str, list[float]] = {"hold → (step + 1)": [], "Shift+→ (step + 100)": [],
                                            "random seek": []}
        start = rng.randrange(steps // 2)
        fetch(base, f"/api/view?step={start}{mem}")  # where the user was before holding →
        for i in range(1, opts.requests + 1):
            patterns["hold → (step + 1)"].append(fetch(base, f"/api/view?step={start + i}{mem}")[0])
        for i in range(1, opts.requests // 4 + 1):
            patterns["Shift+→ (step + 100)"].append(
                fetch(base, f"/api/view?step={start + opts.requests + 100 * i}{mem}")[0])
        for _ in range(opts.requests // 4):
            patterns["random seek"].append(
                fetch(base, f"/api/view?step={rng.randrange(steps)}{mem}")[0])
        every = [v for vs in patterns.values() for v in vs]
        result = {
            "steps": steps,
            "record_seconds": round(record_s, 1),
            "index_seconds": round(index_s, 1),
            "first_load_ms": {k: round(v, 1) for k, v in first.items()},
            "view_ms": {k: {"n": len(v), "median": round(statistics.median(v), 1),
                            "p95": round(percentile(v, 95), 1)} for k, v in patterns.items()},
            "all_view_ms": {"median": round(statistics.median(every), 1),
                            "p95": round(percentile(every, 95), 1)},
            "targets_ms": {"median": TARGET_MEDIAN_MS, "p95": TARGET_P95_MS},
        }
        out = ROOT / "bench" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "viewer.json").write_text(json.dumps(result, indent=2))
        print(f"{steps:,} steps; recorded in {record_s:.1f} s, index {index_s:.1f} s; first "
              "load " + ", ".join(f"{k} {v:.0f} ms" for k, v in first.items()))
        print(f"{'pattern':24} {'n':>4} {'median ms':>10} {'p95 ms':>8}")
        for name, v in result["view_ms"].items():
            print(f"{name:24} {v['n']:>4} {v['median']:>10} {v['p95']:>8}")
        a = result["all_view_ms"]
        print(f"{'all':24} {len(every):>4} {a['median']:>10} {a['p95']:>8}   (targets: median "
              f"< {TARGET_MEDIAN_MS}, p95 < {TARGET_P95_MS})")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
