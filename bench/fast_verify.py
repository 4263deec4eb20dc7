"""Proves `trace record --fast` writes what a full recording writes: records every program
bench/verify.py records, both ways, and compares every table but the three a fast trace
leaves pending (accesses, rsp, exec_counts) row for row, and meta.json's `end` but its
event totals. With --keyframes, also checks each keyframe of the fast trace: restored in a
ReplayMachine and replayed to the next keyframe, it gives that keyframe's registers and
pages.

    python bench/fast_verify.py                  # every program
    python bench/fast_verify.py --only mixed_small,rsp_zoo --keyframes
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from verify import MAX_STEPS, programs  # noqa: E402

# Programs are built from a copy, as bench/verify.py does, but our own: its fixed place may
# be in use by another run (or test) at the same time.
FIXED = Path(tempfile.gettempdir()) / f"vmtrace-fast-verify-sources-{os.getpid()}"


def fixed_copy() -> Path:
    """Copies the examples and test programs to FIXED (afresh)."""
    import shutil

    shutil.rmtree(FIXED, ignore_errors=True)
    shutil.copytree(ROOT / "examples", FIXED / "examples")
    shutil.copytree(ROOT / "tests" / "programs", FIXED / "tests" / "programs")
    return FIXED

# What a fast trace leaves out until materialised, and what only it has.
NOT_COMPARED = ("accesses", "rsp", "exec_counts", "keyframes", "pages")
END_NOT_COMPARED = ("accesses", "rsp_changes", "access_counts", "lowest_rsp")
KEYFRAME_EVERY = 5_000  # small: the test programs get several keyframes each


def compare(full: Path, fast: Path) -> list[str]:
    """The differences between a full and a `--fast` trace of one run (empty: none)."""
    from tracer.format import TraceFiles
    from tracer.format.schema import TABLES

    a, b = TraceFiles(full), TraceFiles(fast)
    problems = []
    if b.meta.raw.get("events") != "pending":
        problems.append("the fast trace's meta.json has no `events: pending`")
    for table in TABLES:
        if table in NOT_COMPARED:
            continue
        ta, tb = a.table(table), b.table(table)
        if not ta.equals(tb):
            problems.append(f"{table} differs ({ta.num_rows} rows vs {tb.num_rows})")
    for table in ("accesses", "rsp", "exec_counts"):
        if (fast / f"{table}.arrows").exists():
            problems.append(f"the fast trace has {table}.arrows")
    ends = []
    for files in (a, b):
        end = dict(files.meta.raw.get("end") or {})
        ends.append({k: v for k, v in end.items() if k not in END_NOT_COMPARED})
    if ends[0].get("stop_reason") == "fault" and ends[0].get("registers"):
        # At a fault, the full recorder's EFLAGS can be stale (Unicorn with a code hook
        # does not restore QEMU's lazy flags when a load or store faults; --fast reports
        # the CPU's): compared apart from the other registers.
        for end in ends:
            end["registers"] = {k: v for k, v in end["registers"].items() if k != "eflags"}
    if ends[0] != ends[1]:
        keys = sorted(k for k in set(ends[0]) | set(ends[1]) if ends[0].get(k) != ends[1].get(k))
        problems.append(f"end differs in {', '.join(keys)}: {[ends[0].get(k) for k in keys]} "
                        f"vs {[ends[1].get(k) for k in keys]}")
    return problems


def check_keyframes(fast: Path) -> list[str]:
    """Each keyframe, restored and replayed to the next, gives the next one's state."""
    import numpy as np
    from unicorn import UC_ARCH_X86, UC_MODE_64
    from unicorn.unicorn_py3.unicorn import UcContext

    from tracer.format import TraceFiles
    from tracer.replay.inputs import load_inputs
    from tracer.replay.machine import ReplayMachine

    files = TraceFiles(fast)
    inputs = load_inputs(files)
    frames = files.table("keyframes").to_pylist()
    pages = files.table("pages").column("data").to_pylist()
    problems = []
    if not frames or frames[0]["step"] != 0:
        return ["the first keyframe is not at step 0"]
    steps = [f["step"] for f in frames]
    if steps != sorted(steps) or steps[-1] > inputs.instructions:
        problems.append(f"keyframe steps out of order or past the run: {steps[:5]}...")

    def restore(frame: dict) -> ReplayMachine:
        machine = ReplayMachine(inputs)
        machine.map_regions(inputs.regions_before(frame["step"]))
        for addr, pid in zip(frame["page_addr"], frame["page_id"]):
            machine.uc.mem_write(addr, pages[pid])
        context = UcContext.__new__(UcContext)
        context.__setstate__((frame["context"], len(frame["context"]), UC_ARCH_X86,
                              UC_MODE_64))
        machine.uc.context_restore(context)
        machine.cursor = frame["cursor"]
        return machine

    def state(machine: ReplayMachine) -> tuple[dict, dict]:
        mem = {}
        for start, end, _prot in machine.mapped():
            raw = np.frombuffer(bytes(machine.uc.mem_read(start, end - start)), np.uint8)
            for k in np.flatnonzero(raw.reshape(-1, 4096).any(axis=1)).tolist():
                mem[start + k * 4096] = raw[k * 4096:(k + 1) * 4096].tobytes()
        return machine.registers(), mem

    first = ReplayMachine(inputs)
    first.load_initial()
    if state(first) != state(restore(frames[0])):
        problems.append("keyframe 0 is not the initial state")
    for this, nxt in zip(frames, frames[1:]):
        machine = restore(this)
        machine.run(nxt["step"] - this["step"])
        if machine.cursor != nxt["cursor"] or machine.heap_end != nxt["heap_end"]:
            problems.append(f"keyframe at step {nxt['step']}: cursor/heap_end differ")
        if state(machine) != state(restore(nxt)):
            problems.append(f"keyframe at step {nxt['step']}: replaying from step "
                            f"{this['step']} gives other registers or pages")
    return problems


def record_pair(program: Path, out: Path, every: int = KEYFRAME_EVERY) -> tuple[Path, Path]:
    """Records `program` (a path under the checkout) fully and with --fast, from FIXED."""
    from tracer.fast_record import record_fast
    from tracer.recorder import RecordOptions, record

    here = Path.cwd()
    os.chdir(FIXED)
    try:
        relative = program.relative_to(ROOT)
        full = record(RecordOptions(program=relative, output=out / "full", max_steps=MAX_STEPS))
        fast = record_fast(RecordOptions(program=relative, output=out / "fast",
                                         max_steps=MAX_STEPS,
                                         keyframe_every=every))
        return full.trace, fast.trace
    finally:
        os.chdir(here)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated program stems")
    parser.add_argument("--keyframes", action="store_true", help="check every keyframe too")
    args = parser.parse_args(argv)
    chosen = programs()
    if args.only:
        chosen = [p for p in chosen if p.stem in set(args.only.split(","))]
    fixed_copy()
    failures, done = [], 0
    with tempfile.TemporaryDirectory(prefix="vmtrace-fast-verify-") as tmp:
        for program in chosen:
            key = str(program.relative_to(ROOT))
            try:
                full, fast = record_pair(program, Path(tmp) / program.stem)
            except Exception as exc:  # noqa: BLE001 - reported, the sweep goes on
                failures.append(f"{key}: {type(exc).__name__}: {exc}")
                continue
            problems = compare(full, fast)
            if args.keyframes:
                problems += check_keyframes(fast)
            failures += [f"{key}: {p}" for p in problems]
            done += 1
    import shutil

    shutil.rmtree(FIXED, ignore_errors=True)
    for line in failures:
        print(line)
    failed = {f.split(": ")[0] for f in failures}
    print(f"{len(chosen) - len(failed)} of {len(chosen)} programs identical (fast vs full)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
