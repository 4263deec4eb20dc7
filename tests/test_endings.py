"""How a run ends, alike in the recorder, the trace and the replay: one StopReason, one
Fault, and a hook's exception kept as it is and raised at one place by each engine."""

from __future__ import annotations

import json

import pytest

from conftest import PROGRAMS
from tracer.ending import Fault, StopReason
from tracer.format import TraceFiles
from tracer.recorder import RecordOptions, record
from tracer.replay.inputs import load_inputs
from tracer.replay.machine import ReplayMachine


def _replayed(trace) -> ReplayMachine:
    machine = ReplayMachine(load_inputs(TraceFiles(trace)))
    machine.load_initial()
    machine.run()
    return machine


def test_the_recorder_the_trace_and_the_replay_share_one_fault(tmp_path):
    result = record(RecordOptions(program=PROGRAMS / "int3.asm", output=tmp_path / "t"))
    recorded = TraceFiles(tmp_path / "t").meta.end
    ending = _replayed(tmp_path / "t").ending
    assert result.stop_reason == recorded.stop_reason == ending.stop_reason == StopReason.FAULT
    assert type(result.fault) is type(recorded.fault) is type(ending.fault) is Fault
    assert result.fault == recorded.fault
    # The replay works the signal out with the recorder's own function (tracer.interrupts).
    got = ending.fault
    assert (got.signal, got.cause, got.rip) == (result.fault.signal, result.fault.cause,
                                                result.fault.rip)


class Boom(Exception):
    """Stands for a bug in a syscall handler."""


def test_a_recorder_hook_exception_is_raised_as_itself_once_the_trace_is_closed(
        tmp_path, monkeypatch):
    boom = Boom("a handler's bug")

    def dispatch(*_):
        raise boom

    monkeypatch.setattr("tracer.recorder.dispatch", dispatch)
    with pytest.raises(Boom) as raised:
        record(RecordOptions(program=PROGRAMS / "exit_group.asm", output=tmp_path / "t"))
    assert raised.value is boom  # the exception itself, not a string made of it
    assert any(str(tmp_path / "t") in note for note in raised.value.__notes__)
    end = json.loads((tmp_path / "t" / "meta.json").read_text())["end"]
    assert end["stop_reason"] == "error"  # the trace keeps saying how it ended
    assert end["error"] == f"internal error while emulating a syscall: {boom!r}"


def test_a_replay_hook_exception_is_raised_as_itself(tmp_path, monkeypatch):
    record(RecordOptions(program=PROGRAMS / "exit_group.asm", output=tmp_path / "t"))
    boom = Boom("a replay bug")

    def syscall(self, uc, *_):
        raise boom

    monkeypatch.setattr(ReplayMachine, "_syscall", syscall)
    with pytest.raises(Boom) as raised:
        _replayed(tmp_path / "t")
    assert raised.value is boom


def test_the_syscall_abi_and_the_fault_kinds_have_one_copy():
    """The replay reads syscalls and faults with the recorder's tables (tracer/syscalls/abi.py,
    numbers.py, interrupts.memory_fault), not copies of its own."""
    import ast

    from conftest import ROOT

    defined: dict[str, list[str]] = {}
    uses_access_types = set()
    for path in sorted((ROOT / "tracer").rglob("*.py")):
        source = path.read_text()
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef):
                defined.setdefault(node.name, []).append(rel)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            defined.setdefault(name.id, []).append(rel)
        if "UC_MEM_FETCH_PROT" in source:
            uses_access_types.add(rel)
    for name in ("ARCH_SET_FS", "ARCH_SET_GS", "EXIT_SYSCALLS", "uc_prot", "syscall_number"):
        assert len(defined.get(name, [])) == 1, (name, defined.get(name))
    assert not {"_ARG_REGS", "_EXIT", "_ACCESS", "_FETCH"} & set(defined)
    assert uses_access_types == {"tracer/interrupts.py"}
