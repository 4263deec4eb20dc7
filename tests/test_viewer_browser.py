"""`trace view` in a real browser: Playwright driving Debian's chromium (no browser download)
against a real `trace view` process. What the page shows at a step is checked against the
CLI (`trace state --json`, `trace stack --json`); seeking by URL, keys, slider, history and a
click on a byte; program text stays text; no console errors; every pane is drawn."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROGRAMS, ROOT, TRACE, trace_cli

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install chromium; CI installs it)")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def walk(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("viewer") / "walk"
    trace_cli("record", str(PROGRAMS / "viewer_walk.asm"), "-o", str(out), "-q")
    return out


@pytest.fixture(scope="module")
def server(walk: Path):
    """A `trace view` process on a free port; stopped with Ctrl-C (SIGINT) at the end."""
    proc = subprocess.Popen([*TRACE, "view", str(walk), "--no-open", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True)
    line = proc.stdout.readline()
    assert line.startswith("vmtrace view: http://127.0.0.1:"), (line, proc.stderr.read())
    yield line.split()[2]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) in (0, 130), proc.stderr.read()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A page that fails the test on any console error or uncaught exception."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert errors == []


def cli_state(walk: Path, step: int) -> dict:
    return json.loads(trace_cli("state", str(walk), str(step), "--json").stdout)


def open_at(page, server: str, step: int) -> None:
    page.goto(f"{server}?step={step}")
    expect(page.get_by_test_id("step")).to_have_text(f"{step:,}", timeout=15000)


def shown_step(page) -> int:
    return int(page.get_by_test_id("step").text_content().replace(",", ""))


def wait_step(page, step: int) -> None:
    expect(page.get_by_test_id("step")).to_have_text(f"{step:,}", timeout=15000)


@pytest.mark.parametrize("step", [0, 3, 17, 33])
def test_a_step_from_the_url_shows_the_cli_state(page, server, walk, step):
    open_at(page, server, step)
    expected = cli_state(walk, step)
    for name, value in expected["registers"].items():
        assert page.get_by_test_id(f"reg-{name}").text_content() == f"{value:#018x}", name
    line = expected["source"]["line"]
    expect(page.locator("#source .current")).to_have_attribute("data-line", str(line))
    assert page.get_by_test_id("source-line").text_content().startswith(
        f"viewer_walk.asm:{line}")
    stack = json.loads(trace_cli("stack", str(walk), str(step), "--json").stdout)
    rows = page.get_by_test_id("stack").locator(".srow:not(.frame-head)")
    assert rows.count() == len(stack["rows"])
    assert [int(a, 16) for a in rows.evaluate_all("rs => rs.map(r => r.dataset.addr)")] \
        == [r["addr"] for r in stack["rows"]]
    heads = page.get_by_test_id("stack").locator(".frame-head")
    assert heads.count() == len(stack["frames"])
    assert page.get_by_test_id("vmmap").locator(".region").count() == len(expected["map"])


def test_keys_slider_and_history(page, server):
    open_at(page, server, 0)
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    wait_step(page, 3)
    page.keyboard.press("ArrowLeft")
    wait_step(page, 2)
    page.keyboard.press("Shift+ArrowRight")
    wait_step(page, 33)                          # clamped at the last step
    page.keyboard.press("Home")
    wait_step(page, 0)
    page.keyboard.press("c")
    wait_step(page, 1)                           # in the callee
    page.keyboard.press("r")
    wait_step(page, 6)                           # back in the caller
    page.keyboard.press("s")
    wait_step(page, 16)                          # on the write syscall
    assert page.url.endswith("?step=16")
    page.go_back()
    wait_step(page, 6)
    page.go_back()
    wait_step(page, 1)
    page.go_forward()
    wait_step(page, 6)
    page.locator("#slider").fill("20")
    wait_step(page, 20)
    page.keyboard.press("End")
    wait_step(page, 33)


def test_a_click_on_the_timeline_seeks(page, server):
    open_at(page, server, 0)
    plot = page.locator("#timeline .nsewdrag").first
    expect(plot).to_be_visible()
    box = plot.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(300)
    assert abs(shown_step(page) - 33 / 2) <= 2
    traces = page.locator("#timeline").evaluate("d => d.data.map(t => t.name)")
    assert traces[:3] == ["stack depth (bytes)", "program break above its start (bytes)",
                          "syscalls"]
    assert page.locator("#timeline").evaluate("d => d.layout.xaxis.range") == [0, 33]


def click_on_counter_byte(page) -> None:
    """Shows `counter` (2 at steps 10-27) in the memory pane and clicks its first byte: the
    page lands just after its writer, the `inc` of step 9."""
    box = page.locator("#mem-addr")
    box.fill("counter")
    box.press("Enter")
    first = page.locator("#memory .byte").first
    expect(first).to_have_text("02")
    first.click()
    wait_step(page, 10)


def test_a_click_on_a_byte_lands_on_its_writer(page, server):
    open_at(page, server, 12)
    click_on_counter_byte(page)
    expect(page.locator("#memory .byte.written")).to_have_count(8)
    assert "step 9" in page.locator("#who").text_content()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("w")
    wait_step(page, 28)                          # the next write to the watched byte
    page.keyboard.press("W")
    wait_step(page, 10)


def test_program_text_stays_text(page, server):
    open_at(page, server, 33)
    out = page.locator("#output")
    expect(out).to_contain_text("<img src=x onerror=alert(1)>")
    assert out.locator("img").count() == 0


def test_every_pane_is_drawn(page, server, tmp_path):
    from PIL import Image

    open_at(page, server, 8)
    expect(page.locator("#disassembly .insn.current")).to_have_count(1)
    for sel in ("#timeline", "#source", "#disassembly", "#registers", "#stack", "#vmmap",
                "#memory"):
        shot = Image.open(io.BytesIO(page.locator(sel).screenshot())).convert("RGB")
        colours = shot.getcolors(maxcolors=1 << 16) or []
        assert len(colours) > 8, f"{sel} looks blank"
    page.screenshot(path=str(tmp_path / "viewer.png"))


@pytest.fixture(scope="module")
def exported(walk: Path, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("export") / "view"
    done = trace_cli("view", str(walk), "--export", str(out))
    assert "index.html" in done.stderr.decode() + done.stdout.decode()
    return (out / "index.html").as_uri()


@pytest.mark.parametrize("step", [0, 9, 17, 33])
def test_an_exported_view_shows_the_same_state_from_file(page, exported, walk, step):
    page.goto(f"{exported}?step={step}")
    wait_step(page, step)
    expected = cli_state(walk, step)
    for name, value in expected["registers"].items():
        assert page.get_by_test_id(f"reg-{name}").text_content() == f"{value:#018x}", name
    assert page.get_by_test_id("source-line").text_content().startswith(
        f"viewer_walk.asm:{expected['source']['line']}")
    stack = json.loads(trace_cli("stack", str(walk), str(step), "--json").stdout)
    assert page.get_by_test_id("stack").locator(".srow:not(.frame-head)").count() \
        == len(stack["rows"])
    assert page.get_by_test_id("vmmap").locator(".region").count() == len(expected["map"])


def test_an_exported_view_moves_and_finds_writers(page, exported):
    page.goto(f"{exported}?step=12")
    wait_step(page, 12)
    page.keyboard.press("c")
    wait_step(page, 25)
    click_on_counter_byte(page)
    expect(page.locator("#memory .byte.written")).to_have_count(8)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("w")
    wait_step(page, 28)
    expect(page.locator("#output")).to_contain_text("<img src=x onerror=alert(1)>")
