"""Issue 13's figures beyond the workload tables, measured by `make bench` in the same run:
start-up (`trace record hello.asm`), `trace info` on the run's largest trace, and `trace record
--fast` + `trace materialize` against a full recording of `mixed` (skipped, with a note,
while `trace record` has no `--fast`). Plain data out (`Section`), rendered by run.py."""

from __future__ import annotations

import compileall
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import BENCH, ROOT, WORKLOADS, build, run_process
from startup import TARGET_S as STARTUP_TARGET_S
from startup import measure as measure_startup

INFO_TARGET_S = 1.0   # `trace info` on any trace
FAST_TARGET = 1.5     # `trace record --fast` time ÷ no-hook time
TRACE = [sys.executable, "-m", "vmtrace.cli"]


@dataclass
class Section:
    """One table of figures and the verdicts it gives, as plain data (saved in last-run.json)."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    verdicts: list[dict] = field(default_factory=list)  # target, measured, met (None: not measured)
    notes: list[str] = field(default_factory=list)

    def verdict(self, target: str, measured: str, met: bool | None) -> None:
        self.verdicts.append({"target": target, "measured": measured, "met": met})

    def to_json(self) -> dict:
        return asdict(self)


def _trace_executable() -> Path | None:
    found = Path(sys.executable).parent / "trace"
    return found if found.exists() else None


def startup(runs: int, progress) -> Section:
    """`trace record hello.asm` whole process, beside `python -c pass` and the no-hook
    loader on hello's ELF; rounds interleaved, medians."""
    section = Section("Start-up: hello.asm whole process (issue 13, item 3)",
                      ["command", "wall s (median)", "wall s (min)", "CPU s (median)",
                       "÷ no-hook loader (wall)"])
    trace = _trace_executable()
    if trace is None:
        section.notes.append("no `trace` executable beside this Python: start-up not measured")
        section.verdict(f"`trace record hello.asm` ≤ {STARTUP_TARGET_S} s", "not measured", None)
        return section
    # Bytecode as an installed package has it (an editable install never writes any while
    # PYTHONDONTWRITEBYTECODE is set; `make setup` compiles it too).
    for package in ("tracer", "analysis", "vmtrace", "timetravel"):
        compileall.compile_dir(ROOT / package, quiet=1)
    # A start-up run is short and noisy: five rounds per repetition of a full run (15 for
    # `make bench`), never fewer than five.
    rounds = max(runs * 5, 5) if runs >= 3 else 5
    progress(f"start-up: {rounds} interleaved rounds of trace record hello.asm, the no-hook "
             "loader and python -c pass")
    found = measure_startup({"trace record hello.asm": trace}, Path(sys.executable), rounds)
    nohook = next(t for t in found if t.label.startswith("no-hook"))
    for t in found:
        section.rows.append([t.label, f"{t.wall_median:.3f}", f"{min(t.wall):.3f}",
                             f"{t.cpu_median:.3f}", f"{t.wall_median / nohook.wall_median:.2f}×"])
    record = found[0]
    section.verdict(f"`trace record hello.asm` ≤ {STARTUP_TARGET_S} s (whole process)",
                    f"{record.wall_median:.3f} s wall, {record.cpu_median:.3f} s CPU (median of "
                    f"{rounds}); no-hook loader {nohook.wall_median:.3f} s, python -c pass "
                    f"{found[-1].wall_median:.3f} s", record.wall_median <= STARTUP_TARGET_S)
    return section


def info(trace: Path | None, runs: int, progress) -> Section:
    """`trace info` on the biggest trace the run recorded."""
    section = Section("`trace info` on the run's largest trace (issue 13, item 3)",
                      ["trace", "size MB", "access events", "wall s (median)", "CPU s (median)"])
    target = f"`trace info` < {INFO_TARGET_S:g} s on any trace"
    if trace is None:
        section.verdict(target, "not measured (no trace recorded)", None)
        return section
    import json

    end = json.loads((trace / "meta.json").read_text())["end"]
    size = sum(p.stat().st_size for p in trace.iterdir())
    logs = Path(tempfile.mkdtemp(prefix="info-", dir=BENCH / "out"))
    walls, cpus = [], []
    try:
        for i in range(max(runs, 3)):
            done = run_process([*TRACE, "info", str(trace)], logs / "info.out", logs / "info.err")
            if done.exit_code != 0:
                raise RuntimeError(f"trace info failed:\n{(logs / 'info.err').read_text()}")
            walls.append(done.wall_s)
            cpus.append(done.cpu_s)
            progress(f"trace info run {i + 1}: {done.wall_s:.2f} s")
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    name = json.loads((trace / "meta.json").read_text())["program"]["name"]
    section.rows.append([name, f"{size / 1e6:,.0f}", f"{end['accesses']:,}", f"{wall:.2f}",
                         f"{cpu:.2f}"])
    section.verdict(target, f"{wall:.2f} s wall, {cpu:.2f} s CPU on a {size / 1e6:,.0f} MB "
                    f"trace ({end['accesses'] / 1e6:,.1f} M events); it reads meta.json, not "
                    "the event tables, so the time does not grow with the trace",
                    wall < INFO_TARGET_S)
    return section


def _has_fast() -> bool:
    done = subprocess.run([*TRACE, "record", "--help"], capture_output=True, text=True,
                          cwd=ROOT)
    return "--fast" in done.stdout


def fast(size: str, runs: int, scratch: Path, progress) -> Section:
    """`trace record --fast`, then `trace materialize --jobs 1` and `--jobs 2` on a copy of
    its trace, against a full `trace record` and the no-hook loader, on `mixed` at `size`;
    rounds interleaved, medians."""
    section = Section(f"`trace record --fast` + `trace materialize` (issue 13, item 4; "
                      f"mixed {size})",
                      ["command", "wall s", "CPU s", "÷ no-hook (wall)", "÷ full record (wall)"])
    target = f"`trace record --fast` ≤ {FAST_TARGET}× no-hook (mixed)"
    if not _has_fast():
        section.notes.append("skipped: `trace record --help` has no `--fast` (the rows appear "
                             "once it does)")
        section.verdict(target, "not measured (no `--fast` yet)", None)
        return section
    mixed = next(w for w in WORKLOADS if w.name == "mixed")
    exe = build(mixed, size, scratch / "fast-build")
    logs = scratch / "fast-logs"
    logs.mkdir(exist_ok=True)
    full_dir, fast_dir, work = scratch / "fast-full", scratch / "fast-fast", scratch / "fast-m"
    commands = {
        "no-hook loader": [sys.executable, str(BENCH / "nohook.py"), str(exe)],
        "trace record (full)": [*TRACE, "record", str(exe), "-o", str(full_dir), "-q"],
        "trace record --fast": [*TRACE, "record", "--fast", str(exe), "-o", str(fast_dir), "-q"],
        "trace materialize --jobs 1": [*TRACE, "materialize", str(work), "--jobs", "1"],
        "trace materialize --jobs 2": [*TRACE, "materialize", str(work), "--jobs", "2"],
    }
    walls: dict[str, list[float]] = {k: [] for k in commands}
    cpus: dict[str, list[float]] = {k: [] for k in commands}
    for i in range(runs):
        for label, cmd in commands.items():
            if label.startswith("trace materialize"):
                shutil.rmtree(work, ignore_errors=True)
                shutil.copytree(fast_dir, work)  # a pending trace each time (not timed)
            done = run_process(cmd, logs / "out", logs / "err")
            if done.exit_code not in (0,) and not label.startswith("no-hook"):
                raise RuntimeError(f"{label} failed:\n{(logs / 'err').read_text()}")
            walls[label].append(done.wall_s)
            cpus[label].append(done.cpu_s)
            progress(f"mixed {size} run {i + 1}/{runs} {label:<28} {done.wall_s:7.2f} s")
    wall = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    nohook, full = wall["no-hook loader"], wall["trace record (full)"]
    for label in commands:
        section.rows.append([label, f"{wall[label]:.2f}", f"{cpu[label]:.2f}",
                             f"{wall[label] / nohook:.2f}×", f"{wall[label] / full:.2f}×"])
    for jobs in (1, 2):
        both = wall["trace record --fast"] + wall[f"trace materialize --jobs {jobs}"]
        section.rows.append([f"--fast + materialize --jobs {jobs}", f"{both:.2f}", "",
                             f"{both / nohook:.2f}×", f"{both / full:.2f}×"])
    ratio = wall["trace record --fast"] / nohook
    section.verdict(target, f"{ratio:.2f}× ({wall['trace record --fast']:.2f} s vs "
                    f"{nohook:.2f} s; CPU {cpu['trace record --fast'] / cpu['no-hook loader']:.2f}×)",
                    ratio <= FAST_TARGET)
    shutil.rmtree(work, ignore_errors=True)
    return section
