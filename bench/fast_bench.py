"""`trace record --fast` against Unicorn with no hooks (bench/nohook.py, same loader) and a
full `trace record`, on the mixed workload: whole processes, interleaved (A B C A B C ...),
CPU seconds (user+sys, GNU time) and wall seconds, medians. Then the keyframes' own cost,
measured in one process (CPU seconds spent taking them, and how many).

    python bench/fast_bench.py [--sizes large,huge] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ITERS = {"small": 100_000, "large": 1_000_000, "huge": 6_000_000}

_KEYFRAME_COST = r"""
import json, sys, time
from pathlib import Path
import tracer.fast_record as fr
spent = [0.0, 0]
take = fr.FastRecording._keyframe
def timed(self):
    t = time.process_time(); take(self); spent[0] += time.process_time() - t; spent[1] += 1
fr.FastRecording._keyframe = timed
from tracer.recorder import RecordOptions
t = time.process_time()
res = fr.record_fast(RecordOptions(program=Path(sys.argv[1]), output=Path(sys.argv[2])))
print(json.dumps({"record_cpu": time.process_time() - t, "keyframe_cpu": spent[0],
                  "keyframes": spent[1], "instructions": res.instructions}))
"""


def build(size: str, workdir: Path) -> Path:
    obj, elf = workdir / f"mixed_{size}.o", workdir / f"mixed_{size}"
    subprocess.run(["nasm", "-f", "elf64", f"-DITERS={ITERS[size]}",
                    str(ROOT / "bench" / "workloads" / "mixed.asm"), "-o", str(obj)], check=True)
    subprocess.run(["ld", "-o", str(elf), str(obj)], check=True)
    return elf


def timed(cmd: list[str]) -> tuple[float, float]:
    """(CPU seconds user+sys, wall seconds) of one process."""
    done = subprocess.run(["/usr/bin/time", "-f", "%e %U %S", *cmd], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    wall, user, system = (float(x) for x in done.stderr.strip().splitlines()[-1].split())
    return user + system, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="large,huge")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    python = sys.executable
    trace = [python, "-m", "vmtrace.cli"]
    with tempfile.TemporaryDirectory(prefix="vmtrace-fast-bench-") as tmp:
        work = Path(tmp)
        for size in args.sizes.split(","):
            elf = build(size, work)
            tools = {
                "nohook": [python, "bench/nohook.py", str(elf)],
                "record --fast": [*trace, "record", "--fast", "-q", str(elf), "-o",
                                  str(work / "fast")],
                "record": [*trace, "record", "-q", str(elf), "-o", str(work / "full")],
            }
            times: dict[str, list[tuple[float, float]]] = {t: [] for t in tools}
            for _ in range(args.runs):
                for tool, cmd in tools.items():
                    times[tool].append(timed(cmd))
            cpu = {t: statistics.median(c for c, _ in v) for t, v in times.items()}
            wall = {t: statistics.median(w for _, w in v) for t, v in times.items()}
            for tool in tools:
                print(f"mixed {size:<5} {tool:<14} cpu {cpu[tool]:6.2f} s ({cpu[tool] / cpu['nohook']:4.2f}x nohook)"
                      f"   wall {wall[tool]:6.2f} s ({wall[tool] / wall['nohook']:4.2f}x)")
            cost = json.loads(subprocess.run(
                [python, "-c", _KEYFRAME_COST, str(elf), str(work / "kf")], cwd=ROOT,
                capture_output=True, text=True, check=True).stdout)
            size_mb = sum(p.stat().st_size for p in (work / "fast").iterdir()) / 1e6
            print(f"mixed {size:<5} keyframes: {cost['keyframes']} taking {cost['keyframe_cpu']:.3f} "
                  f"CPU s of {cost['record_cpu']:.2f} in-process; fast trace {size_mb:.2f} MB")


if __name__ == "__main__":
    main()
