"""Runs the trace readers of the CLI on a trace and checks the promise docs/security.md makes
for damaged and hostile traces: each reader answers (exit 0), or exits non-zero with one
line on stderr and no traceback; none hangs.

In-process through `vmtrace.cli.main` (no interpreter start per run, so a fuzz test can run
hundreds), with a timer that turns a hang into a failure; `by_subprocess` for the few runs
where a real process matters."""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from conftest import TRACE


def reader_commands(trace: Path, out: Path) -> dict[str, tuple[list[str], str]]:
    """Every command that reads a trace: name -> (arguments, stdin). `out` is a scratch
    directory for the files report and plot write."""
    t = str(trace)
    return {
        "info": (["info", t], ""),
        "info --json": (["info", t, "--json"], ""),
        "report": (["report", t, "-o", str(out / "r.html")], ""),
        "plot": (["plot", t, "vmmap", "--html", str(out / "p.html")], ""),
        "state": (["state", t, "3"], ""),
        "stack": (["stack", t, "3"], ""),
        "mem": (["mem", t, "buf", "16"], ""),
        "who-wrote": (["who-wrote", t, "buf"], ""),
        "accesses": (["accesses", t, "buf", "16"], ""),
        "replay": (["replay", t, "--verify"], ""),
        "index": (["index", t], ""),
        "explore": (["explore", t], "n\nq\n"),
    }


@dataclass(frozen=True)
class Outcome:
    args: tuple[str, ...]
    code: int | None        # None: it raised (see `crash`) or hung
    stdout: str
    stderr: str
    crash: str | None = None

    def problem(self) -> str | None:
        """What breaks the promise, or None when the reader answered or refused well."""
        if self.crash is not None:
            return self.crash
        if self.code == 0:
            return None
        if self.args[:1] == ("replay",) and self.code == 1 and "diverges" in self.stdout \
                and not self.stderr.strip():
            return None  # an answer: `replay --verify` found the trace is not this run
        if "Traceback" in self.stderr:
            return "a traceback"
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        if len(lines) != 1:
            return f"{len(lines)} lines on stderr"
        return None

    def report(self) -> str:
        return (f"trace {' '.join(self.args)}: {self.problem()}\n--- stderr:\n"
                f"{self.stderr[-3000:]}\n--- crash:\n{(self.crash or '')[-3000:]}")


class _Hang(BaseException):
    """Raised by the timer: derived from BaseException so no `except Exception` eats it."""


def _on_alarm(_signum, _frame):
    raise _Hang()


def in_process(args: list[str], stdin: str = "", timeout: float = 20.0) -> Outcome:
    """Runs `trace ARGS` in this process, as `main` runs it for the command line."""
    from vmtrace.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    crash = None
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    old_stdin = sys.stdin
    try:
        sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except _Hang:
        crash = f"no answer within {timeout} s (a hang)"
    except BaseException:  # noqa: BLE001 (the point is to catch whatever escapes)
        crash = traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.stdin = old_stdin
    return Outcome(tuple(args), code, out.getvalue(), err.getvalue(), crash)


def by_subprocess(args: list[str], stdin: str = "", timeout: float = 60.0) -> Outcome:
    """Runs `trace ARGS` as its own process (a hang is a timeout)."""
    try:
        done = subprocess.run([*TRACE, *args], input=stdin.encode(), capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return Outcome(tuple(args), None, "", "", f"no answer within {timeout} s (a hang)")
    return Outcome(tuple(args), done.returncode, done.stdout.decode(errors="replace"),
                   done.stderr.decode(errors="replace"))
