"""The CLI end to end on the bundled hello example."""

from conftest import EXAMPLES, record, trace_cli


def test_hello_records_and_reports_its_output(workdir):
    info = record(EXAMPLES / "hello.asm", workdir / "hello")
    assert info["stdout"] == "Hello, world!\n"
    assert info["exit"] == {"code": 0, "signal": None, "fault": None}
    assert info["stop_reason"] == "exit"
    assert [s["name"] for s in info["syscalls"]] == ["write", "exit"]
    assert info["accesses"]["by_source"]["kernel"] == {"read": 1, "write": 0}


def test_info_json_has_exactly_the_documented_keys(workdir):
    info = record(EXAMPLES / "hello.asm", workdir / "hello")
    assert set(info) == {"format_version", "program", "exit", "stop_reason", "stdout",
                         "instructions", "accesses", "syscalls", "brk", "regions",
                         "max_stack_depth", "warnings", "events"}
    assert info["events"] == "recorded"


def test_human_info_names_the_program(workdir):
    record(EXAMPLES / "hello.asm", workdir / "hello")
    out = trace_cli("info", str(workdir / "hello")).stdout.decode()
    assert "exited with status 0" in out
