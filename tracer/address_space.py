"""The emulated process's address space: the one owner of regions, the program break and
mmap placement, kept in step with Unicorn's mappings. Policies follow Linux x86-64."""

from __future__ import annotations

from unicorn import UC_PROT_EXEC, UC_PROT_NONE, UC_PROT_READ, UC_PROT_WRITE, Uc

# (PAGE, RegionEvent, page_down and page_up are re-exported for the loader and the syscalls.)
from tracer.format.regions import PAGE, RegionEvent, RegionMap, Segment, page_down, page_up

STACK_TOP = 0x7FFFFFFFF000          # TASK_SIZE on x86-64 with 4-level paging
STACK_LIMIT = 8 << 20               # RLIMIT_STACK default
STACK_GUARD_GAP = 256 * PAGE        # stack_guard_gap: faults this far below count as overflow
STACK_EXPAND = 128 << 10            # setup_arg_pages: [stack] = the argument pages + this
MMAP_BASE = STACK_TOP - (128 << 20)  # mmap_base with ASLR off: the gap is clamped to 128 MiB
VDSO_PAGES = 8                      # [vvar] + [vvar_vclock] + [vdso] on Linux 6.x
VDSO_IMAGE_PAGES = 2                # of which the [vdso] image itself
# Overcommit heuristic stand-in: Linux refuses one brk/mmap larger than RAM + swap. We fix
# the emulated machine's size so that traces do not depend on the host.
MEMORY_LIMIT = 16 << 30
# What the guest may have mapped in all (`--max-memory`), as `ulimit -v` bounds a process:
# Unicorn backs each touched guest page with a host page, so this bounds the recorder's
# memory too.
DEFAULT_MAX_MEMORY = 4 << 30

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4


def perms_text(prot: int) -> str:
    return (("r" if prot & PROT_READ else "-") + ("w" if prot & PROT_WRITE else "-")
            + ("x" if prot & PROT_EXEC else "-"))


def prot_from_text(perms: str) -> int:
    return ((PROT_READ if "r" in perms else 0) | (PROT_WRITE if "w" in perms else 0)
            | (PROT_EXEC if "x" in perms else 0))


def uc_prot(perms: str) -> int:
    """Unicorn protection bits of an `rwx` string."""
    return _uc_prot(prot_from_text(perms))


def _uc_prot(prot: int) -> int:
    out = UC_PROT_NONE
    if prot & PROT_READ:
        out |= UC_PROT_READ
    if prot & PROT_WRITE:
        out |= UC_PROT_WRITE
    if prot & PROT_EXEC:
        out |= UC_PROT_EXEC
    return out


# The address space's regions are the shared map's segments (tracer.format.regions).
Region = Segment


class AddressSpace:
    """Regions of the process, in address order, mirrored into Unicorn."""

    def __init__(self, uc: Uc):
        self._uc = uc
        # The map as Unicorn holds it: the [stack] segment is the whole RLIMIT_STACK
        # reservation, which the recorded `map`/`grow` events draw as Linux's [stack] VMA.
        self._map = RegionMap()
        self.events: list[RegionEvent] = []
        self.brk_start = 0
        self.brk = 0
        self.max_memory: int | None = None  # bytes mapped in all; None: no limit
        self.memory_refusals = 0  # requests refused because of max_memory
        self.stack_start = STACK_TOP  # Linux's [stack] VMA is [stack_start, STACK_TOP)

    @property
    def regions(self) -> tuple[Region, ...]:
        return self._map.segments

    def region_at(self, addr: int) -> Region | None:
        return self._map.at(addr)

    def is_mapped(self, addr: int, size: int, need: int = 0) -> bool:
        """True when [addr, addr+size) is mapped with at least the `need` PROT_* bits."""
        pos, end = addr, addr + max(size, 1)
        while pos < end:
            r = self.region_at(pos)
            if r is None or (need & ~prot_from_text(r.perms)):
                return False
            pos = r.end
        return True

    # -- mapping primitives -------------------------------------------------------------
    def _apply(self, ev: RegionEvent) -> None:
        """Applies `ev` to the map and mirrors what it changed into Unicorn."""
        self._map = self._map.apply(ev)
        change = self._map.change
        for r in change.unmapped:
            self._uc.mem_unmap(r.start, r.end - r.start)
        for r in change.mapped:
            self._uc.mem_map(r.start, r.end - r.start, _uc_prot(prot_from_text(r.perms)))
        for r in change.protected:
            self._uc.mem_protect(r.start, r.end - r.start, _uc_prot(prot_from_text(r.perms)))

    def map(self, start: int, end: int, perms: str, kind: str, name: str = "") -> None:
        """Maps [start, end) (page aligned), replacing whatever was there (MAP_FIXED)."""
        ev = RegionEvent("map", start, end, perms, kind, name)
        self._apply(ev)
        self.events.append(ev)

    def unmap(self, start: int, end: int) -> None:
        self._apply(RegionEvent("unmap", start, end, "", "", ""))
        for r in self._map.change.unmapped:
            self.events.append(RegionEvent("unmap", r.start, r.end, r.perms, r.kind, r.name))

    def protect(self, start: int, end: int, prot: int) -> None:
        self._apply(RegionEvent("protect", start, end, perms_text(prot), "", ""))
        for r in self._map.change.protected:
            self.events.append(RegionEvent("protect", r.start, r.end, r.perms, r.kind, r.name))

    # -- the stack ----------------------------------------------------------------------
    @property
    def stack_floor(self) -> int:
        """The lowest address the stack may grow down to (RLIMIT_STACK below its top)."""
        return STACK_TOP - STACK_LIMIT

    def map_stack(self, start: int) -> None:
        """Maps the stack as Linux's [stack] VMA [start, STACK_TOP), which grows on touch.

        Unicorn (and this map's region) hold the whole RLIMIT_STACK reservation, so that a
        growth costs nothing; the recorder reports each growth (`grow_stack`) when an access
        first goes below `stack_start`, and the `map` event says what Linux shows.
        """
        self._apply(RegionEvent("map", self.stack_floor, STACK_TOP, "rw-", "stack", "[stack]"))
        self.stack_start = start
        self.events.append(RegionEvent("map", start, STACK_TOP, "rw-", "stack", "[stack]"))

    def grow_stack(self, start: int) -> RegionEvent:
        """The stack VMA grew down to `start` (page aligned); returns the `grow` event: the
        pages added, [start, the previous start)."""
        region = self.region_at(start)
        event = RegionEvent("grow", start, self.stack_start, region.perms if region else "rw-",
                            "stack", "[stack]")
        self.stack_start = start
        return event

    # -- Linux policies -----------------------------------------------------------------
    def set_initial_brk(self, addr: int) -> None:
        self.brk_start = self.brk = addr

    def set_brk(self, requested: int) -> int:
        """Linux's brk(2): returns the new break, or the old one when the request fails."""
        if requested < self.brk_start:
            return self.brk
        new_top, old_top = page_up(requested), page_up(self.brk)
        if new_top == old_top:
            self.brk = requested
            return self.brk
        event = RegionEvent("brk", self.brk_start, new_top, "rw-", "heap", "[heap]")
        if requested < self.brk:
            self._apply(event)
            self.events.append(event)
            self.brk = requested
            return self.brk
        if new_top - self.brk_start > MEMORY_LIMIT:
            return self.brk
        # The new heap pages, plus one guard page, must not collide with another mapping.
        if not self.is_free(old_top, new_top + PAGE):
            return self.brk
        if not self.may_map(old_top, new_top):
            return self.brk
        self._apply(event)
        self.events.append(event)
        self.brk = requested
        return self.brk

    def find_free_topdown(self, length: int) -> int | None:
        """Highest gap below mmap_base that fits `length` (Linux's topdown allocator)."""
        ceiling = MMAP_BASE
        for r in reversed(self._map.segments):
            if r.start >= ceiling:
                continue
            if r.end <= ceiling - length:
                return ceiling - length
            ceiling = r.start
        floor = max(page_up(self.brk), 0x10000)
        return ceiling - length if ceiling - length >= floor else None

    def is_free(self, start: int, end: int) -> bool:
        return all(r.end <= start or r.start >= end for r in self._map.segments)

    # -- the memory limit (RLIMIT_AS) ---------------------------------------------------
    def mapped_bytes(self) -> int:
        """Bytes mapped in all (Linux's total_vm)."""
        return sum(r.end - r.start for r in self._map.segments)

    def may_map(self, start: int, end: int) -> bool:
        """Whether mapping [start, end) keeps the total within `max_memory`; pages the new
        mapping replaces are not counted twice (as Linux's mmap_region)."""
        replaced = sum(min(r.end, end) - max(r.start, start) for r in self._map.segments
                       if r.start < end and r.end > start)
        return self.may_grow(end - start - replaced)

    def may_grow(self, nbytes: int) -> bool:
        """Whether `nbytes` more may be mapped within `max_memory` (Linux's may_expand_vm
        under RLIMIT_AS). A refusal is counted in `memory_refusals`."""
        if self.max_memory is None or self.mapped_bytes() + nbytes <= self.max_memory:
            return True
        self.memory_refusals += 1
        return False
