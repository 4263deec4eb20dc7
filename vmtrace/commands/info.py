"""`trace info`: what a recorded run did, for people or (--json) for scripts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from analysis.formatting import plural
from vmtrace.terminal import SafeDecoder, make_console, safe


# `trace info` hashes and counts the event tables (accesses, rsp) only while they are this
# small together, in rows and in bytes (a few tenths of a second); beyond, it answers from
# meta.json's totals. Rows matter most: a v3 table holds ~3 M events per MB, and decoding
# and counting 10 M of them took 1.2 s.
VERIFY_EVENT_ROWS_UP_TO = 1_000_000
VERIFY_EVENT_TABLES_UP_TO = 64 << 20
EVENT_TABLES = ("accesses", "rsp")


def _event_bytes(trace: Path) -> int:
    return sum((trace / f"{t}.arrows").stat().st_size for t in EVENT_TABLES
               if (trace / f"{t}.arrows").is_file())


def _print_output(console: Console, opened, full: bool) -> None:
    """The program's stdout, control characters shown escaped; its first and last lines
    only, unless `full`."""
    from analysis.summary import output_chunks, output_excerpt

    if full:
        decoder = SafeDecoder()
        console.print("stdout:")
        console.file.flush()
        out = sys.stdout
        last = ""
        for chunk in output_chunks(opened, 1):
            text = decoder.text(chunk)
            out.write(text)
            last = text or last
        rest = decoder.text(b"", final=True)
        out.write(rest)
        if (rest or last) and not (rest or last).endswith("\n"):
            out.write("\n")
        out.flush()
        return
    excerpt = output_excerpt(opened, 1)
    if not excerpt.total_bytes:
        return
    if not excerpt.omitted_bytes:
        console.print("stdout:")
    else:
        console.print(f"stdout ({excerpt.total_bytes:,} bytes, {excerpt.total_lines:,} "
                      "lines; its start and end):")
    head = SafeDecoder().text(excerpt.head, final=True)
    console.print(head, markup=False, end="" if head.endswith("\n") or not head else "\n")
    if excerpt.omitted_bytes:
        console.print(f"[dim]... {excerpt.omitted_lines:,} lines ({excerpt.omitted_bytes:,} "
                      f"bytes) not shown; trace info --full prints all of it ...[/]")
        tail = SafeDecoder().text(excerpt.tail, final=True)
        console.print(tail, markup=False, end="" if tail.endswith("\n") else "\n")


def info(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    full: Annotated[bool, typer.Option(
        "--full", help="Print all of the program's output (default: its first and last "
        "lines).")] = False,
) -> None:
    """Summarise a recorded run: how it ended, its output, accesses, syscalls and map."""
    from analysis import open_trace
    from analysis.summary import summarize, totals_from_meta
    from analysis.syscall_args import describe_args, describe_ret
    from tracer.format.schema import EVENT_TABLES as PENDING_TABLES
    from tracer.format.schema import TABLES

    opened = open_trace(trace)
    pending = opened.files.pending
    totals = None if pending else totals_from_meta(opened)
    end = opened.meta.end
    small = (end is not None and end.accesses + end.rsp_changes <= VERIFY_EVENT_ROWS_UP_TO
             and _event_bytes(trace) <= VERIFY_EVENT_TABLES_UP_TO)
    if pending:
        # Recorded with --fast: what meta.json and the other tables say, at once; the access
        # and RSP events are materialised by the commands that need them.
        opened.files.check_tables(*(t for t in TABLES if t not in PENDING_TABLES))
        opened.files.program_bytes()
    elif totals is None or small:
        # Small enough to check and count whole: every byte is hashed and every value
        # checked as it is read, as all other commands do.
        opened.files.verify()
        totals = None
    else:
        # A big complete trace whose meta.json holds the totals: answer from them, in the
        # same time whatever the size of the event tables. Their sizes were checked on
        # opening; their checksums are checked by any command that reads them.
        opened.files.check_tables(*(t for t in TABLES if t not in EVENT_TABLES))
        opened.files.program_bytes()
    accesses, depth = totals if totals is not None else (None, None)
    summary = summarize(opened, accesses=accesses, stack_depth=depth, with_output=as_json,
                        pending_ok=True)
    if as_json:
        print(json.dumps(summary.to_json(), indent=2))
        return
    console = make_console()
    s = summary
    if not s.complete:
        console.print("[yellow]incomplete trace: the recording was interrupted; what was "
                      "written before is shown[/]")
    if s.signal:
        fault = s.fault or {}
        console.print(f"[bold]{safe(s.program)}[/] was killed by [red]{safe(s.signal)}[/]: "
                      f"{safe(fault.get('cause', ''))} at step {fault.get('step')}, "
                      f"RIP {fault.get('rip', 0):#x}")
    elif s.exit_code is not None:
        console.print(f"[bold]{safe(s.program)}[/] exited with status {s.exit_code}")
    elif s.complete:
        console.print(f"[bold]{safe(s.program)}[/]: stopped ({safe(s.stop_reason)})"
                      + (f": {safe(s.error)}" if s.error else ""))
    if s.truncated and s.complete:
        why = ("the recording was interrupted by Ctrl-C or SIGTERM"
               if s.stop_reason == "interrupted" else "a limit stopped the run")
        console.print(f"[yellow]the trace is truncated ({why})[/]")
    if s.accesses is None:
        console.print(f"instructions: {s.instructions:,}   reads and writes: recorded with "
                      f"--fast, not materialised yet (trace materialize {safe(str(trace))}; "
                      "commands that need them do it first)")
    else:
        console.print(f"instructions: {s.instructions:,}   reads: {s.accesses.read:,}   "
                      f"writes: {s.accesses.write:,}")
    console.print(f"max stack depth: {s.stack_line}")
    console.print(f"program break: {s.brk_line}")
    by_source = ", ".join(f"{safe(k)}: {v['read']:,} r / {v['write']:,} w"
                          for k, v in (s.accesses.by_source if s.accesses else {}).items())
    if by_source:
        console.print(f"by source: {by_source}")
    _print_output(console, opened, full)
    table = Table(title="syscalls", show_lines=False)
    for col in ("step", "name", "arguments", "returned"):
        table.add_column(col)
    for call in s.syscalls[:50]:
        table.add_row(str(call["step"]), safe(call["name"]),
                      safe(describe_args(call["name"], call["args"])),
                      describe_ret(call["name"], call["ret"]))
    console.print(table)
    if len(s.syscalls) > 50:
        console.print(f"... and {plural(len(s.syscalls) - 50, 'more syscall')}")
    regions = Table(title="memory map at the end")
    for col in ("start", "end", "perms", "kind", "name"):
        regions.add_column(col)
    for r in s.regions:
        regions.add_row(f"{r.start:#x}", f"{r.end:#x}", safe(r.perms), safe(r.kind),
                        safe(r.name))
    console.print(regions)
    for w in s.warnings:
        console.print(f"[yellow]warning:[/] {safe(w)}")
