"""`--allocator auto` on a program making N malloc/free pairs: the time to record it, to find
its blocks (the register probe replays the run), and to check every access against them.

    python bench/heap_bench.py [N ...]      # default: 10000 100000 1000000"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SOURCE = BENCH / "workloads" / "malloc_pairs.c"


def run(n: int, workdir: Path) -> dict:
    from analysis import open_trace
    from analysis.heap_check import HeapChecker
    from analysis.scan import scan_accesses
    from analysis.symbols import Symbolizer
    from tracer.recorder import RecordOptions, record
    from vmtrace.commands.report import allocator_tracking

    out = workdir / f"pairs-{n}"
    t0 = time.perf_counter()
    done = record(RecordOptions(program=SOURCE, output=out, args=(str(n),)))
    t1 = time.perf_counter()
    trace = open_trace(out)
    frag, heap = allocator_tracking(trace, None)
    t2 = time.perf_counter()
    checker = HeapChecker(heap, Symbolizer(trace.symbols, trace.lines))
    scan_accesses(trace, [checker])
    errors = checker.result(trace)
    t3 = time.perf_counter()
    size = sum(f.stat().st_size for f in out.iterdir())
    return {"pairs": n, "instructions": done.instructions, "accesses": done.accesses,
            "trace MB": size / 1e6, "record s": t1 - t0, "blocks s": t2 - t1,
            "check s": t3 - t2, "blocks": len(heap.blocks), "errors": len(errors)}


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [10_000, 100_000, 1_000_000]
    with tempfile.TemporaryDirectory(prefix="vmtrace-heap-bench-") as tmp:
        for n in sizes:
            r = run(n, Path(tmp))
            print(" ".join(f"{k}={v:,.2f}" if isinstance(v, float) else f"{k}={v:,}"
                           for k, v in r.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
