"""Text the program or the trace controls, made safe to print on a terminal.

A program's output, its argv, the file names it opened, its symbol names and everything in
a trace's meta.json may hold terminal control sequences (OSC 52 writes the clipboard, others
set the window title or clear the screen) or Rich markup (`[red]`). Everything of theirs
goes through here before it reaches a console: control characters are shown as escapes
(`\\x1b]52;...`), markup is made inert."""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING
import re

if TYPE_CHECKING:
    from rich.console import Console

# C0 controls but \t and \n, DEL, C1 controls, and the bidirectional overrides and
# isolates that reorder what a terminal shows ("Trojan source").
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


_NAMED = {"\n": "\\n", "\r": "\\r"}


def _shown(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_lines(text: str) -> str:
    """`text` with every control character but newline and tab shown as an escape, for
    printing with markup off (program output)."""
    return _CONTROL_BUT_NEWLINE.sub(_shown, text)


def safe(text: object) -> str:
    """`str(text)` as one line of inert Rich markup: control characters, newlines included,
    shown as escapes, and `[` escaped."""
    from rich.markup import escape

    return escape(_CONTROL.sub(_shown, str(text)))


class SafeDecoder:
    """Decodes a byte stream chunk by chunk (a UTF-8 character may straddle two chunks)
    into `safe_lines` text; bytes that are not UTF-8 are shown as `\\xNN`."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")

    def text(self, data: bytes, final: bool = False) -> str:
        return safe_lines(self._decoder.decode(data, final))


def make_console(stderr: bool = False) -> "Console":
    """The console every command prints through: it never wraps a line (a `next:` command
    or a file:line stays whole for copy-paste), and into a pipe or file it does not cut
    lines at 80 columns either: tables take the width they need."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, soft_wrap=True, width=1 << 14)
    return console


class LazyConsole:
    """`make_console(stderr)`, made on first use: a command that prints nothing (`trace
    record -q`) never loads rich. `quiet` may be set before; `rich` is the console itself."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None
        self._quiet = False

    @property
    def rich(self) -> "Console":
        if self._console is None:
            self._console = make_console(stderr=self._stderr)
            self._console.quiet = self._quiet
        return self._console

    @property
    def quiet(self) -> bool:
        return self._quiet if self._console is None else self._console.quiet

    @quiet.setter
    def quiet(self, value: bool) -> None:
        self._quiet = value
        if self._console is not None:
            self._console.quiet = value

    def print(self, *objects, **kwargs) -> None:
        if not self.quiet:
            self.rich.print(*objects, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.rich, name)
