"""The README's console blocks, run as a reader would type them: every `$` command in the
shell, from a directory holding a copy of examples/, with `trace` on PATH the way
`. .venv/bin/activate` puts it there; the lines shown under a command must appear in its
output (`...` stands for any text, a line of only `...` for any lines). Nothing in a
command is substituted. A command the test cannot run (it opens a browser) says so with a
trailing `# readme-test: skip`; keep that list tiny."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from conftest import EXAMPLES, ROOT

SKIP = "# readme-test: skip"


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)


def console_commands(readme: str) -> list[Command]:
    """The `$` commands of the ```console blocks, each with the output lines shown under it."""
    commands: list[Command] = []
    for block in re.findall(r"```console\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append(Command(line[2:].strip()))
            elif commands and line.strip() and line.strip() != "...":
                commands[-1].expected.append(line)
    return commands


def _normal(text: str) -> str:
    return " ".join(text.split())


def shown_in(expected: str, output: str) -> bool:
    """Whether a README output line appears in `output` (whitespace-insensitive, `...`
    matching any text)."""
    pattern = ".*?".join(re.escape(part) for part in _normal(expected).split("..."))
    return any(re.search(pattern, _normal(line)) for line in output.splitlines())


def test_the_parser_sees_the_commands():
    commands = console_commands((ROOT / "README.md").read_text())
    assert commands[0].line == "trace record examples/brk_tutorial.asm"
    assert any(c.expected for c in commands)
    assert shown_in("a ... b", "x  a  z b")
    assert not shown_in("a ... b", "b a")


def test_readme_console_commands_run_as_written(tmp_path: Path):
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    ran = 0
    for command in console_commands((ROOT / "README.md").read_text()):
        if command.line.endswith(SKIP):
            continue
        done = subprocess.run(["bash", "-c", command.line], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"$ {command.line}\n{output}"
        for line in command.expected:
            assert shown_in(line, output), f"$ {command.line}\nmissing: {line}\n{output}"
        ran += 1
    assert ran >= 8
    # `make demo` ends by printing the next commands: they work in the same shell too.
    demo = re.search(r"^demo:.*?\n\n", (ROOT / "Makefile").read_text(), re.S | re.M).group()
    shown = re.findall(r'@echo "\s+(trace [^"]+)"', demo)
    assert shown
    for line in shown:
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"$ {line}\n{done.stdout}{done.stderr}"
