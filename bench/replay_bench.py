"""Replay benchmark: records a ~11-million-step program, builds its replay index, and times
`trace state/stack/mem/who-wrote` (whole CLI runs, Python start-up included) at steps spread
over the run. Prints a table; writes bench/out/replay.json.

Run: .venv/bin/python bench/replay_bench.py [--iterations N]"""

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRACE = [sys.executable, "-m", "vmtrace.cli"]

PROGRAM = """
section .bss
    table resq 4096
section .text
    global _start
work:                       ; a frame, a local and a read-modify-write of table[i % 4096]
    push rbp
    mov rbp, rsp
    sub rsp, 16
    mov [rbp - 8], rdi
    mov rax, rdi
    and rax, 4095
    mov rdx, [table + rax*8]
    add rdx, rdi
    mov [table + rax*8], rdx
    leave
    ret
_start:
    mov rcx, {iterations}
.loop:
    mov rdi, rcx
    push rcx
    call work
    pop rcx
    dec rcx
    jnz .loop
    mov eax, 60
    xor edi, edi
    syscall
"""


def run(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run([*TRACE, *args], capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"trace {' '.join(args)} failed:\n{done.stderr}")
    return elapsed, done.stdout


def _in_process_latencies(trace: Path, picks: list[int]) -> dict[str, list[float]]:
    """The same queries called in-process after the imports (what a notebook or the explorer
    pays per query)."""
    sys.path.insert(0, str(ROOT))
    from timetravel import open_session, resolve_address, stack_at, state_at, who_wrote

    session = open_session(trace)
    table = resolve_address(session.trace, "table+64")
    out: dict[str, list[float]] = {}
    for step in picks:
        for name, call in (("state_at", lambda: state_at(session, step)),
                           ("stack_at", lambda: stack_at(session, step)),
                           ("who_wrote", lambda: who_wrote(session, table, step))):
            t0 = time.perf_counter()
            call()
            out.setdefault(name, []).append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=666_666)  # 17 steps each
    parser.add_argument("--queries", type=int, default=5)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vmtrace-replay-bench-"))
    try:
        source = work / "replay_bench.asm"
        source.write_text(PROGRAM.format(iterations=opts.iterations))
        trace = work / "trace"
        record_s, _ = run("record", str(source), "-o", str(trace), "-q")
        info = json.loads(run("info", str(trace), "--json")[1])
        trace_bytes = sum(p.stat().st_size for p in trace.iterdir())
        index_s, index_out = run("index", str(trace), "--json")
        index = json.loads(index_out)
        steps = info["instructions"]
        rng = random.Random(0)
        picks = [steps - 1] + [rng.randrange(steps) for _ in range(opts.queries - 1)]
        latencies: dict[str, list[float]] = {}
        for step in picks:
            for name, args in (
                ("state", ("state", str(trace), str(step), "--json")),
                ("stack", ("stack", str(trace), str(step), "--json")),
                ("mem", ("mem", str(trace), "table+64", "256", "--step", str(step), "--json")),
                ("who-wrote", ("who-wrote", str(trace), "table+64", "--step", str(step),
                               "--json")),
            ):
                latencies.setdefault(name, []).append(run(*args)[0])
        startup_s = min(run("--help")[0] for _ in range(3))
        in_process = _in_process_latencies(trace, picks)
        verify_s, _ = run("replay", str(trace), "--verify")
        result = {
            "instructions": steps,
            "accesses": info["accesses"]["read"] + info["accesses"]["write"],
            "trace_bytes": trace_bytes,
            "record_seconds": round(record_s, 2),
            "index_seconds": round(index_s, 2),
            "index_keyframe_seconds": index["keyframe_seconds"],
            "index_write_index_seconds": index["write_index_seconds"],
            "index_bytes": index["bytes"],
            "keyframes": index["keyframes"],
            "keyframe_every": index["every"],
            "writes_indexed": index["cpu_writes"] + index["kernel_writes"],
            "cli_startup_seconds": round(startup_s, 3),
            "query_seconds": {k: {"median": round(statistics.median(v), 3),
                                  "max": round(max(v), 3)} for k, v in latencies.items()},
            "in_process_query_seconds": {k: {"median": round(statistics.median(v), 4),
                                             "max": round(max(v), 4)}
                                         for k, v in in_process.items()},
            "replay_verify_seconds": round(verify_s, 2),
        }
        out = ROOT / "bench" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "replay.json").write_text(json.dumps(result, indent=2))
        print(f"{steps:,} steps, {result['accesses']:,} accesses, trace "
              f"{trace_bytes / 1e6:.1f} MB, recorded in {record_s:.1f} s")
        print(f"index: {index_s:.2f} s wall ({index['keyframe_seconds']} s keyframes, "
              f"{index['write_index_seconds']} s write index), "
              f"{index['bytes'] / 1e6:.1f} MB, {index['keyframes']} keyframes every "
              f"{index['every']:,} steps, {result['writes_indexed']:,} writes")
        print(f"CLI start-up alone (trace --help): {startup_s:.2f} s")
        for name, v in result["query_seconds"].items():
            print(f"  trace {name:<10} median {v['median']:.2f} s   max {v['max']:.2f} s "
                  "(whole CLI run)")
        for name, v in result["in_process_query_seconds"].items():
            print(f"  {name:<16} median {v['median'] * 1000:.0f} ms   max "
                  f"{v['max'] * 1000:.0f} ms (in-process, imports done)")
        print(f"trace replay --verify: {verify_s:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the index sits beside the trace, in here


if __name__ == "__main__":
    main()
