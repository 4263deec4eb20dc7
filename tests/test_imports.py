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


# -- no import cycles --------------------------------------------------------------------
def _module_name(path, root) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules a module imports, at its top or inside functions (lazily);
    imports under `if TYPE_CHECKING:` never run and do not count."""
    import ast

    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    out = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                     for a in node.names]
        else:
            continue
        out.update(name for name in names if name in known and name != module)
    return out


def _import_graph(*packages: str) -> dict[str, set[str]]:
    import ast

    files = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[_module_name(path, ROOT)] = path
    known = set(files)
    return {name: _imported(ast.parse(path.read_text()), name, path.name == "__init__.py",
                            known)
            for name, path in files.items()}


def _a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph as the list of its modules (first repeated last)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_lazy_import_cycle():
    graph = _import_graph("analysis")
    graph["analysis.summary"] = graph["analysis.summary"] | {"analysis.findings"}
    graph["analysis.findings"] = graph["analysis.findings"] | {"analysis.summary"}
    assert _a_cycle(graph) is not None
    import ast

    tree = ast.parse("def f():\n    from analysis import heap\n")
    assert _imported(tree, "analysis.trace", False, {"analysis.heap"}) == {"analysis.heap"}


@pytest.mark.parametrize("package", ["analysis", "tracer", "vmtrace"])
def test_no_import_cycle(package):
    cycle = _a_cycle(_import_graph(package))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)

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
