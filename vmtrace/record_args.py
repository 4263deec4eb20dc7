"""`trace record`'s command line, parsed without typer: typer and pydantic (which typer uses
to convert every value) take a third of a short recording's start-up.

Only plain command lines are taken here, read exactly as typer reads them; anything else
(`--help`, an unknown or malformed option, a value typer would refuse) returns None and goes
to typer, which then parses it, or says what is wrong, in its own words. The options must
match the `record` command's signature (vmtrace/commands/record.py);
tests/test_record_args.py checks that they do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Option:
    """One option of `trace record`: its names, the parameter it fills, its kind."""

    names: tuple[str, ...]
    dest: str
    kind: str           # "flag", "str", "path", "int", "float"
    repeatable: bool = False
    minimum: float | None = None


OPTIONS = (
    Option(("-o", "--output"), "output", "path"),
    Option(("--stdin",), "stdin", "str"),
    Option(("--max-steps",), "max_steps", "int", minimum=1),
    Option(("--max-trace-mb",), "max_trace_mb", "float", minimum=0),
    Option(("--min-free-mb",), "min_free_mb", "float", minimum=0),
    Option(("--max-memory",), "max_memory", "str"),
    Option(("--allow-read",), "allow_read", "path", repeatable=True),
    Option(("--include",), "include", "path", repeatable=True),
    Option(("--libc",), "libc", "str"),
    Option(("--cc-flag",), "cc_flag", "str", repeatable=True),
    Option(("--env",), "env", "str", repeatable=True),
    Option(("--seed",), "seed", "int"),
    Option(("--quiet", "-q"), "quiet", "flag"),
    Option(("--no-echo",), "no_echo", "flag"),
    Option(("--fast",), "fast", "flag"),
)
_BY_NAME = {name: option for option in OPTIONS for name in option.names}
_INT = re.compile(r"[0-9]+")
_FLOAT = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def _value(option: Option, text: str) -> object | None:
    """`text` converted as typer converts it, or None where typer might differ or refuse."""
    if option.kind in ("str", "path"):
        # Whatever follows is the value, as in click (`--cc-flag -O2`, `-o --odd-name`).
        return Path(text) if option.kind == "path" else text
    pattern, convert = (_INT, int) if option.kind == "int" else (_FLOAT, float)
    if not pattern.fullmatch(text):
        return None
    value = convert(text)
    if option.minimum is not None and value < option.minimum:
        return None
    return value


def parse_record(argv: list[str]) -> dict[str, object] | None:
    """Reads `trace record`'s arguments (those after `record`).

    Args:
        argv: the arguments.

    Returns:
        The `record` command's keyword arguments (only those given, besides `program` and
        `args`), or None when typer should parse them.
    """
    found: dict[str, object] = {}
    positional: list[str] = []
    tokens = list(argv)
    while tokens:
        token = tokens.pop(0)
        if token == "--":
            positional += tokens
            break
        if not token.startswith("-") or token == "-":
            positional.append(token)
            continue
        name, has_value, attached = token.partition("=")
        option = _BY_NAME.get(name)
        if option is None or (has_value and not name.startswith("--")):
            return None
        if option.kind == "flag":
            if has_value:
                return None
            found[option.dest] = True
            continue
        if not has_value:
            if not tokens:
                return None
            attached = tokens.pop(0)
        value = _value(option, attached)
        if value is None:
            return None
        if option.repeatable:
            found.setdefault(option.dest, []).append(value)
        else:
            found[option.dest] = value  # the last one counts, as in typer
    if not positional or not positional[0]:
        return None
    return {"program": Path(positional[0]), "args": positional[1:] or None, **found}
