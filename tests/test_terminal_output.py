"""What the program and the trace control never drives the terminal (issue 9, item 9): its
output, symbol names and file names are shown with control characters escaped and Rich
markup inert, and a huge output is summarised unless asked for in full."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pytest

from analysis_tables import reseal
from conftest import PROGRAMS, TRACE, record, trace_cli
from trace_readers import in_process

OUTPUT = PROGRAMS / "output"
# Anything a terminal would act on: C0 controls but \t and \n, DEL, C1 controls (as
# characters; a lone 0x9b byte is not UTF-8 and cannot be sent as text).
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def escapes_trace(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("esc") / "trace"
    record(OUTPUT / "terminal_escapes.asm", out)
    return out


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("big") / "trace"
    record(OUTPUT / "big_output.asm", out)
    return out


def test_info_shows_control_sequences_escaped(escapes_trace):
    """Before: OSC 52, the title, clear screen and C1 CSI reached the terminal as is."""
    out = trace_cli("info", str(escapes_trace)).stdout.decode()
    assert not RAW_CONTROL.search(out), repr(out)
    for shown in (r"\x1b]0;pwned\x07", r"\x1b]52;c;aGVsbG8=\x07", r"\x1b[2J", r"\x9b31m",
                  r"hidden\rshown"):
        assert shown in out
    assert "markup:[red]red[/red]" in out  # shown, not applied


def test_info_json_keeps_the_exact_output(escapes_trace):
    info = json.loads(trace_cli("info", str(escapes_trace), "--json").stdout)
    assert info["stdout"].startswith("title:\x1b]0;pwned\x07 clip:\x1b]52;")
    assert "\x9b31m" in info["stdout"] and info["stdout"].endswith("hidden\rshown\n")


def test_a_huge_output_is_summarised(big_trace):
    """Before: all of it went through Rich (105 s and 826 MB for 100 MB)."""
    started = time.monotonic()
    out = trace_cli("info", str(big_trace)).stdout.decode()
    assert time.monotonic() - started < 60
    assert len(out) < 20_000
    lines = out.splitlines()
    assert "first line" in lines and "last line" in lines
    assert "stdout (8,388,629 bytes, 1,048,578 lines; its start and end):" in lines
    assert any("1,048,538 lines (8,388,304 bytes) not shown; trace info --full" in line
               for line in lines)
    assert sum(line == "AAAAAAA" for line in lines) == 38  # 19 after the first, 19 before


def test_full_and_json_give_all_of_a_huge_output(big_trace):
    full = trace_cli("info", str(big_trace), "--full").stdout.decode().splitlines()
    start = full.index("first line")
    assert full[start + 1:start + 1 + (1 << 20)] == ["AAAAAAA"] * (1 << 20)
    assert full[start + (1 << 20) + 1] == "last line"
    info = json.loads(trace_cli("info", str(big_trace), "--json").stdout)
    assert len(info["stdout"]) == 8_388_629
    assert info["stdout"].startswith("first line\nAAAAAAA\n")
    assert info["stdout"].endswith("AAAAAAA\nlast line\n")


def test_output_excerpt_of_one_long_line_keeps_both_ends():
    from analysis.summary import output_excerpt

    class _Files:
        @staticmethod
        def batches(table, columns):
            assert table == "output"
            data = [b"x" * 10_000 + b"END"]
            yield pa.record_batch([pa.array([1], pa.int32()), pa.array(data, pa.binary())],
                                  names=["fd", "data"])

    class _Trace:
        files = _Files()

    excerpt = output_excerpt(_Trace(), 1, lines=20, max_bytes=4096)
    assert excerpt.head == b"x" * 4096 and excerpt.tail.endswith(b"END")
    assert len(excerpt.tail) == 4096
    assert excerpt.omitted_bytes == 10_003 - 8192 and excerpt.total_lines == 1


def _rename_symbols(trace: Path, names: dict[str, str]) -> None:
    path = trace / "symbols.arrows"
    table = pa.ipc.open_stream(str(path)).read_all()
    rows = table.to_pylist()
    for row in rows:
        row["name"] = names.get(row["name"], row["name"])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(pa.Table.from_pylist(rows, schema=table.schema))
    reseal(trace)


HOSTILE = "[red]b\x1b]0;t\x07\u202e"


@pytest.mark.parametrize("command", [["state", "{t}", "4"], ["stack", "{t}", "4"],
                                     ["mem", "{t}", "0x{buf:x}", "16"],
                                     ["who-wrote", "{t}", "0x{buf:x}"],
                                     ["accesses", "{t}", "0x{buf:x}", "16"],
                                     ["explore", "{t}", "--step", "4"]])
def test_symbol_names_are_shown_escaped(tmp_path, command):
    """A symbol named with markup and control characters (a hostile ELF, or a forged
    trace): before, `[red]` was applied as markup."""
    trace = tmp_path / "t"
    record(PROGRAMS / "every_table.asm", trace, "--stdin", "-", stdin=b"hi")
    symbols = pa.ipc.open_stream(str(trace / "symbols.arrows")).read_all().to_pylist()
    buf = next(s["addr"] for s in symbols if s["name"] == "buf")
    _rename_symbols(trace, {"buf": HOSTILE, "copy": HOSTILE})
    args = [a.replace("{t}", str(trace)).format(buf=buf) if "{buf" in a
            else a.replace("{t}", str(trace)) for a in command]
    outcome = in_process(args, stdin="q\n")
    assert outcome.code == 0, outcome.report()
    assert not RAW_CONTROL.search(outcome.stdout), outcome.stdout
    assert "\u202e" not in outcome.stdout
    if command[0] in ("mem", "who-wrote", "stack", "explore"):
        assert r"[red]b\x1b]0;t\x07\u202e" in outcome.stdout


def test_errors_quoting_the_trace_stay_on_one_line(escapes_trace, tmp_path):
    trace = Path(shutil.copytree(escapes_trace, tmp_path / "t"))
    meta = json.loads((trace / "meta.json").read_text())
    meta["program"]["path"] = "a\nb\x1b[2J"
    meta["end"]["stop_reason"] = "x"
    meta["end"]["exit_code"] = None
    meta["end"]["error"] = "line one\nline two\x1b]52;c;eA==\x07"
    (trace / "meta.json").write_text(json.dumps(meta))
    out = trace_cli("info", str(trace)).stdout.decode()
    assert not RAW_CONTROL.search(out)
    assert r"a\nb\x1b[2J: stopped (x): line one\nline two\x1b]52;c;eA==\x07" in out


def test_record_echoes_control_sequences_escaped_on_a_terminal(tmp_path):
    """On a terminal `trace record` echoes the program's output as it runs: escaped, as in
    `trace info`; into a pipe it stays byte for byte (checked by the differential tests)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout and stderr are the pty
        os.execv(TRACE[0], [*TRACE, "record", str(OUTPUT / "terminal_escapes.asm"), "-o",
                            str(tmp_path / "t")])
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    out = b"".join(chunks).decode(errors="replace")
    assert r"\x1b]52;c;aGVsbG8=\x07" in out
    assert "\x1b]52" not in out and "\x1b]0;pwned" not in out and "\x1b[2J" not in out
    assert subprocess.run([*TRACE, "info", str(tmp_path / "t")],
                          capture_output=True).returncode == 0


# Text whose markup, escapes and brackets must print alike with and without rich.
MARKUP_CASES = [
    "plain", "", "a [b] c", "a [B] c", "[1, 2]", "x[0x10]", "[/]", "[yellow]note:[/] x",
    "[bold red]error:[/] x", "[bold]t[/bold] (3 instructions)", "[cyan]trace info t[/]   "
    "[cyan]trace report t --open[/]", "[red]killed[/]: [yellow]nested[/] [/]",
    "[link=http://x]a[/link]", "[@click]a[/]", "[italic]a[/]", "[bold] red]a[/]",
    "[bold  red]a[/]", "[bold]a[/red]", "[bold]unclosed", "a\\", "a\\\\", "\\[x]", "\\\\[x]",
    "\\\\\\[x]", "a \\[b", "[[x]]", "[x", "x]", "a:smile:b", "a\tb", "a\x07b", "two\nlines",
    "ünï ☃ 中文", "/tmp/a:b/c", "-[/]-", "[#ff0000]x[/]", "[/yellow]", "trailing  ",
    "  leading", "x" * 20_000, "wide 中文 " * 3000, "a\u200bb\x85",
]


@pytest.mark.parametrize("text", MARKUP_CASES + [f"[yellow]{c}[/]" for c in MARKUP_CASES])
def test_markup_is_escaped_as_rich_escapes_it(text):
    from rich.markup import escape

    from vmtrace.terminal import _escape_markup

    assert _escape_markup(text) == escape(text)


def _rich_prints(markup: str) -> str | Exception:
    """What `make_console` prints for `markup` into a file (or the error rich raises)."""
    import io

    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, highlight=False, soft_wrap=True, width=1 << 14)
    try:
        console.print(markup)
    except Exception as exc:  # noqa: BLE001 - the error is what is compared
        return exc
    return out.getvalue()


@pytest.mark.parametrize("text", MARKUP_CASES + [f"[yellow]{c}[/]" for c in MARKUP_CASES])
def test_markup_printed_without_rich_is_what_rich_prints(text):
    from vmtrace.terminal import plain_markup, safe

    for markup in (text, f"[yellow]note:[/] {safe(text)}"):
        plain = plain_markup(markup)
        if plain is not None:  # None: left to rich
            assert plain + "\n" == _rich_prints(markup), markup
    assert plain_markup(f"trace written to [bold]{safe(text)}[/]") is not None or \
        _NOT_PLAIN_LIKE.search(text)


_NOT_PLAIN_LIKE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]|:\S*?:")


def test_record_summary_is_the_same_text_with_and_without_rich(tmp_path):
    # Into a pipe the summary is printed without rich; FORCE_COLOR="" makes rich print it
    # (no colours: not a terminal). The words must not differ.
    def summary(env_extra: dict[str, str], out: Path) -> str:
        done = subprocess.run(
            [*TRACE, "record", str(OUTPUT / "terminal_escapes.asm"), "-o", str(out)],
            capture_output=True, text=True, env={**os.environ, **env_extra}, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr.replace(str(out), "OUT")

    assert summary({}, tmp_path / "a") == summary({"FORCE_COLOR": ""}, tmp_path / "b")
