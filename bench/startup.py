"""Start-up cost (issue 13, item 3): `trace record hello.asm` (as typed, its summary into a
pipe, and with -q) as a whole process against `python -c pass` and the no-hook loader on the
same program, interleaved run by run.

    python bench/startup.py                      # 15 rounds, this checkout's `trace`
    python bench/startup.py --runs 30 --against /work/main/.venv/bin/trace

Wall and CPU (user + system of the child, from wait4) per run; medians reported."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HELLO = ROOT / "examples" / "hello.asm"
TARGET_S = 0.25  # issue 13: `trace record hello.asm` whole process


@dataclass
class Timings:
    """Every run of one command: wall and CPU seconds."""

    label: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """Runs `cmd` with its output discarded.

    Returns:
        (wall seconds from spawn to reap, user + system CPU seconds of the child and its
        own children, exit status). A failed command's stderr is shown.
    """
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: nothing waits on a reader
        start = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            err.seek(0)
            sys.stderr.write(err.read().decode(errors="replace")[-2000:])
    return wall, usage.ru_utime + usage.ru_stime, child.returncode


def build_hello(into: Path) -> Path:
    """hello.asm as a static ELF, for the no-hook loader (plain nasm and ld: the loader is
    measured, not the build)."""
    obj, exe = into / "hello.o", into / "hello"
    for cmd in (["nasm", "-f", "elf64", str(HELLO), "-o", str(obj)],
                ["ld", "-o", str(exe), str(obj)]):
        subprocess.run(cmd, check=True, capture_output=True)
    return exe


def commands(trace: dict[str, Path], python: Path, scratch: Path) -> dict[str, list[str]]:
    """The commands compared, by label: each `trace` executable's `record hello.asm` (and
    with -q), the no-hook loader on hello's ELF, and `python -c pass`."""
    exe = build_hello(scratch)
    out = {}
    for i, (label, binary) in enumerate(trace.items()):
        # As typed (the summary printed, here into a pipe), and with -q.
        out[label] = [str(binary), "record", str(HELLO), "-o", str(scratch / f"t-{i}")]
        out[label.replace("record", "record -q")] = [*out[label], "-q"]
    out["no-hook loader (hello ELF)"] = [str(python), str(BENCH / "nohook.py"), str(exe)]
    out["python -c pass"] = [str(python), "-c", "pass"]
    return out


def measure(trace: dict[str, Path], python: Path, runs: int) -> list[Timings]:
    """Runs every command `runs` times, interleaved (A B C A B C ...), after one warm-up each.

    Args:
        trace: label -> a `trace` executable whose `record hello.asm` is timed.
        python: the interpreter for the no-hook loader and `python -c pass`.
        runs: rounds.

    Returns:
        One `Timings` per command, in the order of `commands()`.

    Raises:
        RuntimeError: a command failed.
    """
    with tempfile.TemporaryDirectory(prefix="vmtrace-startup-") as tmp:
        scratch = Path(tmp)
        cmds = commands(trace, python, scratch)
        found = {label: Timings(label) for label in cmds}
        for round_ in range(runs + 1):
            for label, cmd in cmds.items():
                wall, cpu, code = timed(cmd, scratch)
                if code != 0:
                    raise RuntimeError(f"{label} failed (exit status {code}): {' '.join(cmd)}")
                if round_:  # round 0 warms the page cache and the .pyc files
                    found[label].wall.append(wall)
                    found[label].cpu.append(cpu)
        return list(found.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--against", type=Path, action="append", default=[],
                        help="another `trace` executable to time beside this checkout's")
    args = parser.parse_args()
    here = Path(sys.executable).parent / "trace"
    trace = {"trace record (this checkout)": here}
    trace.update({f"trace record ({p})": p for p in args.against})
    if shutil.which("nasm") is None:
        sys.exit("nasm is not installed")
    for t in measure(trace, Path(sys.executable), args.runs):
        print(f"{t.label:<52} wall {t.wall_median:.3f} s (min {min(t.wall):.3f})  "
              f"CPU {t.cpu_median:.3f} s (min {min(t.cpu):.3f})")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
