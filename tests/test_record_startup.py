"""`trace record`'s start-up (issue 13): it loads only what a recording needs, and the
sandboxed build is under way before the heavy modules load. Checked in a fresh interpreter,
where sys.modules shows what the command really pulled in; never timed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import EXAMPLES, ROOT

# What a recording never needs: the CLI framework and its value coercion, the read side's
# heavy modules, pyarrow's compute kernels.
NEVER = {"typer", "pydantic", "pydantic_core", "click", "pandas", "plotly", "duckdb",
         "pyarrow.compute", "pyarrow.dataset", "analysis.trace", "analysis.summary",
         "elftools"}

# Runs `trace record` as the command does (its own process, ended by os._exit), and prints
# what it loaded just before that exit.
_SPY = """
import json, os, sys, threading
import tracer.build_job as build_job
started = []
real_init = build_job.BuildJob.__init__
def init(self, *args, **kwargs):
    real_init(self, *args, **kwargs)
    started.append(True)
build_job.BuildJob.__init__ = init
heavy_after_build = {}
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name in ("pyarrow", "numpy", "unicorn") and name not in heavy_after_build:
            heavy_after_build[name] = bool(started)
        return None
sys.meta_path.insert(0, Spy())
real_exit = os._exit
def report_then_exit(status):
    import gc
    import pyarrow
    print(json.dumps({"modules": sorted(m for m, v in sys.modules.items() if v is not None),
                      "pool": pyarrow.default_memory_pool().backend_name,
                      "heavy_after_build": heavy_after_build, "gc_enabled": gc.isenabled(),
                      "status": status}), flush=True)
    real_exit(status)
os._exit = report_then_exit
from vmtrace.cli import main
sys.argv = ["trace", *sys.argv[1:]]
main()
"""


def _record(tmp_path, *extra: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _SPY, "record", str(EXAMPLES / "hello.asm"),
                           "-o", str(tmp_path / "t"), *extra], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["status"] == 0
    return report


@pytest.mark.parametrize("extra", [(), ("-q",)], ids=["summary", "quiet"])
def test_trace_record_loads_no_cli_framework_nor_read_side(tmp_path, extra):
    loaded = set(_record(tmp_path, *extra)["modules"])
    assert not loaded & NEVER, sorted(loaded & NEVER)
    # -q prints nothing; the summary lines into a pipe are printed without rich (their
    # text is rich's: tests/test_terminal_output.py)
    assert not {m for m in loaded if m.split(".")[0] == "rich"}


def test_the_install_adds_no_import_finder():
    # `make setup` installs this checkout as a path in a .pth file (editable_mode=compat):
    # setuptools' default editable finder cost every command ~15 ms of start-up.
    done = subprocess.run([sys.executable, "-c", "import sys, json; print(json.dumps("
                           "[f.__module__ for f in sys.meta_path]))"],
                          capture_output=True, text=True, cwd="/", timeout=60, check=True)
    finders = json.loads(done.stdout)
    assert not [f for f in finders if "editable" in f], finders


def test_the_collector_is_on_again_after_the_imports(tmp_path):
    # It is off while the recorder's modules load (their objects are then frozen): a
    # recording, or an in-process caller after it, must find it as it was.
    assert _record(tmp_path, "-q")["gc_enabled"] is True


def test_the_build_starts_before_the_heavy_modules_load(tmp_path):
    # The sandboxed nasm + ld then run on another core while pyarrow and unicorn load.
    assert _record(tmp_path, "-q")["heavy_after_build"] == {"pyarrow": True, "unicorn": True}


def test_the_record_process_never_loads_numpy(tmp_path):
    # pyarrow would import it (~50 ms); the record process hides it (vmtrace/cli.py), so
    # nothing on its path may need it. Every CLI test records through this same path.
    report = _record(tmp_path)
    assert "numpy" not in report["modules"] and "numpy" not in report["heavy_after_build"]


def test_the_record_process_allocates_with_the_system_allocator(tmp_path):
    # Arrow's mimalloc arenas cost start-up and memory a recording gains nothing from
    # (vmtrace/cli.py); a user's ARROW_DEFAULT_MEMORY_POOL still wins.
    assert _record(tmp_path, "-q")["pool"] == "system"


def test_a_caller_that_has_numpy_keeps_it(tmp_path):
    # main(argv) in a caller's process (as the tests call it) hides nothing of theirs.
    import numpy  # noqa: F401

    from vmtrace.cli import main

    main(["record", str(EXAMPLES / "hello.asm"), "-o", str(tmp_path / "t"), "-q"])
    assert sys.modules["numpy"] is not None


def test_a_command_line_typer_must_read_still_records(tmp_path):
    # `--output=DIR` after `--`-less program arguments, `-q` last: still plain. `-oDIR` is
    # not taken by the plain parser and goes to typer, which records the same.
    from conftest import trace_cli

    trace_cli("record", str(EXAMPLES / "hello.asm"), f"-o{tmp_path / 't'}", "-q")
    assert (tmp_path / "t" / "meta.json").is_file()
