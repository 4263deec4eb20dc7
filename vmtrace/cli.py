"""`trace`: the command-line entry point. Errors from either side are printed here, once."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from vmtrace.commands import batch as batch_command
from vmtrace.commands import compare as compare_command
from vmtrace.commands import info as info_command
from vmtrace.commands import plot as plot_command
from vmtrace.commands import record as record_command
from vmtrace.commands import report as report_command
from vmtrace.commands import sql as sql_command
from vmtrace.commands import (
    accesses as accesses_command, explore as explore_command, index as index_command,
    mem as mem_command,
    replay as replay_command, stack as stack_command, state as state_command,
    who_wrote as who_wrote_command,
)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Record what an x86-64 Linux program does to its memory, then see it.")
app.command("record")(record_command.record)
app.command("info")(info_command.info)
app.command("report")(report_command.report)
app.command("plot")(plot_command.plot)
app.command("replay")(replay_command.replay)
app.command("index")(index_command.index)
app.command("state")(state_command.state)
app.command("stack")(stack_command.stack)
app.command("mem")(mem_command.mem)
app.command("who-wrote")(who_wrote_command.who_wrote)
app.command("accesses")(accesses_command.accesses)
app.command("explore")(explore_command.explore)
app.command("batch", cls=batch_command.BatchCommand)(batch_command.batch)
app.command("compare")(compare_command.compare)
app.command("sql")(sql_command.sql)

err_console = Console(stderr=True, highlight=False)


def main(argv: list[str] | None = None) -> None:
    """Runs the CLI; user-facing errors become one line on stderr and exit status 2.

    Args:
        argv: the arguments (default: the command line's); tests pass their own.
    """
    from analysis.errors import AnalysisError
    from tracer.errors import TracerError
    from tracer.format import TraceFormatError
    from vmtrace.terminal import safe

    try:
        app(args=argv, prog_name="trace")  # standalone: typer itself reports usage errors
    except (TracerError, TraceFormatError, AnalysisError) as exc:
        # safe(): the message may quote the trace or the program (one line, no escapes).
        err_console.print(f"[bold red]error:[/] {safe(exc)}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
