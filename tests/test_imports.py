"""The one-way imports (STYLE.md): `import analysis` must not load the emulator, and
`import tracer` must not load the read side's heavy dependencies. Checked in a fresh
interpreter, where sys.modules shows what an import really pulled in."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=120)
    return {name.split(".")[0] for name in json.loads(done.stdout)}


@pytest.mark.parametrize("statement", ["import analysis",
                                       "from analysis import open_trace",
                                       "import analysis.summary, analysis.regions"])
def test_analysis_does_not_load_the_emulator(statement):
    loaded = _loaded_after(statement)
    assert not loaded & {"unicorn", "capstone", "elftools"}


@pytest.mark.parametrize("statement", ["import tracer", "import tracer.format",
                                       "import tracer.format.writer", "import tracer.loader"])
def test_tracer_does_not_load_pandas_or_plotly(statement):
    loaded = _loaded_after(statement)
    assert not loaded & {"pandas", "plotly", "analysis"}


def test_the_recorder_does_not_load_pandas():
    loaded = _loaded_after("from tracer.recorder import record")
    assert not loaded & {"pandas", "plotly", "analysis"}


def test_a_whole_recording_does_not_load_pandas():
    # pyarrow imports pandas on any pa.array() call; the recorder builds its arrays from
    # buffers so that `trace record` does not pay pandas' start-up.
    loaded = _loaded_after(
        "from pathlib import Path; import tempfile\n"
        "from tracer.recorder import RecordOptions, record\n"
        "out = Path(tempfile.mkdtemp()) / 't'\n"
        "record(RecordOptions(program=Path('examples/mmap_munmap.asm'), output=out))")
    assert "pandas" not in loaded


def test_the_format_package_imports_pyarrow_only():
    loaded = _loaded_after("import tracer.format")
    assert not loaded & {"unicorn", "capstone", "elftools", "pandas", "duckdb", "plotly"}


def test_the_query_api_loads_no_cli_code():
    # timetravel is headless: the CLI, bench and the web viewer are its clients.
    loaded = _loaded_after("import timetravel, timetravel.query, timetravel.index")
    assert not loaded & {"vmtrace", "typer", "rich", "click"}


def _imported_modules(path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions too)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "vmtrace" / "commands").glob("*.py")),
                         ids=lambda p: p.name)
def test_cli_commands_import_no_unicorn(path):
    # The commands parse and print; the emulator (and its hooks) stays behind tracer and
    # timetravel.
    imported = _imported_modules(path)
    assert not {m for m in imported if m.split(".")[0] in ("unicorn", "capstone")}


def test_timetravel_imports_no_cli_module_at_any_depth():
    for path in (ROOT / "timetravel").glob("*.py"):
        imported = _imported_modules(path)
        assert not {m for m in imported if m.split(".")[0] in ("vmtrace", "typer", "rich")}, \
            path.name
