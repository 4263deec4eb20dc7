"""Turns measurements into plain rows and target verdicts, then renders them twice: rich tables
for the terminal and Markdown for bench/RESULTS.md (with the machine and tool versions)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import ROOT, Measurement, Tool

M = 1e6


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def row(m: Measurement) -> dict[str, float | int | str | None]:
    """Flattens one measurement into the table's numbers.

    Args:
        m: one workload at one size.

    Returns:
        Counts, median times, rates, bytes/event, peak RSS and ratios by name; None where a
        tool did not run at that size.
    """
    wall = {t: m.wall(t) for t in Tool}
    ips = {t: _ratio(m.instructions, wall[t]) for t in Tool}
    trace_eps = _ratio(m.events, wall[Tool.TRACE])
    # Where lackey ran only to /dev/null (no log to count), its events are the trace's: the
    # two counts are equal at every size where both are measured.
    lackey_events = m.lackey_events if m.lackey_events is not None else m.events
    lackey_file_eps = _ratio(m.lackey_events, wall[Tool.LACKEY_FILE])
    lackey_null_eps = _ratio(lackey_events, wall[Tool.LACKEY_NULL])
    emu = sorted(m.nohook_emulation_s)
    return {
        "workload": m.workload,
        "size": f"{m.size} ({m.param}={m.value:,})"
                + (f" ×{m.n_runs}" if m.n_runs != m.usual_runs else ""),
        "size_name": m.size,
        "instructions": m.instructions, "events": m.events, "lackey_events": m.lackey_events,
        "lackey_instructions": m.lackey_instructions, "rsp_changes": m.rsp_changes,
        "native_s": wall[Tool.NATIVE], "nohook_s": wall[Tool.NOHOOK],
        "nohook_emulation_s": emu[len(emu) // 2] if emu else None,
        "trace_s": wall[Tool.TRACE], "trace_cpu_s": m.cpu(Tool.TRACE),
        "nohook_cpu_s": m.cpu(Tool.NOHOOK), "lackey_file_s": wall[Tool.LACKEY_FILE],
        "lackey_null_s": wall[Tool.LACKEY_NULL],
        "native_ips": ips[Tool.NATIVE], "nohook_ips": ips[Tool.NOHOOK],
        "trace_ips": ips[Tool.TRACE], "lackey_null_ips": ips[Tool.LACKEY_NULL],
        "trace_eps": trace_eps, "lackey_file_eps": lackey_file_eps,
        "lackey_null_eps": lackey_null_eps,
        "bytes_per_event": _ratio(m.trace_bytes, m.events),
        "bytes_per_event_all": _ratio(m.trace_bytes_all, m.events),
        "trace_rss_mb": m.rss_mb(Tool.TRACE), "nohook_rss_mb": m.rss_mb(Tool.NOHOOK),
        "lackey_rss_mb": m.rss_mb(Tool.LACKEY_FILE),
        "lackey_null_cpu_s": m.cpu(Tool.LACKEY_NULL),
        "vs_lackey_file": _ratio(trace_eps, lackey_file_eps),
        "vs_lackey_null": _ratio(trace_eps, lackey_null_eps),
        "vs_nohook_time": _ratio(wall[Tool.TRACE], wall[Tool.NOHOOK]),
    }


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured in this run


def headline_verdicts(rows: list[dict]) -> list[Verdict]:
    """Issue 13's targets on the `mixed` workload, at its largest size in this run.

    Args:
        rows: from `row()`, in run order (sizes ascending).

    Returns:
        Events/s against lackey→/dev/null, time against no-hook, bytes per access event
        counting every file of the trace.
    """
    mixed = [r for r in rows if r["workload"] == "mixed" and r["lackey_null_eps"] is not None]
    if not mixed:
        return [Verdict("`mixed` workload", "not measured", None)]
    r = mixed[-1]
    cpu = _ratio(r["lackey_null_cpu_s"] / (r["lackey_events"] or r["events"]),
                 r["trace_cpu_s"] / r["events"])
    ev = r["vs_lackey_null"]
    t = r["vs_nohook_time"]
    bpe = r["bytes_per_event_all"]
    return [
        Verdict("events/s ≥ 12× lackey→/dev/null (mixed)",
                f"{ev:.1f}× at {r['size']} ({r['trace_eps'] / M:.2f} vs "
                f"{r['lackey_null_eps'] / M:.2f} M events/s); per CPU-second: {cpu:.1f}×",
                ev >= 12),
        Verdict("record time ≤ 4× no-hook (mixed)",
                f"{t:.1f}× at {r['size']} ({r['trace_s']:.2f} s vs {r['nohook_s']:.2f} s); "
                f"CPU time: {_ratio(r['trace_cpu_s'], r['nohook_cpu_s']):.1f}×", t <= 4),
        Verdict("≤ 3 bytes per access event, all files (mixed)",
                f"{bpe:.2f} B/event at {r['size']} (accesses.arrows alone: "
                f"{r['bytes_per_event']:.2f})", bpe <= 3),
    ]


def verdicts(rows: list[dict]) -> list[Verdict]:
    """Checks the issue's four targets on the memory-heavy workload's rows.

    Args:
        rows: from `row()`, in run order (sizes ascending).

    Returns:
        One verdict per target; the time ratio is judged at the largest size lackey ran at
        and, when bigger, at the largest size of all.
    """
    mem = [r for r in rows if r["workload"] == "memloop"]
    by_size = {r["size_name"]: r for r in mem}
    with_lackey = [r for r in mem if r["lackey_null_eps"] is not None]
    compared = with_lackey[-1] if with_lackey else None
    largest = mem[-1] if mem else None
    out = []
    huge = by_size.get("huge")
    if huge and huge["events"] >= 100_000_000:
        rss = huge["trace_rss_mb"]
        out.append(Verdict("peak RSS < 500 MB recording ≥ 100 M events",
                           f"{rss:.0f} MB for {huge['events'] / M:.0f} M events", rss < 500))
    else:
        out.append(Verdict("peak RSS < 500 MB recording ≥ 100 M events",
                           "not measured (run the `huge` size)", None))
    if largest:
        bpe = largest["bytes_per_event"]
        out.append(Verdict("≤ 4 bytes per access event (memloop)",
                           f"{bpe:.2f} B/event at {largest['size']}", bpe <= 4))
    # The verdict is on wall time; the CPU-time ratio (all threads) is given beside it because
    # other load on a shared machine inflates wall time, and a two-thread recorder more so.
    if compared:
        x = compared["vs_lackey_null"]
        cpu = _ratio(compared["lackey_null_cpu_s"] / (compared["lackey_events"]
                                                      or compared["events"]),
                     compared["trace_cpu_s"] / compared["events"])
        out.append(Verdict("events/s ≥ 8× lackey→/dev/null (memloop)",
                           f"{x:.1f}× at {compared['size']} "
                           f"({compared['trace_eps'] / M:.2f} vs "
                           f"{compared['lackey_null_eps'] / M:.2f} M events/s); "
                           f"per CPU-second: {cpu:.1f}×", x >= 8))
    for r in [compared] + ([largest] if largest is not compared else []):
        if r:
            x = r["vs_nohook_time"]
            cpu = _ratio(r["trace_cpu_s"], r["nohook_cpu_s"])
            out.append(Verdict("record time ≤ 6× no-hook (memloop)",
                               f"{x:.1f}× at {r['size']} ({r['trace_s']:.2f} s vs "
                               f"{r['nohook_s']:.2f} s); CPU time: {cpu:.1f}×", x <= 6))
    return out


# -- formatting ---------------------------------------------------------------------------
def _f(x, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def _mps(x) -> str:
    return "—" if x is None else f"{x / M:.2f}"


TIME_COLUMNS = ("workload", "size", "instructions", "events (trace)", "events (lackey)",
                "native s", "no-hook s", "no-hook emu s", "no-hook CPU s", "trace s",
                "trace CPU s", "lackey→file s", "lackey→null s")
RATE_COLUMNS = ("workload", "size", "native Minstr/s", "no-hook Minstr/s", "trace Minstr/s",
                "trace Mev/s", "lackey→file Mev/s", "lackey→null Mev/s", "bytes/event",
                "bytes/event (all files)",
                "peak RSS MB trace / no-hook / lackey", "trace÷lackey→file (ev/s)",
                "trace÷lackey→null (ev/s)", "trace÷no-hook (time)")


def time_cells(r: dict) -> list[str]:
    return [r["workload"], r["size"], f"{r['instructions']:,}", f"{r['events']:,}",
            _f(r["lackey_events"], ","), _f(r["native_s"], ".3f"), _f(r["nohook_s"], ".2f"),
            _f(r["nohook_emulation_s"], ".2f"), _f(r["nohook_cpu_s"], ".2f"),
            _f(r["trace_s"], ".2f"), _f(r["trace_cpu_s"], ".2f"),
            _f(r["lackey_file_s"], ".2f"), _f(r["lackey_null_s"], ".2f")]


def rate_cells(r: dict) -> list[str]:
    rss = " / ".join(_f(r[k], ".0f") for k in ("trace_rss_mb", "nohook_rss_mb", "lackey_rss_mb"))
    return [r["workload"], r["size"], _mps(r["native_ips"]), _mps(r["nohook_ips"]),
            _mps(r["trace_ips"]), _mps(r["trace_eps"]), _mps(r["lackey_file_eps"]),
            _mps(r["lackey_null_eps"]), _f(r["bytes_per_event"], ".2f"),
            _f(r.get("bytes_per_event_all"), ".2f"), rss,
            _f(r["vs_lackey_file"], ".1f") + ("×" if r["vs_lackey_file"] else ""),
            _f(r["vs_lackey_null"], ".1f") + ("×" if r["vs_lackey_null"] else ""),
            _f(r["vs_nohook_time"], ".1f") + ("×" if r["vs_nohook_time"] else "")]


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def print_tables(console: Console, rows: list[dict], runs: int,
                 sections: list[dict] = ()) -> None:
    for title, columns, cells in (
            (f"Whole-process times (median of {runs})", TIME_COLUMNS, time_cells),
            ("Rates, footprint and ratios", RATE_COLUMNS, rate_cells)):
        table = Table(title=title)
        for i, c in enumerate(columns):
            table.add_column(c, justify="left" if i < 2 else "right")
        for r in rows:
            table.add_row(*cells(r))
        console.print(table)
    for section in sections:
        table = Table(title=section["title"])
        for i, c in enumerate(section["columns"]):
            table.add_column(c, justify="left" if i == 0 else "right")
        for cells in section["rows"]:
            table.add_row(*cells)
        if section["rows"]:
            console.print(table)
        for note in section["notes"]:
            console.print(f"{section['title']}: {note}")
    for title, found in (("Headline targets (issue 13, mixed)",
                          headline_verdicts(rows) + section_verdicts(sections)),
                         ("Targets (issue 4, memloop)", verdicts(rows))):
        table = Table(title=title)
        for c in ("target", "measured", "verdict"):
            table.add_column(c)
        for v in found:
            table.add_row(v.target, v.measured, _mark(v.met).strip("*"))
        console.print(table)


def section_verdicts(sections: list[dict]) -> list[Verdict]:
    """The verdicts of bench/issue13.py's sections (start-up, `trace info`, `--fast`)."""
    return [Verdict(v["target"], v["measured"], v["met"])
            for section in sections for v in section["verdicts"]]


def _section_markdown(section: dict) -> list[str]:
    out = [f"## {section['title']}", ""]
    if section["rows"]:
        out += ["| " + " | ".join(section["columns"]) + " |",
                "|---|" + "---:|" * (len(section["columns"]) - 1)]
        out += ["| " + " | ".join(cells) + " |" for cells in section["rows"]]
        out.append("")
    out += [f"{note}" for note in section["notes"]]
    return out + ([""] if section["notes"] else [])


def _md_table(columns, lines) -> str:
    out = ["| " + " | ".join(columns) + " |",
           "|" + "|".join("---" if i < 2 else "---:" for i in range(len(columns))) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out)


# -- the machine ----------------------------------------------------------------------------
def _first_line(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        return "missing"
    return (done.stdout or done.stderr).strip().splitlines()[0]


def machine() -> dict[str, str]:
    """The date, CPU, memory, kernel, tool versions and commit, as labelled strings."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus (nproc)": str(os.cpu_count()),
        "cpu": model.group(1) if model else platform.processor(),
        "memory": f"{int(mem.group(1)) / (1 << 20):.1f} GiB" if mem else "?",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "unicorn": metadata.version("unicorn"),
        "capstone": metadata.version("capstone"),
        "pyarrow": metadata.version("pyarrow"),
        "valgrind": _first_line(["valgrind", "--version"]),
        "nasm": _first_line(["nasm", "-v"]),
        "vmtrace commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }


def markdown(rows: list[dict], runs: int, info: dict[str, str], load: tuple[str, str],
             wall_minutes: float, notes: str | None, sections: list[dict] = ()) -> str:
    """Renders RESULTS.md.

    Args:
        rows: from `row()`.
        runs: runs per tool (the medians' N).
        info: from `machine()`.
        load: load averages at the start and the end of the run.
        wall_minutes: how long the whole bench run took.
        notes: hand-written analysis appended at the end, if any.
        sections: bench/issue13.py's sections (`Section.to_json()`), shown after the rates;
            their verdicts join the headline table.

    Returns:
        The Markdown text.
    """
    lines = [
        "# vmtrace benchmark results",
        "",
        "Generated by `make bench` (`bench/run.py`); do not edit the tables by hand. Each figure",
        f"is the median of {runs} whole-process runs (spawn to reap: start-up included; `×N` "
        "rows: of N),",
        "tools interleaved within each repetition. Peak RSS is the child's own `ru_maxrss` "
        "(GNU time `%M`).",
        "Instructions and events are counted by `trace record`; lackey's events (` L`, ` S`, "
        "and `M` as 2)",
        "come from its own log and give its events/s. bytes/event = `accesses.arrows` size ÷ "
        "access rows;",
        "bytes/event (all files) = every file of the trace directory ÷ access rows.",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        f"- load average (1, 5, 15 min) at start: {load[0]}; at end: {load[1]}",
        f"- this run took {wall_minutes:.1f} min",
        "",
        "## Headline targets (issue 13: `mixed`, code with calls, frames, push/pop; start-up; `--fast`)",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *(f"| {v.target} | {v.measured} | {_mark(v.met)} |"
          for v in headline_verdicts(rows) + section_verdicts(sections)),
        "",
        "## Targets (issue 4, `memloop`: the best case)",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *(f"| {v.target} | {v.measured} | {_mark(v.met)} |" for v in verdicts(rows)),
        "",
        f"## Whole-process times (seconds, median of {runs})",
        "",
        _md_table(TIME_COLUMNS, [time_cells(r) for r in rows]),
        "",
        "`no-hook emu s` is the time inside `emu_start` alone (the rest is Python start-up and "
        "loading).",
        "`CPU s` is user + system time of all the process's threads (from GNU time): the work "
        "done,",
        "which other load on the machine inflates less than wall time. `×N`: the median of N runs "
        "(the sizes lackey's file log cannot take run `--huge-runs` times, once by default).",
        "",
        "## Rates, footprint and ratios",
        "",
        _md_table(RATE_COLUMNS, [rate_cells(r) for r in rows]),
        "",
        "Mev/s = million memory events per second. The trace÷lackey ratios compare each tool's "
        "own events/s.",
        "",
        *(line for section in sections for line in _section_markdown(section)),
        "## Workloads",
        "",
        "Sources in `bench/workloads/`, sized with `nasm -D` (C: `gcc -D`, compiled as "
        "`trace record prog.c` does):",
        "",
    ]
    from harness import WORKLOADS

    for w in WORKLOADS:
        sizes = ", ".join(f"{k} {w.param}={v:,}" for k, v in w.sizes.items())
        lines.append(f"- `{w.file}`: {w.about} ({sizes})")
    if notes:
        lines += ["", notes.strip()]
    return "\n".join(lines) + "\n"
