"""The one symbolizer's naming rules (analysis/symbols.py), as a table over symbols and a map
built by hand, and end to end: `trace mem` names heap bytes by the heap, not `_end+0x...`."""

from __future__ import annotations

import pyarrow as pa
import pytest

from analysis.symbols import Symbolizer
from conftest import EXAMPLES, trace_cli
from tracer.format.regions import Segment
from tracer.format.schema import LINES, SYMBOLS

STACK_TOP = 0x7FFFFFFFF000
SYMS = [  # name, addr, size, type, section
    ("_start", 0x401000, 0, "notype", ".text"),
    ("_start.loop", 0x401010, 0, "notype", ".text"),
    ("fib", 0x401040, 0, "notype", ".text"),
    ("counter", 0x403000, 8, "object", ".data"),
    ("__bss_start", 0x403008, 0, "notype", ".data"),
    ("_edata", 0x403008, 0, "notype", ".data"),
    ("table", 0x403008, 0, "notype", ".bss"),
    ("_end", 0x403108, 0, "notype", ".bss"),
    ("far", 0x500000, 0, "notype", ".data"),
]
MAP = [
    Segment(0x401000, 0x402000, "r-x", "text", ".text"),
    Segment(0x403000, 0x404000, "rw-", "bss", ".bss"),
    Segment(0x404000, 0x406000, "rw-", "heap", "[heap]"),
    Segment(0x7FFFF7FF0000, 0x7FFFF7FF2000, "rw-", "mmap", ""),
    Segment(0x7FFFF7FF4000, 0x7FFFF7FF5000, "rw-", "mmap", ""),
    Segment(0x7FFFF7FF8000, 0x7FFFF7FFA000, "r-x", "vdso", "[vdso]"),
    Segment(STACK_TOP - 0x21000, STACK_TOP, "rw-", "stack", "[stack]"),
]


@pytest.fixture(scope="module")
def sym() -> Symbolizer:
    rows = [dict(name=n, addr=a, size=s, type=t, section=sec) for n, a, s, t, sec in SYMS]
    return Symbolizer(pa.Table.from_pylist(rows, schema=SYMBOLS),
                      pa.Table.from_pylist([], schema=LINES), MAP, heap_start=0x404000)


@pytest.mark.parametrize("addr, name", [
    (0x401000, "_start"),                       # a label
    (0x401005, "_start+0x5"),                   # an offset from it
    (0x401013, "_start.loop+0x3"),              # a local label, named in full
    (0x401040, "fib"),
    (0x403004, "counter+0x4"),                  # inside a sized object
    (0x403007, "counter+0x7"),
    (0x403008, "table"),                        # a real label wins over __bss_start/_edata
    (0x403110, "table+0x108"),                  # markers (_end) never name an address
    (0x404018, "heap+0x18"),                    # the heap by its region
    (0x405ff8, "heap+0x1ff8"),
    (STACK_TOP - 0x40, "stack top-0x40"),       # the stack from its top
    (0x7FFFF7FF0010, "mmap#1+0x10"),            # anonymous mappings numbered by address
    (0x7FFFF7FF4000, "mmap#2"),
    (0x7FFFF7FF8010, "[vdso]+0x10"),            # a named mapping by its name
    (0x400fff, None),                           # below every label
    (0x500000 + 0x10001, None),                 # more than 0x10000 past the label
    (0x500000 + 0x10000, "far+0x10000"),
])
def test_naming_rules(sym, addr, name):
    assert sym.name(addr) == name


def test_the_rules_without_a_map_use_symbols_only():
    rows = [dict(name=n, addr=a, size=s, type=t, section=sec) for n, a, s, t, sec in SYMS]
    bare = Symbolizer(pa.Table.from_pylist(rows, schema=SYMBOLS),
                      pa.Table.from_pylist([], schema=LINES))
    assert bare.name(0x403108 + 0xfd8) == "table+0x10d8"  # not `_end+0xfd8`
    assert bare.describe(0x510001) == "0x510001"
    assert bare.name(0x403009) == "table+0x1"


def test_exact_and_function(sym):
    assert sym.exact(0x403008) == "table"   # not __bss_start
    assert sym.exact(0x403009) is None
    assert sym.function_at(0x401013) == "_start"
    assert sym.by_name("_end").addr == 0x403108  # markers are still addresses by name


def test_trace_mem_names_heap_bytes_by_the_heap(workdir):
    from analysis import open_trace

    path = workdir / "t"
    trace_cli("record", str(EXAMPLES / "brk_fixed.asm"), "-o", str(path), "-q")
    grown = max((r for r in open_trace(path).regions.to_pylist() if r["action"] == "brk"),
                key=lambda r: r["end"])
    out = trace_cli("mem", str(path), hex(grown["start"] + 0x20), "16",
                    "--step", str(grown["step"] + 1)).stdout.decode()
    assert "heap+0x20" in out and "_end" not in out
