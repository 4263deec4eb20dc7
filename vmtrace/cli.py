"""`trace`: the command-line entry point. Errors from either side are printed here, once.

`trace record` (the command whose start-up matters most) is parsed without typer when its
arguments are plain (vmtrace/record_args.py); everything else goes through the typer app,
built on first use (`app`)."""

from __future__ import annotations

import sys

# Every command: its name, its module under vmtrace.commands, the function, and the click
# class for the one command that needs its own.
COMMANDS = {
    "record": ("record", "record", None),
    "info": ("info", "info", None),
    "report": ("report", "report", None),
    "plot": ("plot", "plot", None),
    "replay": ("replay", "replay", None),
    "index": ("index", "index", None),
    "state": ("state", "state", None),
    "stack": ("stack", "stack", None),
    "mem": ("mem", "mem", None),
    "who-wrote": ("who_wrote", "who_wrote", None),
    "accesses": ("accesses", "accesses", None),
    "explore": ("explore", "explore", None),
    "view": ("view", "view", None),
    "batch": ("batch", "batch", "BatchCommand"),
    "compare": ("compare", "compare", None),
    "sql": ("sql", "sql", None),
    "materialize": ("materialize", "materialize", None),
}


def _build_app(only: str | None = None):
    """The typer app with every command, or with `only` that one (`trace info ...` then
    imports no other command's module; it parses, helps and errs exactly the same)."""
    import importlib

    import typer
    from typer.core import TyperGroup

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
    for name, (module_name, function, cls) in COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(f"vmtrace.commands.{module_name}")
        kwargs = {"cls": getattr(module, cls)} if cls else {}
        app.command(name, **kwargs)(getattr(module, function))
    if only is not None:
        # A one-command app would run it without its name: a callback keeps it a group.
        app.callback()(lambda: None)
    return app


def _flags_without_type(params: list) -> list:
    # A flag takes no value: its help row shows no `<bool>` (typer shows one for every
    # option, --help included).
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


_APP = None


def _app():
    global _APP
    if _APP is None:
        _APP = _build_app()
    return _APP


def _app_for(args: list[str]):
    """The app that runs `args`: with only its command, when it names one."""
    if args and args[0] in COMMANDS and _APP is None:
        return _build_app(only=args[0])
    return _app()


def __getattr__(name: str):
    # `app` (the typer app: tests and in-process callers use it) is built on first use.
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _user_errors() -> tuple[type[Exception], ...]:
    # Imported when an error is raised: tracer.format loads pyarrow, which `trace record`
    # loads only after it has started the program's build.
    from analysis.errors import AnalysisError
    from tracer.errors import TracerError
    from tracer.format import TraceFormatError

    return TracerError, TraceFormatError, AnalysisError


def _events_pending() -> type[Exception]:
    from tracer.format.errors import EventsPending

    return EventsPending


def _record(arguments: dict, exit_when_done: bool) -> None:
    import os

    if exit_when_done and "numpy" not in sys.modules:
        # pyarrow imports numpy whenever it is installed: ~50 ms of a 0.25 s recording, and
        # OpenBLAS starting a thread per core on the core where the program's build runs.
        # A recording computes nothing with it (the drain thread lays out its columns in C,
        # recorder.c), so this process, which ends with the recording (os._exit below),
        # hides it. tests/test_record_process.py records every kind of run this way.
        sys.modules["numpy"] = None
    if exit_when_done:
        # Arrow's default pool (mimalloc) sets up arenas a recording gains nothing from:
        # with the system allocator `trace record hello.asm` touches 4 MB less memory, and
        # a 14 M-event recording runs as fast (bench/notes.md). The user's choice stands.
        # (The program is emulated: it never sees our environment.)
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    from vmtrace.commands.record import record

    try:
        record(**arguments)
        if exit_when_done:
            # The trace is complete and closed, the build directory removed: tearing down
            # pyarrow and unicorn module by module would only add ~0.04 s of CPU.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    except (KeyboardInterrupt, EOFError):
        # As typer says it (a Ctrl-C during the recording itself stops it and keeps the
        # trace: stop_on_signals).
        print("\nAborted!", file=sys.stderr)
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Runs the CLI; user-facing errors become one line on stderr and exit status 2.

    Args:
        argv: the arguments (default: the command line's); tests pass their own.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if args[:1] == ["record"]:
            from vmtrace.record_args import parse_record

            parsed = parse_record(args[1:])
            if parsed is not None:  # plain arguments: no typer (it would take them the same)
                _record(parsed, exit_when_done=argv is None)  # not when called in-process
                return
        # standalone: typer itself reports usage errors
        try:
            _app_for(args)(args=argv, prog_name="trace")
        except _events_pending() as pending:
            # A command that needs the event tables of a --fast recording: materialise
            # them (saying so), then run the command again.
            from vmtrace.commands.materialize import materialise_first

            materialise_first(pending.path)
            _app_for(args)(args=argv, prog_name="trace")
    except _user_errors() as exc:
        from vmtrace.terminal import make_console, safe

        # safe(): the message may quote the trace or the program (one line, no escapes).
        make_console(stderr=True).print(f"[bold red]error:[/] {safe(exc)}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
