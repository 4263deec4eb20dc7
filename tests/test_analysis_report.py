"""`trace report` and `trace plot` end to end: the HTML is offline, escaped, under 5 MB,
and opens in headless Chromium without console errors, with its charts drawn."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis_tables import recorded, simulate_kill
from conftest import EXAMPLES, PROGRAMS, ROOT, record, trace_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                    "(apt-get install chromium; CI installs it)")
MAX_HTML = 5 * 1000 * 1000


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """brk_tutorial and evil_output recorded and reported once for this module."""
    base = tmp_path_factory.mktemp("reports")
    out = {}
    for name, src in (("brk", EXAMPLES / "brk_tutorial.asm"),
                      ("evil", PROGRAMS / "analysis" / "evil_output.asm"),
                      ("alloc", EXAMPLES / "allocator.asm")):
        recorded(src, base / name)
        html = base / f"{name}.html"
        extra = ["--allocator", "alloc=alloc,free=free"] if name == "alloc" else []
        trace_cli("report", str(base / name), "-o", str(html), *extra)
        out[name] = html
    return out


def chromium(html: Path, workdir: Path, screenshot: Path | None = None) -> tuple[str, str]:
    """Loads a page headless; returns (DOM after scripts ran, Chromium's log)."""
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={workdir / 'profile'}", "--enable-logging=stderr",
            "--v=0", "--virtual-time-budget=20000", "--window-size=1400,3000"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run([*args, html.resolve().as_uri()], capture_output=True, text=True,
                          timeout=120)
    return done.stdout, done.stderr


def console_errors(log: str) -> list[str]:
    # Chromium logs every console message and uncaught exception as a CONSOLE line; the
    # report itself logs nothing, so any such line is a failure.
    return [line for line in log.splitlines() if ":CONSOLE" in line]


@needs_chromium
def test_console_error_detection_works(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom'); nope();</script></body></html>")
    _, log = chromium(page, tmp_path)
    assert len(console_errors(log)) == 2


def test_report_is_offline_small_and_complete(reports):
    html = reports["brk"].read_text()
    assert len(html.encode()) < MAX_HTML
    assert '<script src=' not in html and "cdn.plot.ly" not in html
    for section in ("Summary", "Findings", "Memory map", "Stack", "Heap", "Access heatmaps",
                    "Syscalls", "Source: ", "brk_tutorial.asm</h2>"):
        assert section in html
    assert "0x20000405c00" in html and "byte data exceeds bounds" in html
    assert "add rbx, [increment]" in html


def test_program_output_is_escaped(reports):
    html = reports["evil"].read_text()
    assert "<img src=x" not in html
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_plot_writes_each_chart(tmp_path):
    from analysis import open_trace
    from analysis.html import render_figures
    from vmtrace.commands.plot import Chart, build_figure

    recorded(EXAMPLES / "recursion.asm", tmp_path / "r")
    t = open_trace(tmp_path / "r")
    titles = {c: build_figure(t, c, None)[0].layout.title.text for c in Chart}
    # `trace stack TRACE 37` shows that depth (the step convention).
    assert titles[Chart.stack].endswith("max 160 bytes at step 37")
    assert titles[Chart.heap].startswith("Heap: break")
    assert titles[Chart.heatmap].startswith("Accesses per segment")
    assert titles[Chart.vmmap].startswith("Virtual memory map")
    html = render_figures(build_figure(t, Chart.vmmap, None), "<b>x</b>")
    assert "<title>vmtrace: &lt;b&gt;x&lt;/b&gt;</title>" in html
    out = tmp_path / "stack.html"
    trace_cli("plot", str(tmp_path / "r"), "stack", "--html", str(out))
    assert out.read_text().count('class="figure"') == 1
    done = trace_cli("plot", str(tmp_path / "r"), "pie", check=False)
    assert done.returncode != 0


def test_report_through_the_cli(tmp_path):
    info = record(EXAMPLES / "recursion.asm", tmp_path / "r")
    assert info["max_stack_depth"] == 160
    done = trace_cli("report", str(tmp_path / "r"))
    out = tmp_path / "r.report.html"
    assert out.exists() and "report written to" in done.stderr.decode()
    assert not (tmp_path / "r" / "r.report.html").exists()  # never inside the trace


def test_missing_trace_is_one_line_error(tmp_path):
    done = trace_cli("report", str(tmp_path / "nothing"), check=False)
    assert done.returncode == 2
    assert done.stderr.decode().strip().startswith("error:")
    assert "Traceback" not in done.stderr.decode()


def test_analysis_does_not_import_the_emulator():
    code = ("import sys, analysis, analysis.report, analysis.html, analysis.figures, "
            "analysis.allocator; bad = [m for m in ('unicorn', 'capstone') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@needs_chromium
@pytest.mark.parametrize("name", ["brk", "evil", "alloc"])
def test_report_opens_without_console_errors(reports, tmp_path, name):
    dom, log = chromium(reports[name], tmp_path)
    assert console_errors(log) == []
    assert 'data-charts-ready="yes"' in dom
    assert dom.count('class="main-svg"') >= 4  # plotly drew every chart
    assert '<p id="charts-error" class="error"></p>' in dom
    assert "alert(1)" not in dom or "&lt;/script&gt;" in dom


@needs_chromium
def test_screenshot_shows_the_main_charts(reports, tmp_path):
    from PIL import Image

    png = tmp_path / "shot.png"
    chromium(reports["alloc"], tmp_path, screenshot=png)
    image = Image.open(png).convert("RGB")
    colours = {c for _, c in image.getcolors(maxcolors=1 << 20)}

    def near(rgb: str) -> bool:
        want = tuple(int(rgb[i:i + 2], 16) for i in (1, 3, 5))
        return any(all(abs(a - b) <= 6 for a, b in zip(c, want)) for c in colours)

    assert near("#f48fb1"), "the memory map's stack region is missing"
    assert near("#80cbc4") or near("#fff59d"), "the memory map's heap/data region is missing"
    assert near("#c2185b"), "the stack-depth line is missing"
    assert near("#00897b"), "the heap (break) line is missing"


def test_corrupt_trace_is_refused_with_a_sentence(tmp_path):
    trace = recorded(EXAMPLES / "string_ops.asm", tmp_path / "s")
    path = trace / "accesses.arrows"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    done = trace_cli("report", str(trace), check=False)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.startswith("error:") and "accesses.arrows" in err and "Traceback" not in err


def test_report_reads_the_accesses_table_once(tmp_path, monkeypatch):
    from analysis import open_trace
    from analysis.report import build_report
    from analysis.trace import Trace

    t = open_trace(recorded(EXAMPLES / "recursion.asm", tmp_path / "r"))
    opened = []
    real = Trace.reader

    def counting(self, name, columns=None):
        opened.append(name)
        return real(self, name, columns)

    monkeypatch.setattr(Trace, "reader", counting)
    data = build_report(t)
    assert opened.count("accesses") == 1
    assert data.summary.max_stack_depth == 160


def test_report_of_an_interrupted_recording(tmp_path):
    from analysis import open_trace
    from analysis.html import render_report
    from analysis.report import build_report

    trace = simulate_kill(recorded(EXAMPLES / "recursion.asm", tmp_path / "r"))
    t = open_trace(trace)
    assert t.instructions == 59  # one past the last step with an event (the exit syscall)
    data = build_report(t)
    assert data.stack.deepest.depth == 160
    assert "Incomplete trace" in render_report(data)


def test_killed_recording_with_a_cut_last_batch_still_reports(tmp_path):
    from analysis import open_trace
    from analysis.report import build_report

    # the batch being written when it died
    trace = simulate_kill(recorded(EXAMPLES / "mmap_munmap.asm", tmp_path / "m"),
                          cut={"accesses.arrows": 100})
    data = build_report(open_trace(trace))
    assert not data.summary.complete


@needs_chromium
def test_memory_map_screenshot_shows_every_region_legibly(tmp_path):
    """Each region of brk_fixed's map is drawn at least 40 px tall (room for its name and
    size), not a strip beside a stack that fills the figure."""
    from PIL import Image

    from analysis.figures import _KIND_COLOURS

    trace = recorded(EXAMPLES / "brk_fixed.asm", tmp_path / "b")
    html = tmp_path / "vm.html"
    trace_cli("plot", str(trace), "vmmap", "--html", str(html))
    png = tmp_path / "vm.png"
    chromium(html, tmp_path, screenshot=png)
    image = Image.open(png).convert("RGB")
    pixels = image.load()

    def rows_of(rgb: str) -> int:
        want = tuple(int(rgb[i:i + 2], 16) for i in (1, 3, 5))
        x = image.width // 3  # left of the used-part bands, right of the labels' start
        return sum(all(abs(a - b) <= 4 for a, b in zip(pixels[x, y], want))
                   for y in range(image.height))

    for kind in ("elf", "text", "data", "heap", "vdso", "stack"):
        assert rows_of(_KIND_COLOURS[kind]) >= 40, kind
    assert rows_of(_KIND_COLOURS["stack"]) < 4 * rows_of(_KIND_COLOURS["text"])


def test_the_report_is_one_small_function_per_section(tmp_path):
    """issue 10 item 5: render_report is the sections of SECTIONS in order, each a small
    function that adds its own part of the page."""
    import inspect

    from analysis.html import render_report
    from analysis.html_page import Page
    from analysis.report import build_report
    from analysis.report_sections import SECTIONS
    from analysis.trace import Trace

    data = build_report(Trace(recorded(EXAMPLES / "hello.asm", tmp_path / "h")))
    whole = render_report(data)
    for section in SECTIONS:
        assert len(inspect.getsource(section).splitlines()) <= 45, section.__name__
        page = Page()
        section(page, data)
        assert page.parts and all(part in whole for part in page.parts if "fig" not in part)
    anchors = ["summary", "findings", "vmmap", "stack", "heap", "heatmaps", "syscalls",
               "source"]
    assert [whole.index(f'id="{a}"') for a in anchors] == sorted(
        whole.index(f'id="{a}"') for a in anchors)
