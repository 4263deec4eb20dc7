"""`trace explore`: step through a trace in the terminal, registers and stack side by side.

The explorer's state is one step and an optional watched address; every screen is drawn
from the stateless queries of (trace, step). Keys are read raw from a terminal, or as lines
("n", "g 40", "w buf", ">", "q") when stdin is not one, which is how it is tested."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from vmtrace.commands._replay_common import open_session
from vmtrace.terminal import make_console, safe

HELP = ("n/→ next  p/← back  ]/[ ±100  }/{ ±10000  g STEP go to  w ADDR watch  "
        "> next write  < previous write  q quit")


@dataclass(frozen=True)
class View:
    step: int
    watch: int | None = None
    message: str = ""


class Explorer:
    """Turns commands into new views and views into screens. Holds the trace, not a step."""

    def __init__(self, trace_path: Path):
        from timetravel import last_step

        self.path = trace_path
        self.session = open_session(trace_path)
        self.trace = self.session.trace
        self.last = last_step(self.trace)

    def clamp(self, step: int) -> int:
        return max(0, min(self.last, step))

    def command(self, view: View, text: str) -> View | None:
        """The view after one command; None to quit."""
        words = text.strip().split(maxsplit=1)
        key, arg = (words[0], words[1] if len(words) > 1 else "") if words else ("", "")
        moves = {"n": 1, "right": 1, "p": -1, "left": -1, "]": 100, "[": -100,
                 "}": 10000, "{": -10000}
        if key in ("q", "quit"):
            return None
        if key in moves:
            return View(self.clamp(view.step + moves[key]), view.watch)
        if key == "g":
            try:
                return View(self.clamp(int(arg, 0)), view.watch)
            except ValueError:
                return replace(view, message=f"g needs a step number, not {arg!r}")
        if key == "w":
            from timetravel import QueryError, resolve_address

            try:
                return View(view.step, resolve_address(self.trace, arg), f"watching {arg}")
            except QueryError as exc:
                return replace(view, message=str(exc))
        if key in (">", "<"):
            if view.watch is None:
                return replace(view, message="w ADDR first: which address to follow")
            from timetravel import next_write, previous_write

            find = next_write if key == ">" else previous_write
            w = find(self.session, view.watch, view.step)
            if w is None:
                return replace(view, message=f"no {'later' if key == '>' else 'earlier'} "
                                             f"write to {view.watch:#x}")
            return View(w.step, view.watch, f"step {w.step:,} writes {w.size} byte(s) at "
                                             f"{w.addr:#x} ({w.source})")
        return replace(view, message=f"unknown command {key!r}; {HELP}")

    def screen(self, view: View):
        from timetravel import memory_at, previous_write, stack_at, state_at

        st = state_at(self.session, view.step)
        regs = st.registers
        head = (f"[bold]step {view.step:,}[/] / {self.last:,}   RIP {regs['rip']:#x} "
                f"<{safe(st.symbol or '?')}>  "
                f"[cyan]{safe(st.symbolic) if st.symbolic else '(no instruction)'}[/]")
        if st.source:
            head += f"   [dim]{safe(Path(st.source.file).name)}:{st.source.line}[/]"
        reg_table = Table(box=None, show_header=False, padding=(0, 1))
        for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9",
                     "r10", "r11", "r12", "r13", "r14", "r15"):
            reg_table.add_row(f"[bold]{name}[/]", f"{regs[name]:#018x}")
        flags = " ".join(k if v else k.lower() for k, v in st.flags.items())
        reg_table.add_row("[bold]flags[/]", flags)
        pic = stack_at(self.session, view.step, window=8 * 14, registers=regs)
        stack_table = Table(box=None, show_header=False, padding=(0, 1))
        rows = [r for r in pic.rows if r.kind != "red zone"][-15:]
        rows += [r for r in pic.rows if r.kind == "red zone"][:2]
        for r in rows:
            value = "unmapped" if r.value is None else f"{r.value:#x}"
            marks = " ".join(r.marks)
            style = "dim" if r.kind == "red zone" else "white"
            stack_table.add_row(f"{r.addr:#x}", value,
                                f"[{style}]{safe(f'{r.kind} {r.meaning}'.strip())}[/]",
                                f"[bold reverse]{marks}[/]" if marks else "")
        body = Table.grid(padding=(0, 2))
        body.add_row(Panel(reg_table, title="registers", expand=False),
                     Panel(stack_table, title="stack", expand=False))
        parts = [head, body]
        if view.watch is not None:
            mem = memory_at(self.session, view.watch, 8, view.step)
            w = previous_write(self.session, view.watch, view.step)
            by = "initial value" if w is None else f"last written at step {w.step:,}"
            parts.append(f"watch {view.watch:#x}: {mem.data.hex(' ')} ({by})")
        if view.message:
            parts.append(f"[yellow]{safe(view.message)}[/]")
        parts.append(f"[dim]{HELP}[/]")
        return Group(*parts)


def _keys():
    """Commands from a terminal in raw mode (single keys; g and w read a line)."""
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        while True:
            tty.setcbreak(fd)
            ch = sys.stdin.read(1)
            if ch == "\x1b":
                seq = sys.stdin.read(2)
                ch = {"[C": "right", "[D": "left"}.get(seq, "")
            if ch in ("g", "w"):
                termios.tcsetattr(fd, termios.TCSADRAIN, old)
                yield f"{ch} {input('step: ' if ch == 'g' else 'address: ')}"
            else:
                yield ch
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def explore(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    step: Annotated[Optional[int], typer.Option("--step", help="Start at this step.")] = 0,
    watch: Annotated[Optional[str], typer.Option(
        "--watch", help="Follow writes to this address (0x..., or symbol[+offset]).")] = None,
) -> None:
    """Step through the run: registers and stack side by side, jump to writes of an address."""
    from vmtrace.commands.materialize import materialise_first

    materialise_first(trace)  # every screen shows the stack (its writes): the events first
    explorer = Explorer(trace)
    view = View(explorer.clamp(step or 0))
    if watch is not None:
        view = explorer.command(view, f"w {watch}")
    console = make_console()
    interactive = sys.stdin.isatty() and console.is_terminal
    commands = _keys() if interactive else (line for line in sys.stdin)
    while view is not None:
        if interactive:
            console.clear()
        console.print(explorer.screen(view))
        try:
            text = next(commands)
        except StopIteration:
            break
        view = explorer.command(replace(view, message=""), text)
