"""Text the program or the trace controls, made safe to print on a terminal.

A program's output, its argv, the file names it opened, its symbol names and everything in
a trace's meta.json may hold terminal control sequences (OSC 52 writes the clipboard, others
set the window title or clear the screen) or Rich markup (`[red]`). Everything of theirs
goes through here before it reaches a console: control characters are shown as escapes
(`\\x1b]52;...`), markup is made inert."""

from __future__ import annotations

import codecs
import os
import sys
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


# rich.markup's own escape, without importing rich (its markup module alone loads ~40 ms
# of modules): tests/test_terminal_output.py checks that both escape alike.
_TAG_TO_ESCAPE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def _escape_markup(markup: str) -> str:
    markup = _TAG_TO_ESCAPE.sub(lambda m: f"{m[1]}{m[1]}\\{m[2]}", markup)
    if markup.endswith("\\") and not markup.endswith("\\\\"):
        return markup + "\\"
    return markup


def safe(text: object) -> str:
    """`str(text)` as one line of inert Rich markup: control characters, newlines included,
    shown as escapes, and `[` escaped."""
    return _escape_markup(_CONTROL.sub(_shown, str(text)))


# Rich's markup tags (rich/markup.py), and the styles our own markup uses: any other tag
# (a link, a meta tag, a style we never write) is left to rich.
_TAG = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")
_PLAIN_STYLES = frozenset({"bold", "red", "bold red", "yellow", "cyan", "green", "dim"})
# What rich would change in the text itself besides markup: tabs (expanded), control
# characters (dropped) and anything like an emoji code (`:smile:`).
_NOT_PLAIN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]|:\S*?:")


def plain_markup(markup: str) -> str | None:
    """`markup` as a rich console with no colours prints it (the tags dropped, escapes
    undone), or None where only rich can say (an unknown or unbalanced tag, tabs, control
    characters, possible emoji codes)."""
    if _NOT_PLAIN.search(markup):
        return None
    out: list[str] = []
    opened: list[str] = []
    position = 0
    for match in _TAG.finditer(markup):
        full, escapes, tag = match.groups()
        start, end = match.span()
        out.append(markup[position:start].replace("\\[", "["))
        position = end
        backslashes, escaped = divmod(len(escapes), 2)
        out.append("\\" * backslashes)
        if escaped:
            out.append(full[len(escapes):])
            continue
        if tag.startswith("/"):
            name = " ".join(tag[1:].split())
            if not opened or (name and name not in opened):
                return None  # rich raises MarkupError: let it
            if name:
                opened.remove(name)
            else:
                opened.pop()
            continue
        if " ".join(tag.split()) not in _PLAIN_STYLES:
            return None
        opened.append(" ".join(tag.split()))
    out.append(markup[position:].replace("\\[", "["))
    return "".join(out)


def _plain_stream(stderr: bool):
    """The stream a `make_console(stderr)` would print to, when it would print there
    plain text with no colours; None when rich would do more (a terminal, FORCE_COLOR or
    TTY_COMPATIBLE set, Jupyter, a rich Live proxying the stream)."""
    import builtins

    stream = sys.stderr if stderr else sys.stdout
    idle = hasattr(sys.stdin, "__module__") and sys.stdin.__module__.startswith("idlelib")
    if (stream is None or hasattr(stream, "rich_proxied_file") or idle
            or hasattr(builtins, "get_ipython")
            or "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ):
        return None
    try:
        return None if stream.isatty() else stream
    except (AttributeError, ValueError):
        return None


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
        """Prints as `make_console(stderr).print`; one line of our markup into a file or a
        pipe is printed without loading rich (a short recording's summary: rich.console
        costs ~18 ms of start-up), to the same text."""
        if self.quiet:
            return
        if self._console is None and len(objects) == 1 and not kwargs \
                and isinstance(objects[0], str):
            stream = _plain_stream(self._stderr)
            text = None if stream is None else plain_markup(objects[0])
            if text is not None:
                stream.write(text + "\n")
                stream.flush()
                return
        self.rich.print(*objects, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.rich, name)
