"""`trace batch` at scale: N small programs through `trace batch --jobs J` against a shell
loop of `trace record`, and one DuckDB query over a synthetic `accesses` table of many
rows in the dataset's layout (time and peak memory). Numbers go to bench/batch.md by hand.

    .venv/bin/python bench/batch_bench.py --programs 48 --jobs 2
    .venv/bin/python bench/batch_bench.py --rows 1000000000 --skip-batch
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRACE = str(Path(sys.executable).parent / "trace")
TEMPLATE = (ROOT / "examples" / "class" / "alice.asm").read_text()


def make_programs(directory: Path, n: int) -> list[Path]:
    """N variants of the class's correct answer, each summing 1..k for its own k."""
    directory.mkdir(parents=True)
    out = []
    for i in range(n):
        path = directory / f"student{i:03d}.asm"
        path.write_text(TEMPLATE.replace("mov rdi, 100", f"mov rdi, {50 + i}"))
        out.append(path)
    return out


def time_batch(inputs: Path, dataset: Path, jobs: int) -> float:
    started = time.monotonic()
    subprocess.run([TRACE, "batch", str(inputs), "-o", str(dataset), "--jobs", str(jobs),
                    "--no-reports"], check=True, capture_output=True)
    return time.monotonic() - started


def time_loop(programs: list[Path], out: Path) -> float:
    """What a teacher's shell script would do: one `trace record` per program."""
    script = "; ".join(f"{TRACE} record {p} -o {out / p.stem} -q" for p in programs)
    started = time.monotonic()
    subprocess.run(["bash", "-c", script], check=True, capture_output=True)
    return time.monotonic() - started


def big_query(rows: int, workdir: Path, programs: int = 100) -> dict:
    """Writes `rows` synthetic access rows as `programs` hive partitions (DuckDB's COPY),
    then times one aggregate over all of them with a 1 GB memory limit, in a child process
    whose peak RSS is measured."""
    import duckdb

    data = workdir / "accesses"
    # Spills (a partitioned COPY buffers per partition) stay in the temporary directory.
    con = duckdb.connect(config={"memory_limit": "1GB",
                                 "temp_directory": str(workdir / "spill")})
    started = time.monotonic()
    con.execute(f"""COPY (SELECT 'p' || (i % {programs}) AS program, i AS step,
                   4198400 + (i % 64) * 4 AS rip, 140737488347136 - (i % 4096) * 8 AS addr,
                   8::UINTEGER AS size, (i % 3 = 0) AS is_write,
                   CASE WHEN i % 5 = 0 THEN 'implicit' ELSE 'explicit' END AS source
                   FROM range({rows}) t(i))
                   TO '{data}' (FORMAT parquet, PARTITION_BY (program), COMPRESSION zstd)""")
    written = time.monotonic() - started
    size = sum(f.stat().st_size for f in data.rglob("*.parquet"))
    query = (f"SELECT program, count(*) AS n, sum(is_write::INT) AS writes, "
             f"min(addr) AS lowest FROM read_parquet('{data}/*/*.parquet', "
             "hive_partitioning = true) GROUP BY program ORDER BY n DESC LIMIT 5")
    child = ("import duckdb, resource, sys, time\n"
             "con = duckdb.connect(config={'memory_limit': '1GB'})\n"
             "con.execute('SET enable_progress_bar = false')\n"
             "t = time.monotonic(); con.sql(sys.argv[1]).fetchall()\n"
             "print(time.monotonic() - t, "
             "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", child, query], check=True,
                          capture_output=True, text=True)
    # The last line: anything DuckDB printed before it is not the measurement.
    seconds, rss_kb = done.stdout.strip().splitlines()[-1].split()
    return {"rows": rows, "write_s": written, "bytes": size, "query_s": float(seconds),
            "peak_rss_mb": int(rss_kb) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=48)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=0, help="synthetic access rows (0: skip)")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmtrace-batch-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_batch:
            programs = make_programs(work / "in", args.programs)
            batch = time_batch(work / "in", work / "ds", args.jobs)
            loop = time_loop(programs, work / "loop")
            print(f"{args.programs} programs: trace batch --jobs {args.jobs}: {batch:.1f} s; "
                  f"shell loop of trace record: {loop:.1f} s; speed-up {loop / batch:.2f}x "
                  f"(load average {os.getloadavg()[0]:.1f})")
        if args.rows:
            r = big_query(args.rows, work)
            print(f"{r['rows']:,} access rows: written in {r['write_s']:.0f} s "
                  f"({r['bytes'] / 1e9:.2f} GB Parquet); query {r['query_s']:.1f} s, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB (memory_limit 1GB)")


if __name__ == "__main__":
    main()
