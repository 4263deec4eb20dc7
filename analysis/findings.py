"""Findings: plain-language observations a teacher would point out in a run, each tied to a
step, RIP and source line (a brk that failed, an access wider than its datum, a misaligned
call, an unbalanced stack, reads of never-written memory, writes below RSP, a fault)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from analysis.formatting import human_bytes  # noqa: F401 (also its old home)
from analysis.heap import HeapTimeline
from analysis.regions import map_at
from analysis.scan import scan_accesses
from analysis.sections import Section, read_sections
from analysis.stack import StackDepth
from analysis.symbols import Symbolizer
from analysis.trace import Trace

RED_ZONE = 128
MAX_HEAP_WORDS = 8 << 20  # first-touch tracking covers the first 64 MiB of the heap
MAX_STACK_WORDS = 8 << 20  # and the top 64 MiB of the stack (Linux's default is 8 MiB)
_NEVER = np.uint64(2**64 - 1)
MAX_PER_KIND = 10
_WARNING = re.compile(r":(\d+):\s*warning:\s*(.*)$")


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


class FindingKind(enum.Enum):
    BRK_FAILED = "brk did not move the break"
    WIDE_ACCESS = "access wider than its data"
    MISALIGNED_CALL = "stack not 16-byte aligned at call"
    UNBALANCED_STACK = "pushes and pops unbalanced at exit"
    READ_NEVER_WRITTEN = "read of memory never written"
    WRITE_BELOW_RSP = "write below RSP"
    FAULT = "the run ended in a fault"
    # The C library's heap (analysis/heap_check.py).
    HEAP_OVERFLOW = "access past the end of a heap block"
    USE_AFTER_FREE = "use after free"
    BAD_FREE = "double or invalid free"
    HEAP_UNINIT = "read of heap bytes never written"
    LEAK = "heap block never freed"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    severity: Severity
    step: int | None
    rip: int | None
    line: int | None
    message: str
    count: int = 1
    value: int | None = None  # for a wide access: the value read or written


def hx(value: int) -> str:
    return f"{value:#x}"


@dataclass(frozen=True)
class Datum:
    """A data symbol and how far it reaches: to the next symbol or its section's end."""

    name: str
    start: int
    end: int
    element: int  # nasm's st_size: the size of one element (db=1, dw=2, dd=4, dq=8)
    section: Section


def data_items(sym: Symbolizer, sections: list[Section]) -> list[Datum]:
    """The program's data symbols with their extents (code sections excluded)."""
    out = []
    for sec in sections:
        if sec.name.startswith(".text"):
            continue
        inside = [s for s in sym.symbols if sec.start <= s.addr < sec.end]
        for i, s in enumerate(inside):
            end = inside[i + 1].addr if i + 1 < len(inside) else sec.end
            if end > s.addr:
                out.append(Datum(s.name, s.addr, end, s.size, sec))
    return out


def declaration_line(source: str | None, name: str) -> tuple[int, str] | None:
    """The line that declares label `name` in the source (1-based), and its text."""
    if not source:
        return None
    pattern = re.compile(rf"^\s*{re.escape(name)}(:|\s)")
    for no, text in enumerate(source.splitlines(), 1):
        if pattern.match(text):
            return no, text.split(";")[0].strip()
    return None


def nasm_warnings(warnings: list[str]) -> dict[int, str]:
    """Line number -> the nasm warning on it."""
    out = {}
    for w in warnings:
        m = _WARNING.search(w)
        if m:
            out[int(m.group(1))] = m.group(2).strip()
    return out


class WideAccessScanner:
    """Finds explicit accesses that start on a datum and run past its end, batch by batch:
    one searchsorted per batch finds each access's datum; only the (rare) offenders are
    grouped, by datum and instruction."""

    columns = ("step", "rip", "addr", "size", "is_write", "source")

    def __init__(self, items: list[Datum]):
        self.starts = np.array([d.start for d in items], np.uint64)
        self.ends = np.array([d.end for d in items], np.uint64)
        self.lo = int(self.starts.min()) if items else 0
        self.hi = int(self.ends.max()) if items else 0
        self.found: dict[tuple[int, int], dict] = {}

    def update(self, batch) -> None:
        if not len(self.starts):
            return
        addr = batch.column("addr").to_numpy()
        near = (addr >= self.lo) & (addr < self.hi)
        if not near.any():
            return
        near &= _source_mask(batch.column("source"), "explicit")
        rows = np.nonzero(near)[0]
        a = addr[rows]
        idx = np.searchsorted(self.starts, a, side="right") - 1
        size = batch.column("size").to_numpy()[rows].astype(np.uint64)
        end = self.ends[idx]
        wide = (a < end) & (a + size > end)
        if not wide.any():
            return
        rows, idx = rows[wide], idx[wide]
        steps = batch.column("step").to_numpy()[rows].tolist()
        rips = batch.column("rip").to_numpy()[rows].tolist()
        writes = batch.column("is_write").to_numpy(zero_copy_only=False)[rows].tolist()
        for i, rip, step, ad, sz, w in zip(idx.tolist(), rips, steps, a[wide].tolist(),
                                           size[wide].tolist(), writes):
            slot = self.found.get((i, rip))
            if slot is None:
                self.found[(i, rip)] = {"i": i, "rip": rip, "n": 1, "step": step, "addr": ad,
                                        "size": sz, "is_write": w}
            else:
                slot["n"] += 1

    def rows(self) -> list[dict]:
        """The first MAX_PER_KIND offenders (datum index, rip, count, first step...)."""
        return sorted(self.found.values(), key=lambda r: r["step"])[:MAX_PER_KIND]


def wide_accesses(trace: Trace, sym: Symbolizer, sections: list[Section],
                  scanner: WideAccessScanner | None = None) -> list[Finding]:
    """Explicit accesses that start on a datum and run past its end.

    Args:
        trace: an open trace.
        sym: its symbols.
        sections: its ELF sections (`analysis.sections.read_sections`).
        scanner: a scanner that has already seen the accesses (else one pass is made).
    """
    items = data_items(sym, sections)
    if scanner is None:
        scanner = WideAccessScanner(items)
        scan_accesses(trace, [scanner])
    rows = scanner.rows()
    if rows:
        # The values only for the few accesses found: the value column is the widest.
        wanted = ", ".join(str(r["step"]) for r in rows)
        values = trace.sql(f"SELECT step, addr, value FROM accesses WHERE step IN ({wanted}) "
                           f"AND source = 'explicit'",
                           {"accesses": ["step", "addr", "source", "value"]}).to_pylist()
        by_key = {(v["step"], v["addr"]): v["value"] for v in values}
        rows = [{**r, "value": by_key.get((r["step"], r["addr"]))} for r in rows]
    source = trace.source_text()
    warned = nasm_warnings(trace.meta.warnings)
    out = []
    for r in rows:
        d = items[r["i"]]
        out.append(Finding(FindingKind.WIDE_ACCESS, Severity.WARNING, r["step"], r["rip"],
                           sym.line_no(r["rip"]), _wide_message(d, r, source, warned, sym),
                           r["n"], r["value"]))
    return out


def _wide_message(d: Datum, r: dict, source: str | None, warned: dict[int, str],
                  sym: Symbolizer) -> str:
    verb = "write" if r["is_write"] else "read"
    addr, size = r["addr"], r["size"]
    decl = declaration_line(source, d.name)
    declared = f" (line {decl[0]}: `{decl[1]}`)" if decl else ""
    width = d.end - d.start
    parts = [f"An {size}-byte {verb} at {hx(addr)} starts on `{d.name}`{declared}, which is "
             f"{width} byte{'s' if width != 1 else ''} long"]
    if 0 < d.element < size and d.element != width:
        parts[0] += f" and declared with {d.element}-byte elements"
    over = addr + size - d.end
    if d.end >= d.section.end:
        after = ("zeros (the rest of the zero-filled page)" if d.section.zeroed else
                 "whatever follows it in its page (other bytes of the program file, "
                 "not a variable of yours)")
        parts.append(f"The last {over} byte{'s' if over != 1 else ''} lie past the end of "
                     f"{d.section.name} (which ends at {hx(d.section.end)}): they are {after}")
    else:
        nxt = sym.symbol_at(d.end)
        parts.append(f"The last {over} byte{'s' if over != 1 else ''} belong to the next "
                     f"datum, `{nxt.name if nxt else hx(d.end)}`")
    if r["value"] is not None and size <= 8:
        own = r["value"] & ((1 << (8 * width)) - 1) if width < 8 else r["value"]
        raw = " ".join(f"{b:02x}" for b in r["value"].to_bytes(8, "little")[:size])
        parts.append(f"So the {verb} {'stored' if r['is_write'] else 'got'} {hx(r['value'])} "
                     f"(bytes in memory, lowest address first: {raw}), of which only the "
                     f"first {width} byte{'s' if width != 1 else ''} ({hx(own)}) "
                     f"{'is' if width == 1 else 'are'} `{d.name}`")
    if decl and decl[0] in warned:
        parts.append(f"nasm warned at line {decl[0]}: \"{warned[decl[0]]}\"")
        literal = re.search(r"\b(db|dw|dd|dq)\s+([0-9][0-9a-fA-FxXhH_]*)\b", decl[1])
        if "exceeds bounds" in warned[decl[0]] and literal:
            unit = {"db": 1, "dw": 2, "dd": 4, "dq": 8}[literal.group(1)]
            try:
                meant = int(literal.group(2).replace("_", ""), 0)
            except ValueError:
                meant = None
            if meant is not None:
                kept = meant & ((1 << (8 * unit)) - 1)
                parts.append(f"{literal.group(2)} does not fit in {unit} byte"
                             f"{'s' if unit != 1 else ''}, so nasm stored only {hx(kept)}: "
                             f"the program never had {literal.group(2)} in memory at all")
    if 0 < d.element < size:
        directive = {2: "dw", 4: "dd", 8: "dq"}.get(size, "a wider directive")
        parts.append(f"Fix: declare `{d.name}` with {directive} so that it is as wide as the "
                     f"{size}-byte {verb}, or {verb} it with a {d.element}-byte operand "
                     f"(e.g. movzx)")
    return ". ".join(parts) + "."


def brk_failures(heap: HeapTimeline, sym: Symbolizer, trace: Trace,
                 wide: list[Finding]) -> list[Finding]:
    """brk calls that asked for a new break and got the old one back."""
    out = []
    current = heap.initial_brk
    for r in heap.brk_calls.itertuples():
        returned = int(r.returned) if r.returned is not None and r.returned is not pa.NA \
            else None
        asked = None if r.requested is None or str(r.requested) == "<NA>" else int(r.requested)
        if asked is not None and returned is not None and returned != asked:
            delta = asked - current
            why = _brk_reason(trace, r.step, asked, current, heap.initial_brk)
            msg = (f"brk({hx(asked)}) returned {hx(returned)}, the old break: the break did "
                   f"not move and no memory was added. The program asked for "
                   f"{hx(current)} {'+' if delta >= 0 else '-'} {hx(abs(delta))} "
                   f"({human_bytes(abs(delta))} {'more' if delta >= 0 else 'less'}). {why} "
                   f"brk reports failure by returning the unchanged break, not -1: compare "
                   f"the result with what you asked for")
            source = [f for f in wide if f.step is not None and f.step < r.step
                      and f.value == delta]
            if source:
                msg += (f". The {hx(delta)} was read at step {source[0].step} (line "
                        f"{source[0].line}) by an access wider than its datum: see that "
                        f"finding")
            out.append(Finding(FindingKind.BRK_FAILED, Severity.ERROR, int(r.step), int(r.rip),
                               sym.line_no(int(r.rip)), msg + "."))
        if returned is not None and returned >= 0:
            current = returned
    return out


def _brk_reason(trace: Trace, step: int, asked: int, current: int, start: int) -> str:
    if asked < start:
        return f"It is below the start of the heap ({hx(start)}), which Linux refuses."
    for region in map_at(trace.regions, step):
        if region.kind != "heap" and region.start < asked + 4096 and region.end > current:
            return (f"The heap would run into {region.name or region.kind} at "
                    f"{hx(region.start)}, which Linux refuses.")
    return ("Linux refuses a break that would need more memory than it is willing to commit "
            "(its overcommit check) or more than the data-size limit allows.")


def rsp_findings(trace: Trace, sym: Symbolizer, stack: StackDepth) -> list[Finding]:
    """Calls made with a misaligned stack, and pushes/pops left unbalanced at exit."""
    out = []
    rows = trace.sql(f"""
        SELECT rip, count(*) AS n, min(step) AS step, arg_min(old, step) AS old FROM rsp
        WHERE cause = 'call' AND old % 16 <> 0 GROUP BY rip ORDER BY step
        LIMIT {MAX_PER_KIND}""", {"rsp": ["step", "rip", "old", "cause"]}).to_pylist()
    for r in rows:
        out.append(Finding(
            FindingKind.MISALIGNED_CALL, Severity.NOTE, r["step"], r["rip"],
            sym.line_no(r["rip"]),
            f"RSP was {hx(r['old'])} at this call ({r['old'] % 16} bytes off a multiple of "
            f"16). The System V ABI wants RSP 16-byte aligned at every call, so that the "
            f"callee can use aligned SSE loads and stores on its stack; code that does will "
            f"crash with a general protection fault. Adjust with sub rsp, 8 (or an extra push)",
            r["n"]))
    end = trace.meta.end
    if end is not None and end.stop_reason == "exit" and stack.final_depth != 0:
        per_cause = trace.sql("SELECT cause::VARCHAR AS cause, count(*) AS n FROM rsp "
                              "GROUP BY 1", {"rsp": ["cause"]}).to_pydict()
        counts = dict(zip(per_cause["cause"], per_cause["n"]))
        d = stack.final_depth
        last = trace.syscalls.to_pylist()[-1] if trace.syscalls.num_rows else None
        where = "below" if d > 0 else "above"
        msg = (f"At exit RSP was {abs(d)} bytes {where} where it started: "
               f"{counts.get('push', 0)} pushes vs {counts.get('pop', 0)} pops, "
               f"{counts.get('call', 0)} calls vs {counts.get('ret', 0)} rets. ")
        msg += ("Something pushed was never popped (harmless at exit, but inside a function "
                "the ret would jump to the wrong address)." if d > 0 else
                "More was popped than pushed: the program popped values it did not push "
                "(at _start these are argc and argv).")
        out.append(Finding(FindingKind.UNBALANCED_STACK, Severity.WARNING,
                           last["step"] if last else None, last["rip"] if last else None,
                           sym.line_no(last["rip"]) if last else None, msg))
    return out


def memory_findings(sym: Symbolizer, scanner: StackHeapScanner) -> list[Finding]:
    """Reads of stack/heap words never written before, and writes below RSP.

    Args:
        sym: the trace's symbols.
        scanner: a `StackHeapScanner` that has seen every access.
    """
    reads, below = scanner.results()
    floor, ir = scanner.floor, scanner.initial_rsp
    out = []
    for r in reads:
        place = "stack" if floor <= r["addr"] < ir else "heap"
        why = ("Stack memory below the initial RSP holds whatever was there: nothing your "
               "program put there" if place == "stack" else
               "Fresh heap pages from brk are zero-filled by the kernel, so this reads 0, "
               "not a value your program stored")
        out.append(Finding(FindingKind.READ_NEVER_WRITTEN, Severity.WARNING, r["step"],
                           r["rip"], sym.line_no(r["rip"]),
                           f"Read of {place} memory at {hx(r['addr'])} that the program never "
                           f"wrote before ({r['words']} 8-byte word"
                           f"{'s' if r['words'] != 1 else ''} from this instruction). {why}."))
    for r in below:
        red = r["below"] <= RED_ZONE
        msg = (f"Write up to {r['below']} bytes below RSP ({r['n']} time"
               f"{'s' if r['n'] != 1 else ''}). Memory below RSP is not reserved: ")
        msg += ("within the 128-byte red zone the System V ABI lets a leaf function use it, "
                "but any call or push made meanwhile overwrites it." if red else
                "it is beyond the 128-byte red zone, so the next call, push or signal "
                "handler may overwrite it. Move RSP down first (sub rsp, N).")
        out.append(Finding(FindingKind.WRITE_BELOW_RSP,
                           Severity.NOTE if red else Severity.WARNING, r["step"], r["rip"],
                           sym.line_no(r["rip"]), msg, r["n"]))
    return out


def _source_mask(column: pa.Array, name: str) -> np.ndarray:
    """Rows of a dictionary-encoded `source` column equal to `name` (no string decoding)."""
    names = column.dictionary.to_pylist()
    if name not in names:
        return np.zeros(len(column), bool)
    return column.indices.to_numpy(zero_copy_only=False) == names.index(name)


class _FirstTouch:
    """The first read and first write step of each 8-byte word of one address range."""

    def __init__(self, lo: int, hi: int):
        self.lo = lo // 8
        self.n = max(0, (hi + 7) // 8 - self.lo)
        self.write = np.full(self.n, _NEVER, np.uint64)
        self.read = np.full(self.n, _NEVER, np.uint64)
        self.read_rip = np.zeros(self.n, np.uint64)

    def add(self, word: np.ndarray, step: np.ndarray, rip: np.ndarray, is_write: np.ndarray):
        i = word.astype(np.int64) - self.lo
        ok = (i >= 0) & (i < self.n)
        for target, rows in ((self.write, ok & is_write), (self.read, ok & ~is_write)):
            idx, st = i[rows], step[rows]
            fresh = target[idx] == _NEVER
            # Steps ascend: assigning in reverse leaves each word its earliest step.
            target[idx[fresh][::-1]] = st[fresh][::-1]
            if target is self.read:
                self.read_rip[idx[fresh][::-1]] = rip[rows][fresh][::-1]

    def never_written(self) -> list[tuple[int, int, int]]:
        """(rip, step, address) of each word read before any write to it."""
        hit = np.nonzero((self.read != _NEVER) & ((self.write == _NEVER) |
                                                   (self.read < self.write)))[0]
        return list(zip(self.read_rip[hit].tolist(), self.read[hit].tolist(),
                        ((hit + self.lo) * 8).tolist()))


class StackHeapScanner:
    """Two findings from one stream of access batches: reads of never-written stack/heap
    words, and explicit stack writes below the RSP of their step.

    Accesses and RSP changes are both in step order, so RSP at a write is a streaming
    merge (searchsorted among the changes read so far); first touches per word are kept
    in arrays over the stack's 8 MiB and the heap (at most MAX_HEAP_WORDS words)."""

    columns = ("step", "rip", "addr", "size", "is_write", "source")

    def __init__(self, trace: Trace, heap: HeapTimeline):
        self.initial_rsp = ir = trace.initial_rsp
        initial = trace.meta.initial
        self.floor = max(initial.stack_top - initial.stack_limit, ir - MAX_STACK_WORDS * 8, 0)
        self.heap_lo = heap.initial_brk
        heap_hi = max([heap.initial_brk, *heap.brk["end"].tolist()])
        self.heap_hi = min(heap_hi, heap.initial_brk + MAX_HEAP_WORDS * 8)
        self.areas = [_FirstTouch(self.floor, ir), _FirstTouch(self.heap_lo, self.heap_hi)]
        self.rsp_batches = iter(trace.reader("rsp", ["step", "new"]))
        self.steps = np.empty(0, np.uint64)
        self.values = np.empty(0, np.uint64)
        self.before = ir  # RSP before the first buffered change
        self.exhausted = False
        self.per_rip: dict[int, list[int]] = {}

    def update(self, batch) -> None:
        addr = batch.column("addr").to_numpy()
        in_stack = (addr >= self.floor) & (addr < self.initial_rsp)
        keep = in_stack | ((addr >= self.heap_lo) & (addr < self.heap_hi))
        if not keep.any():
            return
        addr, in_stack = addr[keep], in_stack[keep]
        step = batch.column("step").to_numpy()[keep]
        rip = batch.column("rip").to_numpy()[keep]
        size = batch.column("size").to_numpy()[keep].astype(np.uint64)
        is_write = batch.column("is_write").to_numpy(zero_copy_only=False)[keep]
        explicit = _source_mask(batch.column("source"), "explicit")[keep]
        first, last_word = addr // 8, (addr + size - 1) // 8
        small = size <= 16
        two = small & (last_word != first)
        for area in self.areas:
            area.add(first[small], step[small], rip[small], is_write[small])
            area.add(last_word[two], step[two], rip[two], is_write[two])
            for k in np.nonzero(~small)[0].tolist():  # kernel buffers: rare, any size
                words = np.arange(int(first[k]), int(last_word[k]) + 1, dtype=np.uint64)
                area.add(words, np.full(len(words), step[k]), np.full(len(words), rip[k]),
                         np.full(len(words), is_write[k]))
        wmask = is_write & explicit & in_stack
        if wmask.any():
            self._below(step[wmask], addr[wmask], rip[wmask])

    def _below(self, w_step: np.ndarray, w_addr: np.ndarray, w_rip: np.ndarray) -> None:
        last = w_step[-1]
        while not self.exhausted and (len(self.steps) == 0 or self.steps[-1] <= last):
            try:
                b = next(self.rsp_batches)
            except StopIteration:
                self.exhausted = True
                break
            self.steps = np.concatenate([self.steps, b.column("step").to_numpy()])
            self.values = np.concatenate([self.values, b.column("new").to_numpy()])
        idx = np.searchsorted(self.steps, w_step, side="right") - 1
        current = np.where(idx >= 0, self.values[np.maximum(idx, 0)], np.uint64(self.before))
        hit = w_addr < current
        for r, st, depth in zip(w_rip[hit].tolist(), w_step[hit].tolist(),
                                (current[hit] - w_addr[hit]).tolist()):
            slot = self.per_rip.get(r)
            if slot is None:
                self.per_rip[r] = [1, st, depth]
            else:
                slot[0] += 1
                slot[2] = max(slot[2], depth)
        # Changes at or before this batch's last write matter only as the value before.
        done = int(np.searchsorted(self.steps, last, side="right"))
        if done:
            self.before = int(self.values[done - 1])
            self.steps, self.values = self.steps[done:], self.values[done:]

    def results(self) -> tuple[list[dict], list[dict]]:
        """(reads: rip, words, step, addr), (writes: rip, n, step, below), first ones
        first, at most MAX_PER_KIND of each."""
        grouped: dict[int, list[int]] = {}
        for area in self.areas:
            for r, st, a in area.never_written():
                slot = grouped.setdefault(r, [0, st, a])
                slot[0] += 1
                slot[1], slot[2] = min(slot[1], st), min(slot[2], a)
        reads = sorted(({"rip": r, "words": n, "step": st, "addr": a}
                        for r, (n, st, a) in grouped.items()), key=lambda x: x["step"])
        writes = sorted(({"rip": r, "n": n, "step": st, "below": depth}
                         for r, (n, st, depth) in self.per_rip.items()),
                        key=lambda x: x["step"])
        return reads[:MAX_PER_KIND], writes[:MAX_PER_KIND]


def fault_finding(trace: Trace, sym: Symbolizer, heap: HeapTimeline) -> list[Finding]:
    """The fault that ended the run, explained against the memory map at that step."""
    fault = trace.meta.end.fault if trace.meta.end is not None else None
    if fault is None:
        return []
    step, rip, addr, access = fault.step, fault.rip, fault.address, fault.access
    msg = f"The program was killed by {fault.signal}: {fault.cause}."
    if addr is not None:
        regions = map_at(trace.regions, step)
        inside = [r for r in regions if r.start <= addr < r.end]
        if addr == 0:
            msg += (" The address is 0: a null pointer was dereferenced (a register that "
                    "should hold an address held 0).")
        elif addr < 4096:
            msg += (f" The address {hx(addr)} is {addr:,} bytes past 0: a null pointer was "
                    f"used with an offset (a field or element of a structure at address "
                    f"0, or a register that should hold an address held a small number).")
        elif access == "execute":
            msg += (f" RIP went to {hx(addr)}, which is not code. A ret with pushes and pops "
                    f"unbalanced jumps to whatever is on the stack; so does a jump through a "
                    f"bad pointer.")
        elif inside:
            r = inside[0]
            msg += (f" {hx(addr)} is in {r.name or r.kind} ({r.perms}): that region does not "
                    f"allow a {access}; e.g. a constant in .text or .rodata cannot be written.")
        else:
            brk = heap.initial_brk
            heap_now = [r for r in regions if r.kind == "heap"]
            top = heap_now[0].end if heap_now else brk
            below = [r for r in regions if r.end <= addr]
            above = [r for r in regions if r.start > addr]
            if top <= addr < top + (1 << 20):
                msg += (f" {hx(addr)} is {addr - top:,} bytes past the end of the heap "
                        f"({hx(top)}): memory above the break is not mapped until brk moves "
                        f"the break past it.")
            else:
                near = []
                if below:
                    near.append(f"{addr - below[-1].end:,} bytes above the end of "
                                f"{below[-1].name or below[-1].kind}")
                if above:
                    near.append(f"{above[0].start - addr:,} bytes below "
                                f"{above[0].name or above[0].kind}")
                msg += f" No region is mapped at {hx(addr)} ({'; '.join(near)})."
    if "stack overflow" in fault.cause and rip is not None:
        msg += _recursion(trace, sym, rip, step)
    return [Finding(FindingKind.FAULT, Severity.ERROR, step, rip,
                    sym.line_no(rip) if rip is not None else None, msg)]


def _recursion(trace: Trace, sym: Symbolizer, rip: int, step: int) -> str:
    """` `f` called itself N times without returning.` for a stack overflow in `f`, when
    its own calls of itself outnumber its returns (else nothing)."""
    from analysis.code import MemoryImage

    function = sym.function_at(rip)
    image = MemoryImage(trace.memory_image)
    sites = trace.sql(f"SELECT rip, cause::VARCHAR AS cause, count(*) AS n FROM rsp "
                      f"WHERE cause IN ('call', 'ret') AND step < {int(step)} GROUP BY 1, 2",
                      {"rsp": ["step", "rip", "cause"]}).to_pylist()
    self_calls = rets = 0
    for row in sites:
        if sym.function_at(row["rip"]) != function:
            continue
        if row["cause"] == "ret":
            rets += row["n"]
        else:
            target = image.call_target(row["rip"])
            if target is not None and sym.function_at(target) == function:
                self_calls += row["n"]
    depth = self_calls - rets
    if depth <= 1:
        return ""
    return (f" `{function}` called itself {depth:,} times without returning: each call "
            f"left its frame on the stack until the stack reached its limit (a recursion "
            f"with no base case, or one never reached).")


class FindingScanners:
    """The findings that need a pass over the accesses table, as consumers of one shared
    `scan_accesses` pass (the report adds its own consumers to the same pass)."""

    def __init__(self, trace: Trace, heap: HeapTimeline):
        self.trace = trace
        self.heap = heap
        self.sym = Symbolizer(trace.symbols, trace.lines)
        self.sections = read_sections(trace.files.program_bytes())
        self.wide = WideAccessScanner(data_items(self.sym, self.sections))
        self.memory = StackHeapScanner(trace, heap)
        self.consumers = [self.wide, self.memory]

    def findings(self, stack: StackDepth) -> list[Finding]:
        """Every finding, in step order (call after the scan)."""
        trace, sym, heap = self.trace, self.sym, self.heap
        wide = wide_accesses(trace, sym, self.sections, self.wide)
        out = [*wide, *brk_failures(heap, sym, trace, wide), *rsp_findings(trace, sym, stack),
               *memory_findings(sym, self.memory), *fault_finding(trace, sym, heap)]
        return sorted(out, key=lambda f: (f.step is None, f.step or 0))


def findings(trace: Trace, stack: StackDepth, heap: HeapTimeline) -> list[Finding]:
    """Every finding of a run, in step order.

    Args:
        trace: an open trace.
        stack: its stack timeline (`analysis.stack.stack_depth`).
        heap: its heap timeline (`analysis.heap.heap_timeline`).
    """
    scanners = FindingScanners(trace, heap)
    scan_accesses(trace, scanners.consumers)
    return scanners.findings(stack)
