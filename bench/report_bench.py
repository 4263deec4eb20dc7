"""Scale check for `trace report` (issue 5): on a big trace, time and peak RSS of the
report and the size of its HTML. Targets: 80 M events in under 20 s, under 1.5 GB, and
an HTML file under 5 MB whatever the size.

The big trace is a real recording of examples/data_bss.asm whose accesses and rsp tables
are replaced by synthetic ones written with the real trace writer (recording 80 M events
takes minutes; the report's cost depends only on the tables):

    .venv/bin/python bench/report_bench.py --events 20000000
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tracer.format.schema import CHECKSUMS_FILE, RSP_CAUSES, SOURCES  # noqa: E402
from tracer.format.writer import TableWriter, file_checksums, write_meta  # noqa: E402

BATCH = 1 << 20


def synthesize(trace: Path, events: int) -> None:
    """Replaces accesses/rsp with `events` accesses and events/4 RSP changes: a loop that
    pushes and pops on the stack, walks a .bss buffer and reads .rodata."""
    meta = json.loads((trace / "meta.json").read_text())
    ir = meta["initial"]["rsp"]
    symbols = pa.ipc.open_stream(trace / "symbols.arrows").read_all().to_pylist()
    addr_of = {s["name"]: s["addr"] for s in symbols}
    buffer, table = addr_of["buffer"], addr_of["table"]
    steps_total = events  # about one access per instruction
    # The new tables get new checksum lines; the recorded ones' lines go.
    journal = trace / CHECKSUMS_FILE
    journal.write_text("".join(line for line in journal.read_text().splitlines(True)
                               if not line.startswith(("accesses.arrows ", "rsp.arrows "))))
    acc = TableWriter(trace, "accesses")
    sources = pa.array(SOURCES)
    for lo in range(0, events, BATCH):
        i = np.arange(lo, min(lo + BATCH, events), dtype=np.uint64)
        kind = i % 10
        depth = (i // 7) % 64 * 8 + 8
        addr = np.where(kind < 5, ir - depth,
                        np.where(kind < 8, buffer + (i % 16) * 8, table + (i % 4) * 8))
        is_write = (kind % 2 == 0) & (kind < 8)
        src = np.where(kind < 3, 1, 0).astype(np.int8)  # implicit for some stack rows
        batch = pa.RecordBatch.from_arrays([
            pa.array(i), pa.array(0x401000 + (i % 40)), pa.array(addr.astype(np.uint64)),
            pa.array(np.full(len(i), 8, np.uint32)), pa.array(is_write),
            pa.DictionaryArray.from_arrays(pa.array(src), sources),
            pa.array(i), pa.nulls(len(i), pa.uint64())], schema=acc.schema)
        acc.write(batch)
    acc.close()
    rsp = TableWriter(trace, "rsp")
    causes = pa.array(RSP_CAUSES)
    n_rsp = events // 4
    for lo in range(0, n_rsp, BATCH):
        j = np.arange(lo, min(lo + BATCH, n_rsp), dtype=np.uint64)
        new = ir - ((j % 128) // 2 * 8 + 16 * (j % 2))
        cause = np.where(j % 2 == 0, 0, 1).astype(np.int8)  # push / pop
        cause = np.where(j % 64 == 1, 2, np.where(j % 64 == 2, 3, cause)).astype(np.int8)
        batch = pa.RecordBatch.from_arrays([
            pa.array(j * 4), pa.array(0x401000 + (j % 40)), pa.array(new + 8),
            pa.array(new.astype(np.uint64)),
            pa.DictionaryArray.from_arrays(pa.array(cause), causes)], schema=rsp.schema)
        rsp.write(batch)
    rsp.close()
    meta["end"]["instructions"] = steps_total
    meta["end"]["accesses"] = events
    meta["end"]["rsp_changes"] = n_rsp
    meta["files"] = file_checksums(trace)
    write_meta(trace, {k: v for k, v in meta.items() if k not in ("format", "format_version")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "report")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    trace = args.out / "trace"
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    subprocess.run([bin_dir / "trace", "record", ROOT / "examples" / "data_bss.asm", "-o", trace,
                    "-q"], check=True, capture_output=True)
    t0 = time.time()
    synthesize(trace, args.events)
    size_mb = sum(p.stat().st_size for p in trace.iterdir()) / 1e6
    print(f"synthesized {args.events:,} accesses in {time.time() - t0:.1f} s "
          f"(trace: {size_mb:.0f} MB)")
    html = args.out / "report.html"
    done = subprocess.run(["/usr/bin/time", "-v", bin_dir / "trace", "report", trace, "-o", html],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    h, m, s = (float(x or 0) for x in wall.groups())
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", done.stderr).group(1))
              for kind in ("User", "System"))
    # On a shared machine wall time includes waiting for a core; CPU time does not.
    print(json.dumps({"events": args.events, "report_seconds": round(h * 3600 + m * 60 + s, 1),
                      "report_cpu_seconds": round(cpu, 1),
                      "peak_rss_mb": round(rss_kb / 1024), "html_mb":
                      round(html.stat().st_size / 1e6, 2)}))


if __name__ == "__main__":
    main()
