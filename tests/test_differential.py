"""Differential tests: every example and test program, built once with nasm + ld, run natively
(setarch -R, the guest's environment, an 8 MiB stack) and recorded through the CLI, must give
the same stdout, the same exit status or fatal signal, and the same syscall results (brk and
mmap addresses relative to the initial break)."""

from __future__ import annotations

import shutil

import pytest

from cases import case_params, prepare  # noqa: F401  (prepare is a fixture)
from oracles import elf_initial_break, read_table, strace_works

ADDRESS_RESULTS = {"brk", "mmap", "mremap"}
# Results that legitimately differ from the host's: the emulated process has its own pid,
# and its executable is /home/user/NAME (readlink("/proc/self/exe")), not the host's path.
PID_RESULTS = {"getpid", "gettid", "getppid", "set_tid_address"}
PATH_RESULTS = {"readlink", "readlinkat"}


def _stdout(trace) -> bytes:
    output = read_table(trace, "output")
    return b"".join(d for fd, d in zip(output["fd"].to_pylist(), output["data"].to_pylist())
                    if fd == 1)


@pytest.mark.parametrize("case", case_params("ending"))
def test_stdout_and_ending_match_native(case, prepare):
    run = prepare(case)
    native, info = run.native, run.info
    assert run.meta["program"]["elf_sha256"] == run.exe_sha256, "not the same binary"
    if case.stdout_checked_elsewhere is None:
        assert _stdout(run.trace) == native.stdout
    if native.returncode >= 0:
        assert info["exit"] == {"code": native.returncode, "signal": None, "fault": None}
        assert info["stop_reason"] == "exit"
    else:
        assert info["exit"]["code"] is None
        assert info["exit"]["signal"] == native.signal
        assert info["exit"]["fault"]["signal"] == native.signal
        assert info["stop_reason"] == "fault"


@pytest.fixture(scope="session")
def strace_ok(tmp_path_factory, prepare):
    from cases import all_cases

    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    hello = next(c for c in all_cases() if c.source.stem == "hello")
    if not strace_works(tmp_path_factory.mktemp("strace-probe"), prepare(hello).exe):
        pytest.skip("strace cannot trace here (ptrace not permitted)")


def _normalized(name: str, ret: int | None, initial_brk: int):
    if ret is None:
        return None
    if name in PID_RESULTS:
        return "a pid" if ret > 0 else ret
    if name in PATH_RESULTS:
        return "a path length" if ret > 0 else ret
    if name in ADDRESS_RESULTS and ret >= 0:
        return ("initial break +", ret - initial_brk)
    return ret


@pytest.mark.parametrize("case", case_params("syscalls"))
def test_syscall_results_match_native(case, prepare, strace_ok):
    run = prepare(case)
    native = run.strace
    native_brk = next((c.ret for c in native.syscalls if c.name == "brk"), None)
    if native_brk is None:
        native_brk = elf_initial_break(run.exe)
    ours_brk = run.meta["initial"]["brk"]
    theirs = [(c.nr, _normalized(c.name, c.ret, native_brk)) for c in native.syscalls]
    table = read_table(run.trace, "syscalls")
    ours = [(nr, _normalized(name, ret, ours_brk)) for nr, name, ret in zip(
        table["nr"].to_pylist(), table["name"].to_pylist(), table["ret"].to_pylist())]
    assert ours == theirs
    names = [n for n in table["name"].to_pylist()]
    assert [n if n.startswith("syscall_") else n for n in names] == [
        f"syscall_{c.nr}" if c.name.startswith("syscall_") else c.name
        for c in native.syscalls]
    assert run.native.returncode == native.returncode  # strace changed nothing
