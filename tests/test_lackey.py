"""Valgrind lackey as an independent oracle for the data accesses: for every example and test
program, the recorded guest accesses (explicit + implicit, not the kernel side of syscalls)
equal lackey's loads, stores and modifies (a modify = one read + one write), instruction by
instruction, with the same sizes (a 16-byte movdqu is one 16-byte access on both sides)."""

from __future__ import annotations

import shutil

import pytest

from cases import all_cases, case_params, prepare  # noqa: F401  (prepare is a fixture)
from oracles import read_table, recorded_accesses

pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None,
                                reason="valgrind is not installed (apt-get install valgrind)")

# Programs whose accesses depend on what Valgrind changes in the process, not on vmtrace:
EXCEPTIONS = {
    # Valgrind adds LD_PRELOAD (its vgpreload libraries) to the client's environment, so
    # the program walks and prints more environment strings under lackey. The accesses per
    # instruction are the same kinds and sizes; only the loop counts differ.
    "argv_env": "same kinds",
    # Valgrind builds the client stack itself, at another address and with other contents
    # (its own auxv and environment), so the 8 MiB limit is reached a few frames earlier or
    # later. Same kinds and sizes per instruction, counts within 0.5%.
    "stack_overflow": "close counts",
    # A store 1 MiB below RSP: Linux grows the stack to cover it, Valgrind only extends the
    # client stack for accesses near RSP, so under Valgrind the store is a SIGSEGV and
    # lackey logs nothing. We record the store and the load that follows.
    "stack_far": "valgrind faults",
    # VEX cannot decode `enter 8, 1` (a nesting level above 0) and Valgrind aborts there:
    # everything lackey logged before must be in our trace, the same per instruction.
    "rsp_zoo": "valgrind aborts",
    # VEX checks the alignment of the aligned SSE moves (movaps, movdqa, ...) as the CPU does,
    # but not of an SSE arithmetic operand: under Valgrind `addps xmm0, [misaligned]` runs
    # and the program goes on to exit, where Linux and vmtrace stop with SIGSEGV.
    "align_arith": "valgrind goes on",
}


@pytest.mark.parametrize("case", case_params("lackey"))
def test_accesses_match_lackey(case, prepare):
    run = prepare(case)
    theirs = run.lackey
    ours = recorded_accesses(run.trace)
    how = EXCEPTIONS.get(case.source.stem)
    if case.libc and case.source.stem == "floats":
        pytest.skip("Valgrind computes long double at double precision (its documented x87 "
                    "limitation): musl's printf takes other branches under it")
    if case.libc == "musl":
        # musl's start-up walks the environment and the auxiliary vector, both of which
        # Valgrind makes longer (LD_PRELOAD, its own auxv): the same kinds per instruction,
        # but for VEX's own accesses at `bt reg, reg` (musl's malloc uses it).
        extra = set(theirs.by_insn) - set(ours.by_insn)
        assert all(_is_register_bt(run.exe, rip) for rip, _, _ in extra), extra
        assert set(ours.by_insn) == set(theirs.by_insn) - extra
        return
    if how is None:
        assert ours.sizes == theirs.sizes
        assert ours.by_insn == theirs.by_insn
        assert (ours.reads, ours.writes) == (theirs.reads, theirs.writes)
        return
    if how == "valgrind faults":
        assert theirs.sizes == {}
        assert ours.sizes == {(8, True): 1, (8, False): 1}
        return
    if how == "valgrind aborts":
        assert theirs.by_insn and all(ours.by_insn[k] == n for k, n in theirs.by_insn.items())
        return
    if how == "valgrind goes on":
        assert ours.by_insn and all(theirs.by_insn[k] == n for k, n in ours.by_insn.items())
        return
    assert set(ours.by_insn) == set(theirs.by_insn)
    if how == "close counts":
        assert ours.reads == pytest.approx(theirs.reads, rel=0.005, abs=0)
        assert ours.writes == pytest.approx(theirs.writes, rel=0.005)


def _is_register_bt(exe, rip: int) -> bool:
    """VEX computes `bt`/`bts`/`btr`/`btc` with a register operand through memory below
    RSP (a 4- or 8-byte store and a 1-byte load that lackey logs); the CPU accesses no
    memory there."""
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs
    from elftools.elf.elffile import ELFFile

    with open(exe, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        code = text.data()[rip - text["sh_addr"]:][:16]
    insn = next(Cs(CS_ARCH_X86, CS_MODE_64).disasm(code, rip, 1))
    return insn.mnemonic in ("bt", "bts", "btr", "btc") and "[" not in insn.op_str


def test_a_16_byte_move_is_one_16_byte_access_on_both_sides(prepare):
    case = next(c for c in all_cases() if c.source.stem == "sse")
    run = prepare(case)
    ours, theirs = recorded_accesses(run.trace), run.lackey
    assert ours.sizes[(16, False)] == theirs.sizes[(16, False)] == 3
    assert ours.sizes[(16, True)] == theirs.sizes[(16, True)] == 3
    assert (8, False) in ours.sizes and ours.sizes[(8, False)] == 1


# Programs whose instruction counts differ under Valgrind for reasons of Valgrind's own:
EXECUTION_EXCEPTIONS = {
    "argv_env": "Valgrind's extra environment strings make the loops run longer",
    "stack_overflow": "Valgrind's client stack starts elsewhere: fewer frames fit",
    "stack_far": "Valgrind does not grow the stack for a store 1 MiB below RSP",
    "int80": "Valgrind does not run int 0x80 (the i386 ABI) in 64-bit code",
    "rsp_zoo": "Valgrind cannot decode `enter 8, 1` and aborts there",
    "syscall_regs": "under Valgrind R11 after a syscall is not RFLAGS, so the program "
                    "takes its failure branch",
    "align_arith": "Valgrind does not check the alignment of an SSE arithmetic operand",
    "tsx": "Valgrind runs xtest (as outside a transaction) where the CPU has no TSX",
}


@pytest.mark.parametrize("case", case_params("lackey"))
def test_every_instruction_executes_as_often_as_under_lackey(case, prepare):
    """Steps: each `rep` iteration is one, as under VEX (whose extra entry into a finished
    rep instruction, which the CPU does not single-step, oracles.parse_lackey leaves out)."""
    if case.source.stem in EXECUTION_EXCEPTIONS:
        pytest.skip(EXECUTION_EXCEPTIONS[case.source.stem])
    if case.libc:
        pytest.skip("libc start-up loops over Valgrind's longer environment and auxv")
    run = prepare(case)
    ours = {r["rip"]: r["count"] for r in read_table(run.trace, "exec_counts").to_pylist()}
    theirs = dict(run.lackey.executed)
    fault = run.info["exit"]["fault"]
    if fault is not None:
        # Whether the faulting instruction itself is counted depends on where each tool
        # notices the fault (at decode for ud2/int3, at the access for a store; lackey logs
        # an instruction when its one-instruction superblock completes): leave it out.
        ours.pop(fault["rip"], None)
        theirs.pop(fault["rip"], None)
    assert ours == theirs
