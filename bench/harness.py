"""Builds the benchmark workloads and runs each tool on them as whole processes, timing wall
clock and peak RSS per child. Plain data out (`Measurement`); rendering lives in report.py."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKLOAD_DIR = BENCH / "workloads"
OUT = BENCH / "out"

TIME = "/usr/bin/time"  # GNU time, for %M (peak RSS)
LACKEY = ("valgrind", "--tool=lackey", "--trace-mem=yes", "--vex-iropt-level=0")


class BenchError(Exception):
    """A tool failed or the tools disagree about the program's outcome."""


class Tool(Enum):
    NATIVE = "native"
    LACKEY_FILE = "lackey→file"
    LACKEY_NULL = "lackey→/dev/null"
    NOHOOK = "unicorn no-hook"
    TRACE = "trace record"


@dataclass(frozen=True)
class Workload:
    """One NASM program in workloads/, sized by a single `-D` symbol."""

    name: str
    param: str
    sizes: dict[str, int]
    about: str
    # Sizes too long for lackey's file log within the time budget: native, no-hook, trace and
    # lackey to /dev/null run once each (the `huge` recording of 100 M events is there for
    # its peak RSS and for throughput ratios where start-up costs are amortised).
    trace_only_sizes: frozenset[str] = frozenset()
    # "asm": nasm -D<param>=n; "c": compiled like `trace record prog.c` with -D<param>=n.
    language: str = "asm"

    @property
    def file(self) -> str:
        return f"{self.name}.{'c' if self.language == 'c' else 'asm'}"


WORKLOADS = (
    # The headline: the shape of compiled code (calls, frames, push/pop, a string copy).
    Workload("mixed", "ITERS",
             {"small": 10_000, "medium": 100_000, "large": 1_000_000, "huge": 6_000_000},
             "table load, store, two push/pop, a call into a framed function "
             "(push rbp/leave/ret), a 64-byte rep movsb every 64 iterations",
             trace_only_sizes=frozenset({"huge"})),
    Workload("memloop", "ITERS",
             {"small": 100, "medium": 1_000, "large": 5_000, "huge": 50_000},
             "read-modify-write sweeps over an 8 KiB array (the memory-heavy loop)",
             trace_only_sizes=frozenset({"huge"})),
    Workload("recursion", "N", {"small": 16, "medium": 21, "large": 25},
             "naive recursive fib(N): call/ret, push/pop, stack frames"),
    Workload("repstring", "REPS", {"small": 2, "medium": 10, "large": 50},
             "rep stosq/movsq/movsb/stosb over 16 KiB buffers"),
    Workload("churn", "ROUNDS", {"small": 10, "medium": 100, "large": 500},
             "brk grow/shrink and mmap/munmap of 64 KiB, touching every 64 bytes"),
    Workload("malloc_pairs", "PAIRS", {"small": 1_000, "medium": 10_000, "large": 100_000},
             "C (glibc, -O0, static): malloc/free pairs of varying small sizes",
             language="c"),
)
SIZES = ("small", "medium", "large", "huge")


@dataclass(frozen=True)
class Run:
    """One whole-process run of one tool."""

    wall_s: float
    cpu_s: float  # user + system, all threads: robust to other load on the machine
    max_rss_kb: int
    exit_code: int


@dataclass
class Measurement:
    """Everything measured for one workload at one size, in one bench run."""

    workload: str
    size: str
    param: str
    value: int
    instructions: int = 0
    events: int = 0               # trace's access rows (user and kernel side)
    rsp_changes: int = 0
    trace_bytes: int = 0          # size of accesses.arrows
    trace_bytes_all: int = 0      # every file of the trace directory
    lackey_events: int | None = None   # L + S + 2*M lines
    lackey_instructions: int | None = None
    exit_code: int | None = None
    n_runs: int = 0
    usual_runs: int = 0           # what the other sizes had (n_runs differs for trace-only ones)
    runs: dict[Tool, list[Run]] = field(default_factory=dict)
    nohook_emulation_s: list[float] = field(default_factory=list)

    def wall(self, tool: Tool) -> float | None:
        runs = self.runs.get(tool)
        return statistics.median(r.wall_s for r in runs) if runs else None

    def cpu(self, tool: Tool) -> float | None:
        runs = self.runs.get(tool)
        return statistics.median(r.cpu_s for r in runs) if runs else None

    def rss_mb(self, tool: Tool) -> float | None:
        runs = self.runs.get(tool)
        return statistics.median(r.max_rss_kb for r in runs) / 1024 if runs else None


def run_process(cmd: list[str], stdout: Path, stderr: Path, cwd: Path = ROOT) -> Run:
    """Runs `cmd` to completion under GNU time; wall time and the child's own peak RSS.

    The RSS comes from `/usr/bin/time -f %M`, not from our own wait4: Python spawns children
    with vfork, and Linux folds the pre-exec memory (ours) into the child's ru_maxrss.

    Args:
        cmd: the command line.
        stdout: file that receives the child's standard output.
        stderr: file that receives the child's standard error.
        cwd: working directory.

    Returns:
        Wall seconds from spawn to reap, peak RSS in KiB, exit status (128 + N: signal N).
    """
    rusage = stderr.with_suffix(".time")
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        start = time.perf_counter()
        done = subprocess.run([TIME, "-f", "%U %S %M", "-o", str(rusage), *cmd],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd)
        wall = time.perf_counter() - start
    # GNU time exits with the child's status (128 + N if signal N killed it) and puts its
    # own "Command exited with non-zero status" line before the figure.
    user, system, peak_kb = rusage.read_text().split()[-3:]
    return Run(wall, float(user) + float(system), int(peak_kb), done.returncode)


def build(workload: Workload, size: str, into: Path) -> Path:
    """Assembles and links one workload at one size with the real nasm and ld.

    Returns:
        The static ELF.

    Raises:
        BenchError: nasm or ld failed.
    """
    value = workload.sizes[size]
    into.mkdir(parents=True, exist_ok=True)
    if workload.language == "c":
        return _build_c(workload, value, into / f"{workload.name}-{size}")
    obj = into / f"{workload.name}-{size}.o"
    exe = into / f"{workload.name}-{size}"
    for cmd in (["nasm", "-f", "elf64", f"-D{workload.param}={value}",
                 str(WORKLOAD_DIR / workload.file), "-o", str(obj)],
                ["ld", "-o", str(exe), str(obj)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return exe


def _build_c(workload: Workload, value: int, exe: Path) -> Path:
    """Compiles a C workload exactly as `trace record prog.c` does (tracer.compile_c)."""
    from tracer.compile_c import compile_c
    from tracer.errors import TracerError

    with tempfile.TemporaryDirectory(dir=exe.parent) as tmp:
        try:
            built = compile_c(WORKLOAD_DIR / workload.file, Path(tmp),
                              cc_flags=(f"-D{workload.param}={value}",))
        except TracerError as exc:
            raise BenchError(f"compiling {workload.file} failed: {exc}") from exc
        shutil.copyfile(built.elf, exe)
    exe.chmod(0o755)
    return exe


def count_lackey(log: Path) -> tuple[int, int]:
    """Counts a lackey --trace-mem log.

    Returns:
        (memory events, instructions): ` L`/` S` lines count one event, ` M` (modify) lines
        two (a read and a write); `I` lines are instructions.
    """
    counts = {b"\n L": 0, b"\n S": 0, b"\n M": 0, b"\nI ": 0}
    tail = b"\n"
    with open(log, "rb") as f:
        while block := f.read(1 << 24):
            # Prefix the previous block's last bytes so a marker split across blocks counts.
            data = tail + block
            for key in counts:
                counts[key] += data.count(key)
            tail = data[-2:]  # too short to hold a whole 3-byte marker: nothing counts twice
    events = counts[b"\n L"] + counts[b"\n S"] + 2 * counts[b"\n M"]
    return events, counts[b"\nI "]


class Bench:
    """Runs every tool on each workload size, interleaving tools within each repetition so
    that noise from other processes on the machine lands on all of them alike."""

    def __init__(self, runs: int, progress: Callable[[str], None], long_runs: int = 1):
        self.runs = runs
        self.long_runs = long_runs  # for the trace-only sizes (`huge`): lackey takes minutes
        self.progress = progress
        OUT.mkdir(exist_ok=True)
        # One scratch folder per bench run, so that two runs (a test and `make bench`) never
        # share binaries, logs or traces.
        self.scratch = Path(tempfile.mkdtemp(prefix="run-", dir=OUT))
        self.largest_trace: Path | None = None  # kept for `trace info` (bench/issue13.py)
        self.build_dir = self.scratch / "build"
        self.trace_dir = self.scratch / "traces"
        self.log_dir = self.scratch / "logs"
        for d in (self.build_dir, self.trace_dir, self.log_dir):
            d.mkdir()

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def measure(self, workload: Workload, size: str) -> Measurement:
        """Builds one workload size and runs every tool on it, `runs` times each.

        Returns:
            Counts from the trace and lackey's log, and every run's time and peak RSS.

        Raises:
            BenchError: a build or a tool failed, or the tools disagree on the exit status.
        """
        exe = build(workload, size, self.build_dir)
        m = Measurement(workload.name, size, workload.param, workload.sizes[size])
        tools = [Tool.NATIVE, Tool.NOHOOK, Tool.TRACE]
        tools += ([Tool.LACKEY_NULL] if size in workload.trace_only_sizes
                  else [Tool.LACKEY_FILE, Tool.LACKEY_NULL])
        exits: dict[Tool, set[int]] = {}
        m.n_runs = self.long_runs if size in workload.trace_only_sizes else self.runs
        m.usual_runs = self.runs
        for i in range(m.n_runs):
            for tool in tools:
                run = self._run_tool(tool, exe, m)
                m.runs.setdefault(tool, []).append(run)
                exits.setdefault(tool, set()).add(run.exit_code)
                self.progress(f"{workload.name:<10} {size:<6} run {i + 1}/{m.n_runs} "
                              f"{tool.value:<17} {run.wall_s:7.2f} s "
                              f"{run.max_rss_kb / 1024:7.1f} MB")
        codes = set().union(*exits.values())
        if len(codes) != 1:
            raise BenchError(f"{workload.name}-{size}: tools disagree on the exit status: "
                             + ", ".join(f"{t.value}={sorted(c)}" for t, c in exits.items()))
        m.exit_code = codes.pop()
        return m

    def _keep_if_largest(self, trace: Path, size: int) -> None:
        """Keeps the biggest trace of the run (for `trace info`), removes every other."""
        kept = self.largest_trace
        if kept is not None and sum(p.stat().st_size for p in kept.iterdir()) >= size:
            shutil.rmtree(trace)
            return
        if kept is not None:
            shutil.rmtree(kept)
        self.largest_trace = trace.rename(self.scratch / "largest-trace")

    def _run_tool(self, tool: Tool, exe: Path, m: Measurement) -> Run:
        stdout = self.log_dir / f"{tool.name.lower()}.stdout"
        stderr = self.log_dir / f"{tool.name.lower()}.stderr"
        trace = self.trace_dir / exe.name
        lackey_log = self.log_dir / f"{exe.name}.lackey"
        cmd = {
            Tool.NATIVE: [str(exe)],
            Tool.NOHOOK: [sys.executable, str(BENCH / "nohook.py"), str(exe)],
            Tool.TRACE: [sys.executable, "-m", "vmtrace.cli", "record", str(exe),
                         "-o", str(trace), "-q"],
            Tool.LACKEY_FILE: [*LACKEY, f"--log-file={lackey_log}", str(exe)],
            Tool.LACKEY_NULL: [*LACKEY, "--log-file=/dev/null", str(exe)],
        }[tool]
        run = run_process(cmd, stdout, stderr)
        if tool is Tool.NOHOOK:
            if run.exit_code not in (0, 1):
                raise BenchError(f"no-hook run of {exe.name} failed:\n{stderr.read_text()}")
            result = json.loads(stdout.read_text())
            m.nohook_emulation_s.append(result["emulation_s"])
            run = Run(run.wall_s, run.cpu_s, run.max_rss_kb, result["exit_code"])
        elif tool is Tool.TRACE:
            if run.exit_code != 0:
                raise BenchError(f"trace record {exe.name} failed:\n{stderr.read_text()}")
            end = json.loads((trace / "meta.json").read_text())["end"]
            if end["stop_reason"] != "exit":
                raise BenchError(f"trace record {exe.name} stopped by {end['stop_reason']}")
            m.instructions, m.events = end["instructions"], end["accesses"]
            m.rsp_changes = end["rsp_changes"]
            m.trace_bytes = (trace / "accesses.arrows").stat().st_size
            m.trace_bytes_all = sum(p.stat().st_size for p in trace.iterdir())
            run = Run(run.wall_s, run.cpu_s, run.max_rss_kb, end["exit_code"])
            self._keep_if_largest(trace, m.trace_bytes_all)
        elif tool is Tool.LACKEY_FILE:
            m.lackey_events, m.lackey_instructions = count_lackey(lackey_log)
            lackey_log.unlink()
        return run
