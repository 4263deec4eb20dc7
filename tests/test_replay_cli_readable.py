"""What the replay commands print reads as the program does (issue 15): lengths in hex like
addresses, who-wrote's value as a number, `trace state` with the source line's text and a
disassembly that names addresses (`[increment]`, `call fact`)."""

from __future__ import annotations

import json

import pytest

from conftest import EXAMPLES, PROGRAMS, trace_cli

STDIN = b"0123456789abcdefghijklmnopqrstuv"


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    from tracer.recorder import RecordOptions, record as run_record

    base = tmp_path_factory.mktemp("readable")
    out = {}
    for src in (EXAMPLES / "brk_tutorial.asm", EXAMPLES / "recursion.asm",
                EXAMPLES / "string_ops.asm", PROGRAMS / "replay_read.asm"):
        run_record(RecordOptions(program=src, output=base / src.stem, stdin=STDIN))
        out[src.stem] = base / src.stem
    return out


def test_lengths_accept_hex_like_addresses(traces):
    path = str(traces["string_ops"])
    assert trace_cli("mem", path, "dst", "0x20").stdout == trace_cli("mem", path, "dst",
                                                                     "32").stdout
    assert json.loads(trace_cli("accesses", path, "dst", "0x4", "--json").stdout) == \
        json.loads(trace_cli("accesses", path, "dst", "4", "--json").stdout)
    bad = trace_cli("mem", path, "dst", "lots", check=False)
    assert bad.returncode == 2 and b"not a number" in bad.stderr
    big = trace_cli("mem", path, "dst", "0x200000", check=False)
    assert big.returncode == 2 and b"not in the range" in big.stderr


def test_who_wrote_shows_the_value_as_a_number_and_the_bytes_if_asked(traces):
    path = str(traces["replay_read"])
    human = trace_cli("who-wrote", path, "count").stdout.decode()
    assert f"{len(STDIN):#x}" in human and "2000000000000000" not in human
    raw = trace_cli("who-wrote", path, "count", "--bytes").stdout.decode()
    assert "2000000000000000" in raw


def _steps_with(session, last, mnemonic):
    from timetravel import state_at

    for step in range(last):
        st = state_at(session, step)
        if st.instruction is not None and st.instruction.mnemonic == mnemonic:
            return st
    raise AssertionError(f"no {mnemonic}")


def test_state_names_addresses_in_the_disassembly_and_shows_the_source_text(traces):
    from timetravel import last_step, open_session

    tut = open_session(traces["brk_tutorial"])
    add = _steps_with(tut, last_step(tut.trace), "add")
    assert add.symbolic == "add rbx, qword ptr [increment]"
    assert add.source_text.startswith("add rbx, [increment]")
    human = trace_cli("state", str(traces["brk_tutorial"]), str(add.step)).stdout.decode()
    assert "[increment]" in human and "add rbx, [increment]" in human
    assert add.to_json()["source"]["text"] == add.source_text

    rec = open_session(traces["recursion"])
    call = _steps_with(rec, last_step(rec.trace), "call")
    assert call.symbolic == "call fact"
    human = trace_cli("state", str(traces["recursion"]), str(call.step)).stdout.decode()
    assert "call fact" in human
