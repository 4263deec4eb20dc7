"""`--allocator auto` on C programs (static glibc and musl): the C library's blocks from the
recorded run, Memcheck's classic heap errors each found at its line, none on clean programs,
and fragmentation of a small malloc/free sequence worked by hand."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analysis import open_trace
from analysis.allocator import AllocEvent, CallKind, fragmentation
from analysis.heap_check import HeapChecker
from analysis.scan import scan_accesses
from analysis.symbols import Symbolizer
from conftest import PROGRAMS, trace_cli

HEAP = PROGRAMS / "c_heap"
LIBCS = ["glibc", pytest.param("musl", marks=pytest.mark.skipif(
    shutil.which("musl-gcc") is None, reason="musl-gcc is not installed (musl-tools)"))]


def _recorded(source: Path, tmp_path: Path, libc: str, stdin: bytes = b"") -> Path:
    out = tmp_path / f"{source.stem}-{libc}"
    extra = []
    if stdin:
        (tmp_path / "stdin").write_bytes(stdin)
        extra = ["--stdin", str(tmp_path / "stdin")]
    trace_cli("record", str(source), "-o", str(out), "--no-echo", "--libc", libc, *extra)
    return out


def _heap(trace_dir: Path):
    from vmtrace.commands.report import allocator_tracking

    t = open_trace(trace_dir)
    frag, heap = allocator_tracking(t, None)
    if heap is None:  # a program that never calls malloc may not link it (musl)
        return t, frag, heap, []
    checker = HeapChecker(heap, Symbolizer(t.symbols, t.lines))
    scan_accesses(t, [checker])
    return t, frag, heap, checker.result(t)


# program -> the errors (kind, line, count) and how the run ends per libc
BUGS = {
    "overflow": ({("overflow", 10, 1)}, {"glibc": "SIGABRT", "musl": "SIGSEGV"}),
    "use_after_free": ({("use-after-free", 12, 1)}, {"glibc": "exit", "musl": "exit"}),
    "double_free": ({("double-free", 10, 1)}, {"glibc": "SIGABRT", "musl": "SIGSEGV"}),
    "invalid_free": ({("invalid-free", 9, 1)}, {"glibc": "SIGABRT", "musl": "SIGSEGV"}),
    "uninit": ({("uninit", 10, 1)}, {"glibc": "exit", "musl": "exit"}),
    "leak": ({("leak", 9, 3), ("leak", 14, 1)}, {"glibc": "exit", "musl": "exit"}),
}


@pytest.mark.parametrize("libc", LIBCS)
@pytest.mark.parametrize("program", sorted(BUGS))
def test_each_heap_error_is_found_at_its_line(tmp_path, program, libc):
    """glibc's own checks abort the double and invalid free and notice the overflow's
    damage to the next chunk's header at free (SIGABRT); musl's crash (hlt: SIGSEGV)."""
    t, _, _, errors = _heap(_recorded(HEAP / f"{program}.c", tmp_path, libc))
    expected, ending = BUGS[program]
    assert {(e.kind, e.line, e.count) for e in errors} == expected
    assert (t.meta.end.signal or t.meta.end.stop_reason) == ending[libc]
    assert all(e.block is not None for e in errors if e.kind != "invalid-free")


def test_messages_name_the_block_and_its_allocation_and_free_lines(tmp_path):
    _, _, _, errors = _heap(_recorded(HEAP / "use_after_free.c", tmp_path, "glibc"))
    (error,) = errors
    assert "32-byte block allocated at line 7 and freed at line 11" in error.message
    _, _, _, errors = _heap(_recorded(HEAP / "double_free.c", tmp_path, "glibc"))
    assert "already freed at line 8" in errors[0].message


CLEAN = [HEAP / "clean_list.c", HEAP / "clean_buffers.c", HEAP / "clean_misc.c",
         HEAP / "fragments.c",
         *sorted(p for p in (PROGRAMS / "c").glob("*.c") if p.stem not in ("abort",))]


@pytest.mark.parametrize("libc", LIBCS)
@pytest.mark.parametrize("source", CLEAN, ids=lambda p: p.stem)
def test_clean_programs_have_no_heap_error(tmp_path, source, libc):
    """Accesses inside the allocator (headers, bins, tcache), libc's vectorised string
    functions reading past a terminator, calloc's untouched zero pages, realloc's moved
    bytes, a struct copy reading padding and stdio's own buffers are not the program's
    errors."""
    stdin = b"hello heap\nsecond line\n" if source.stem in ("clean_buffers", "read_stdin") \
        else b""
    _, _, heap, errors = _heap(_recorded(source, tmp_path, libc, stdin))
    assert errors == []
    assert heap is not None or libc == "musl"


def test_glibc_blocks_have_their_chunks_and_history(tmp_path):
    _, _, heap, _ = _heap(_recorded(HEAP / "clean_buffers.c", tmp_path, "glibc",
                                    b"some input\n"))
    mine = [b for b in heap.blocks if b.alloc_line is not None and b.via is None]
    by_line = {}
    for b in mine:
        by_line.setdefault(b.alloc_line, []).append(b)
    (counts,) = by_line[8]
    assert (counts.func, counts.size, counts.zeroed) == ("calloc", 1024, True)
    assert counts.chunk_size == 1040 and counts.overhead == 16 and not counts.mmapped
    (aligned,) = by_line[15]
    assert aligned.func == "posix_memalign" and aligned.size == 200 and aligned.ptr % 64 == 0
    (big,) = by_line[18]
    assert big.size == 2_400_000 and big.mmapped and big.chunk_size >= big.size + 16
    grown = by_line[23]   # realloc(grow, len * 4) for len = 1, 2, 4, ..., 64
    assert [b.size for b in grown] == [4, 8, 16, 32, 64, 128, 256]
    assert all(b.copied_from is not None for b in grown[1:])
    assert [b.free_line for b in grown] == [23] * 6 + [32]
    assert all(b.free_step is not None for b in mine)


def test_fragmentation_of_a_small_sequence_by_hand(tmp_path):
    """a..d = malloc(100) each (112-byte chunks, back to back), free(a), free(c): two holes
    of 100 bytes, external fragmentation 0.5; e = malloc(50) comes from the top; f =
    malloc(100) reuses c (tcache is last in, first out): one hole; free(b) joins a's hole
    across b's 12-byte header: 212 bytes; free(d): 1 - 212/312; free(e) joins d across
    12 bytes: 162; free(f) joins all: 4 x 112 + 50 = 498."""
    t, frag, heap, _ = _heap(_recorded(HEAP / "fragments.c", tmp_path, "glibc"))
    blocks = [b for b in heap.blocks if b.alloc_line is not None]
    a, b, c, d, e, f = blocks
    assert [x.size for x in blocks] == [100, 100, 100, 100, 50, 100]
    assert (b.ptr - a.ptr, c.ptr - b.ptr, d.ptr - c.ptr) == (112, 112, 112)
    assert f.ptr == c.ptr and f.reused and not e.reused
    tl = frag.timeline
    first_free = tl.index[(tl["event"] == "free") & (tl["ptr"] == a.ptr)][0]
    rows = tl.loc[first_free:, ["event", "holes", "free_bytes", "largest_hole",
                                "external_fragmentation"]].values.tolist()
    assert [r[:4] for r in rows] == [
        ["free", 1, 100, 100], ["free", 2, 200, 100],       # a, c
        ["alloc", 2, 200, 100], ["alloc", 1, 100, 100],     # e, f
        ["free", 1, 212, 212], ["free", 2, 312, 212],       # b, d
        ["free", 2, 374, 212], ["free", 1, 498, 498]]       # e, f
    assert [round(r[4], 4) for r in rows[:6]] == [0, 0.5, 0.5, 0, 0, round(1 - 212 / 312, 4)]


def test_allocator_headers_are_overhead_not_holes():
    """A textbook allocator with 16-byte headers: blocks 16 bytes apart. Before any free
    nothing is fragmented (the headers were counted as holes: 0.8 before this fix)."""
    h, A, F = 0x10000, CallKind.ALLOC, CallKind.FREE
    events = [AllocEvent(1, A, h + 16, 32), AllocEvent(2, A, h + 64, 32),
              AllocEvent(3, A, h + 112, 32), AllocEvent(4, A, h + 160, 32)]
    frag = fragmentation(events, h)
    assert frag.timeline["free_bytes"].tolist() == [0, 0, 0, 0]
    assert frag.timeline["external_fragmentation"].tolist() == [0, 0, 0, 0]
    frag = fragmentation(events + [AllocEvent(5, F, h + 64, 0), AllocEvent(6, F, h + 112, 0)],
                         h)
    # Two neighbours freed: one hole across the second one's header.
    assert frag.final_holes.values.tolist() == [[h + 64, h + 144]]


def test_the_report_shows_heap_errors_and_the_glibc_heap(tmp_path):
    trace = _recorded(HEAP / "use_after_free.c", tmp_path, "glibc")
    out = tmp_path / "r.html"
    done = trace_cli("report", str(trace), "-o", str(out))
    assert "1 finding" in done.stderr.decode()
    html = out.read_text()
    assert "use after free" in html and "freed at line 11" in html
    assert "glibc&#x27;s heap (--allocator auto)" in html or "glibc's heap" in html
    assert "chunk overhead" in html
    done = trace_cli("report", str(trace), "-o", str(out), "--allocator", "none")
    assert "0 findings" in done.stderr.decode()


def test_allocator_auto_on_a_program_without_malloc_is_one_sentence(tmp_path):
    from conftest import EXAMPLES

    trace_cli("record", str(EXAMPLES / "allocator.asm"), "-o", str(tmp_path / "t"), "--no-echo")
    done = trace_cli("report", str(tmp_path / "t"), "--allocator", "auto", check=False)
    assert done.returncode == 2
    assert "does not define malloc" in done.stderr.decode()
