"""The benchmark harness runs end to end at its tiniest size. It checks that the harness works,
never how fast anything is: speed is measured by `make bench`, not by timed tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("valgrind") is None or not Path("/usr/bin/time").exists(),
    reason="the benchmark runs valgrind's lackey and GNU time")


def test_bench_runs_every_tool_on_every_workload_without_writing_results():
    results = ROOT / "bench" / "RESULTS.md"
    before = results.stat().st_mtime_ns if results.exists() else None
    done = subprocess.run([sys.executable, "bench/run.py", "--sizes", "small", "--runs", "1",
                           "--no-write"], cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("mixed", "memloop", "recursion", "repstring", "churn", "malloc_pairs"):
        for tool in ("native", "unicorn no-hook", "trace record", "lackey→file",
                     "lackey→/dev/null"):
            assert any(line.startswith(name) and tool in line
                       for line in done.stdout.splitlines()), (name, tool)
    assert "Targets (issue 4" in done.stdout
    assert "Headline targets (issue 13" in done.stdout
    for target in ("`trace record hello.asm` ≤ 0.25 s", "`trace info` < 1 s",
                   "`trace record --fast` ≤ 1.5× no-hook"):
        assert target in done.stdout, target
    assert "no-hook loader (hello ELF)" in done.stdout and "python -c pass" in done.stdout
    assert (results.stat().st_mtime_ns if results.exists() else None) == before
