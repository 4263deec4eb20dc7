"""The program's source and its includes are kept inside the trace (sources.arrows): the
listing and findings work from any directory, traces recorded before still work and say
which file is missing, and nothing outside the build sandbox's directories is kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import EXAMPLES, PROGRAMS, ROOT, trace_cli
from tracer.format.schema import META_FILE, SOURCES_FILE


def _record_here(tmp_path: Path, source: Path) -> Path:
    """Records with a relative source path from a directory that is then left behind."""
    work = tmp_path / "work"
    shutil.copytree(source.parent, work / "src")
    trace_cli("record", f"src/{source.name}", "-o", "t", "--no-echo", cwd=work)
    moved = tmp_path / "elsewhere" / "t"
    moved.parent.mkdir()
    shutil.move(work / "t", moved)
    shutil.rmtree(work)
    return moved


def test_report_from_another_directory_keeps_listing_and_explanation(tmp_path):
    trace = _record_here(tmp_path, EXAMPLES / "brk_tutorial.asm")
    html = tmp_path / "r.html"
    trace_cli("report", str(trace), "-o", str(html), cwd=tmp_path)
    page = html.read_text()
    assert "not where it was recorded" not in page and "only line numbers" not in page
    assert "increment db 0x1000" in page  # the listing and the wide-read finding
    trace_cli("info", str(trace), cwd=tmp_path)
    import analysis

    t = analysis.open_trace(trace)
    t.files.verify()
    assert t.source().note is None and "increment" in t.source_text()


def test_included_files_are_kept(tmp_path):
    import analysis

    trace = _record_here(tmp_path, PROGRAMS / "include" / "main.asm")
    kept = {s.path: s.role for s in analysis.open_trace(trace).files.sources()}
    assert kept == {"src/main.asm": "main", "status.inc": "include"}
    assert "%define STATUS 7" in analysis.open_trace(trace).source("status.inc").text


def test_a_changed_sources_file_is_refused(tmp_path):
    trace = _record_here(tmp_path, EXAMPLES / "hello.asm")
    data = bytearray((trace / SOURCES_FILE).read_bytes())
    data[-20] ^= 1
    (trace / SOURCES_FILE).write_bytes(bytes(data))
    done = trace_cli("report", str(trace), "-o", str(tmp_path / "r.html"), check=False)
    assert done.returncode == 2 and b"sources.arrows is corrupt" in done.stderr


def test_a_trace_recorded_before_says_which_file_is_missing(tmp_path):
    trace = _record_here(tmp_path, EXAMPLES / "brk_tutorial.asm")
    # What an older recording looks like: no sources.arrows, none in `files`.
    (trace / SOURCES_FILE).unlink()
    meta = json.loads((trace / META_FILE).read_text())
    del meta["files"][SOURCES_FILE]
    (trace / META_FILE).write_text(json.dumps(meta))
    html = tmp_path / "r.html"
    trace_cli("report", str(trace), "-o", str(html), cwd=tmp_path)
    page = html.read_text()
    assert ("recorded before vmtrace kept sources, and src/brk_tutorial.asm (relative to "
            "where `trace record` ran) is not found from") in page


def test_nothing_outside_the_sandbox_directories_is_kept(tmp_path):
    from tracer.sources import collect_sources

    (tmp_path / "src").mkdir()
    (tmp_path / "secret.inc").write_text("SECRET\n")
    main = tmp_path / "src" / "m.asm"
    main.write_text(f'%include "../secret.inc"\n%include "{tmp_path / "secret.inc"}"\n')
    kept = collect_sources(main, "asm", (), [str(tmp_path / "secret.inc")])
    assert [k.path for k in kept] == [str(main)]


def test_a_big_source_is_kept_cut_and_says_so(tmp_path):
    from tracer.format.sources import MAX_SOURCE_FILE_BYTES
    from tracer.sources import collect_sources

    main = tmp_path / "big.asm"
    main.write_text(";" * (MAX_SOURCE_FILE_BYTES + 10) + "\n")
    (k,) = collect_sources(main, "asm", (), [])
    assert k.truncated and len(k.data) == MAX_SOURCE_FILE_BYTES
    assert k.size == MAX_SOURCE_FILE_BYTES + 11
