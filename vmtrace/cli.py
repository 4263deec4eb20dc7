"""`trace`: the command-line entry point. Errors from either side are printed here, once."""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from vmtrace.commands import batch as batch_command
from vmtrace.commands import compare as compare_command
from vmtrace.commands import info as info_command
from vmtrace.commands import plot as plot_command
from vmtrace.commands import record as record_command
from vmtrace.commands import report as report_command
from vmtrace.commands import sql as sql_command
from vmtrace.commands import (
    accesses as accesses_command, explore as explore_command, index as index_command,
    materialize as materialize_command, mem as mem_command,
    replay as replay_command, stack as stack_command, state as state_command,
    view as view_command, who_wrote as who_wrote_command,
)
from vmtrace.terminal import make_console


def _flags_without_type(params: list) -> list:
    # A flag takes no value: its help row shows no `<bool>` (typer shows one for every
    # option, --help included).
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class _Group(TyperGroup):
    """The `trace` group: hides the type of flags in every command's help."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            command.get_params = (lambda ctx, own=command.get_params:
                                  _flags_without_type(own(ctx)))

    def get_params(self, ctx):
        return _flags_without_type(super().get_params(ctx))


app = typer.Typer(add_completion=False, no_args_is_help=True, cls=_Group,
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
app.command("view")(view_command.view)
app.command("batch", cls=batch_command.BatchCommand)(batch_command.batch)
app.command("compare")(compare_command.compare)
app.command("sql")(sql_command.sql)
app.command("materialize")(materialize_command.materialize)

err_console = make_console(stderr=True)


def main(argv: list[str] | None = None) -> None:
    """Runs the CLI; user-facing errors become one line on stderr and exit status 2.

    Args:
        argv: the arguments (default: the command line's); tests pass their own.
    """
    from analysis.errors import AnalysisError
    from tracer.errors import TracerError
    from tracer.format import TraceFormatError
    from tracer.format.errors import EventsPending
    from vmtrace.terminal import safe

    try:
        try:
            app(args=argv, prog_name="trace")  # standalone: typer itself reports usage errors
        except EventsPending as pending:
            # A command that needs the event tables of a --fast recording: materialise
            # them (saying so), then run the command again.
            materialize_command.materialise_first(pending.path)
            app(args=argv, prog_name="trace")
    except (TracerError, TraceFormatError, AnalysisError) as exc:
        # safe(): the message may quote the trace or the program (one line, no escapes).
        err_console.print(f"[bold red]error:[/] {safe(exc)}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
