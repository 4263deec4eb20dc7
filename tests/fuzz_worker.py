"""Records random-instruction programs in one process, for tests/test_fuzz_instructions.py:
for each seed, a raw ELF of a fixed prologue, 32 random bytes and `ud2`, recorded with a step
limit and replayed with `verify`, and recorded again with the per-instruction code hook
(RecordOptions.per_instruction), the oracle of block mode: `modes` says what differs, if
anything. Prints one JSON line per program; a Python exception other
than a TracerError ends the process with its traceback (the test then fails on it).

Run: python tests/fuzz_worker.py OUT_DIR FIRST_SEED COUNT MAX_STEPS"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from raw_elf import elf, point_registers_at_data  # noqa: E402

from tracer.errors import TracerError  # noqa: E402
from tracer.format import TraceFiles  # noqa: E402
from tracer.recorder import RecordOptions, record  # noqa: E402
from tracer.replay.verify import verify  # noqa: E402

UD2 = b"\x0f\x0b"  # the end without a syscall: the native run can make none


def program(seed: int) -> bytes:
    """The code of program `seed`."""
    return point_registers_at_data() + random.Random(seed).randbytes(32) + UD2


def mode_differences(blocks: Path, code_hook: Path) -> str | None:
    """What differs between a block-mode recording and a per-instruction one of the same
    program: the event tables row for row, and `end` (but eflags at a data fault, where
    Unicorn with a code hook leaves AF out)."""
    a, b = TraceFiles(blocks), TraceFiles(code_hook)
    for table in ("accesses", "rsp", "exec_counts"):
        if not a.table(table).equals(b.table(table)):
            return f"{table} differs"
    ends = [json.loads((t / "meta.json").read_text())["end"] for t in (blocks, code_hook)]
    fault = ends[0].get("fault")
    if fault is not None and fault.get("access") in ("read", "write"):
        for end in ends:
            end["registers"].pop("eflags", None)
    return None if ends[0] == ends[1] else "end differs"


def main() -> None:
    out, first, count, max_steps = Path(sys.argv[1]), *map(int, sys.argv[2:5])
    out.mkdir(parents=True, exist_ok=True)
    for seed in range(first, first + count):
        exe = out / f"p{seed}"
        exe.write_bytes(elf(program(seed)))
        exe.chmod(0o755)
        trace = out / f"t{seed}"
        row: dict = {"seed": seed}
        try:
            result = record(RecordOptions(program=exe, output=trace, max_steps=max_steps))
        except TracerError as exc:
            row["error"] = str(exc)
        else:
            row.update(stop=result.stop_reason, signal=result.signal, exit=result.exit_code,
                       error=result.error)
            divergence = verify(trace).divergence
            row["verify"] = None if divergence is None else divergence.sentence()
            oracle = out / f"o{seed}"
            record(RecordOptions(program=exe, output=oracle, max_steps=max_steps,
                                 per_instruction=True))
            row["modes"] = mode_differences(trace, oracle)
            shutil.rmtree(oracle, ignore_errors=True)
        shutil.rmtree(trace, ignore_errors=True)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
