"""`trace record`'s plain parser (vmtrace/record_args.py) reads a command line exactly as
typer does, or hands it to typer: checked against typer's own parse of the `record` command."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from vmtrace.record_args import OPTIONS, parse_record


def _typer_command():
    from typer.main import get_command

    from vmtrace.cli import app

    return get_command(app).commands["record"]


def _typer_parse(argv: list[str]) -> dict:
    command = _typer_command()
    ctx = command.make_context("record", list(argv))
    return ctx.params


def test_the_options_are_the_record_commands():
    params = {p.name: p for p in _typer_command().params}
    ours = {o.dest: o for o in OPTIONS}
    options = {name for name, p in params.items() if p.param_type_name == "option"}
    assert set(ours) == options, "vmtrace/record_args.py must list every option of record"
    for name, option in ours.items():
        assert set(option.names) == set(params[name].opts) | set(params[name].secondary_opts)
        assert (option.kind == "flag") == params[name].is_flag, name
        assert option.repeatable == params[name].multiple, name
    arguments = [name for name, p in params.items() if p.param_type_name == "argument"]
    assert arguments == ["program", "args"]


COMMAND_LINES = [
    ["x.asm"],
    ["x.asm", "-q"],
    ["-q", "x.asm", "a", "b"],
    ["x.asm", "--", "-q", "--max-steps", "0"],
    ["x.asm", "a", "--no-echo", "b"],
    ["x.asm", "-o", "out", "--output", "later"],
    ["x.asm", "--output=out", "--stdin", "-", "--seed", "7"],
    ["x.asm", "--max-steps", "12", "--max-trace-mb", "1.5", "--min-free-mb", "0"],
    ["x.asm", "--max-memory", "512M", "--libc", "musl", "--cc-flag=-O2", "--cc-flag", "-g0"],
    ["x.c", "--include", "inc", "--include=inc2", "--allow-read", "/data", "--env", "A=1",
     "--env=B=2"],
    ["--", "x.asm", "--", "y"],
    ["x.asm", "--max-trace-mb", ".5", "--seed", "007"],
    ["x.asm", "-o", "--quiet", "--cc-flag", "-O2"],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=" ".join)
def test_plain_command_lines_read_as_typer_reads_them(argv):
    ours = parse_record(argv)
    assert ours is not None, "a plain command line must not need typer"
    theirs = _typer_parse(argv)
    from vmtrace.commands.record import record

    defaults = {name: p.default for name, p in inspect.signature(record).parameters.items()}
    for name, value in theirs.items():
        mine = ours.get(name, defaults[name])
        if isinstance(value, (list, tuple)) or isinstance(mine, (list, tuple)):
            assert list(mine or ()) == list(value or ()), name
        else:
            assert mine == value and type(mine) is type(value), (name, mine, value)


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["x.asm", "--help"], ["x.asm", "--max-steps", "0"],
    ["x.asm", "--max-steps", "-3"], ["x.asm", "--max-steps", "ten"],
    ["x.asm", "--max-trace-mb", "1e3"], ["x.asm", "--seed", "-1"], ["x.asm", "--frobnicate"],
    ["x.asm", "-o"], ["x.asm", "-oDIR"], ["x.asm", "-qo", "d"],
    ["x.asm", "--quiet=yes"], ["x.asm", "-q=1"], [""],
], ids=lambda a: " ".join(a) or "nothing")
def test_anything_else_goes_to_typer(argv):
    assert parse_record(argv) is None


def test_typer_still_says_what_is_wrong(tmp_path):
    from conftest import trace_cli

    done = trace_cli("record", "x.asm", "--max-steps", "0", check=False)
    assert done.returncode == 2
    assert "--max-steps" in done.stderr.decode() and "Traceback" not in done.stderr.decode()
    done = trace_cli("record", "--help", check=False)
    assert done.returncode == 0 and "--max-trace-mb" in done.stdout.decode()
    done = trace_cli("record", str(Path(tmp_path) / "missing.asm"), check=False)
    assert done.returncode == 2
    assert done.stderr.decode().strip() == f"error: {tmp_path / 'missing.asm'}: no such file"
