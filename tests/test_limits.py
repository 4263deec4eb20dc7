"""Limits that bound what they say, end to end through the CLI: Ctrl-C and SIGTERM stop a
recording and keep a verified trace; --max-trace-mb counts every file; the kernel's writes
never pile up in memory; --max-memory fails mmap/brk as `ulimit -v` does and bounds the
recorder's memory; the free-disk floor stops the run; each stop names its option."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PROGRAMS, ROOT, TRACE, build_native, trace_cli
from oracles import read_table

LIMITS = PROGRAMS / "limits"
MIB = 1 << 20


def _wait_for(root: Path, name: str, min_bytes: int, proc: subprocess.Popen,
              timeout: float = 120) -> None:
    """Waits until a trace file under `root` has grown past `min_bytes` (wherever the
    recording writes it before the trace is moved into place)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the recording ended by itself"
        if any(p.stat().st_size > min_bytes for p in root.rglob(name) if p.is_file()):
            return
        time.sleep(0.02)
    raise AssertionError(f"no {name} of {min_bytes} bytes after {timeout} s")


def _info(trace: Path) -> dict:
    return json.loads(trace_cli("info", str(trace), "--json").stdout)


def _verify(trace: Path) -> str:
    return trace_cli("replay", str(trace), "--verify").stdout.decode()


def _peak_rss_mb(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    """Runs `trace ARGS` under a fresh Python whose only child it is: its ru_maxrss."""
    probe = ("import resource, subprocess, sys; "
             "done = subprocess.run(sys.argv[1:], capture_output=True); "
             "sys.stderr.buffer.write(done.stderr); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)")
    done = subprocess.run([sys.executable, "-c", probe, *TRACE, *args], capture_output=True,
                          cwd=ROOT, timeout=300)
    kib, returncode = done.stdout.split()
    return int(kib) / 1024, subprocess.CompletedProcess(args, int(returncode), b"",
                                                        done.stderr)


# -- Ctrl-C and SIGTERM ----------------------------------------------------------------------
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_recording_and_keeps_a_verified_trace(tmp_path, sig, status):
    out = tmp_path / "t"
    proc = subprocess.Popen([*TRACE, "record", str(LIMITS / "loop_forever.asm"), "-o",
                             str(out), "--no-echo"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=ROOT)
    try:
        _wait_for(tmp_path, "accesses.arrows", 10_000, proc)
        sent = time.monotonic()
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    message = stderr.decode()
    assert proc.returncode == status, message
    assert stopped_in < 5, f"took {stopped_in:.1f} s to stop"  # half a second, typically
    assert f"interrupted by {sig.name} at step " in message and ", RIP 0x" in message
    assert f"trace written to {out}" in message
    assert "Traceback" not in message
    info = _info(out)
    assert info["stop_reason"] == "interrupted"
    assert info["instructions"] > 0 and info["accesses"]["write"] > 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and meta["end"]["truncated"] is True
    assert set(meta["files"]) >= {"accesses.arrows", "exec_counts.arrows"}
    assert "interrupted" in trace_cli("info", str(out)).stdout.decode()
    assert "replay reproduces the trace exactly" in _verify(out)


def test_ctrl_c_while_a_syscall_is_emulated_stops_the_run_too(tmp_path):
    out = tmp_path / "t"
    proc = subprocess.Popen([*TRACE, "record", str(LIMITS / "syscall_forever.asm"), "-o",
                             str(out), "--no-echo"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=ROOT)
    try:
        _wait_for(tmp_path, "syscalls.arrows", 4096, proc)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, stderr.decode()
    assert "internal error" not in stderr.decode()
    info = _info(out)
    assert info["stop_reason"] == "interrupted"
    assert len(read_table(out, "syscalls")) > 64
    assert "replay reproduces the trace exactly" in _verify(out)


def test_a_second_ctrl_c_while_closing_leaves_the_trace_whole(tmp_path):
    out = tmp_path / "t"
    proc = subprocess.Popen([*TRACE, "record", str(LIMITS / "loop_forever.asm"), "-o",
                             str(out), "--no-echo"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=ROOT)
    try:
        _wait_for(tmp_path, "accesses.arrows", 10_000, proc)
        for _ in range(3):  # the user presses Ctrl-C again and again
            proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert _info(out)["stop_reason"] == "interrupted"
    assert "replay reproduces the trace exactly" in _verify(out)


# -- the size of the trace: every file -------------------------------------------------------
def test_max_trace_mb_counts_the_kernels_writes_too(tmp_path):
    out = tmp_path / "t"
    done = trace_cli("record", str(LIMITS / "getrandom_loop.asm"), "-o", str(out), "--no-echo",
                     "--max-steps", "300", "--max-trace-mb", "1")
    total = sum(f.stat().st_size for f in out.iterdir())
    assert total < 1.5 * MIB  # each call would write 32 MiB
    assert _info(out)["stop_reason"] == "max-trace-size"
    message = done.stderr.decode()
    assert "--max-trace-mb 1)" in message and "raise it with --max-trace-mb" in message
    # the syscall that reached the limit moved what fitted; the run stopped right after it
    syscalls = read_table(out, "syscalls").to_pylist()
    assert [s["name"] for s in syscalls] == ["getrandom"]
    assert 0 < syscalls[0]["ret"] <= MIB
    assert "replay reproduces the trace exactly" in _verify(out)


def test_the_kernels_writes_never_pile_up_in_memory(tmp_path):
    # 300 steps = 60 calls of getrandom(32 MiB) if no limit stopped them: 1.9 GB of rows.
    peak, done = _peak_rss_mb("record", str(LIMITS / "getrandom_loop.asm"), "-o",
                              str(tmp_path / "t"), "--no-echo", "--max-steps", "300",
                              "--max-trace-mb", "160")
    assert done.returncode == 0, done.stderr.decode()
    assert peak < 600, f"peak RSS {peak:.0f} MB"
    assert sum(f.stat().st_size for f in (tmp_path / "t").iterdir()) < 170 * MIB


def test_the_free_disk_floor_stops_the_run(tmp_path):
    out = tmp_path / "t"
    done = trace_cli("record", str(LIMITS / "loop_forever.asm"), "-o", str(out), "--no-echo",
                     "--min-free-mb", str(1 << 40))
    assert _info(out)["stop_reason"] == "min-free-disk"
    message = done.stderr.decode()
    assert "less than" in message and "--min-free-mb" in message
    assert json.loads((out / "meta.json").read_text())["end"]["truncated"] is True
    assert "replay reproduces the trace exactly" in _verify(out)


def test_the_default_limits_are_kept_in_the_metadata(tmp_path):
    out = tmp_path / "t"
    trace_cli("record", str(ROOT / "examples" / "hello.asm"), "-o", str(out), "--no-echo")
    limits = json.loads((out / "meta.json").read_text())["limits"]
    assert limits == {"max_steps": None, "max_trace_mb": 1024, "min_free_mb": 512,
                      "max_memory_mb": 4096}
    trace_cli("record", str(ROOT / "examples" / "hello.asm"), "-o", str(out), "--no-echo",
              "--max-trace-mb", "0", "--min-free-mb", "0", "--max-memory", "1.5G")
    limits = json.loads((out / "meta.json").read_text())["limits"]
    assert limits == {"max_steps": None, "max_trace_mb": None, "min_free_mb": None,
                      "max_memory_mb": 1536}


# -- the guest's memory ----------------------------------------------------------------------
def _limit_address_space(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def test_max_memory_fails_mmap_and_brk_as_ulimit_v_does(tmp_path):
    source = LIMITS / "memory_limit.asm"
    exe = build_native(source, tmp_path)
    native = subprocess.run(["setarch", "-R", str(exe)], capture_output=True, timeout=60,
                            preexec_fn=_limit_address_space(256 * MIB))
    assert native.returncode == 3  # three 64 MiB mappings fit in 256 MiB
    out = tmp_path / "t"
    peak, done = _peak_rss_mb("record", str(source), "-o", str(out), "--no-echo",
                              "--max-memory", "256M")
    assert done.returncode == 0, done.stderr.decode()
    info = _info(out)
    assert info["exit"]["code"] == native.returncode
    # the same failing mmap (-ENOMEM) and the same unmoved break
    assert b"".join(read_table(out, "output")["data"].to_pylist()) == native.stdout
    message = done.stderr.decode()
    assert "2 mmap/brk/mremap requests failed because of the --max-memory limit" in message
    # Unicorn backs every touched guest page with host memory: the limit bounds that too
    assert peak < 256 + 300, f"peak RSS {peak:.0f} MB"


def test_a_max_memory_that_is_not_a_size_is_one_line(tmp_path):
    done = trace_cli("record", str(ROOT / "examples" / "hello.asm"), "-o",
                     str(tmp_path / "t"), "--max-memory", "lots", check=False)
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "--max-memory 'lots'" in lines[0]
