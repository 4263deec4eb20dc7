"""brk, mmap, munmap, mprotect, mremap: Linux's results, errors included, via AddressSpace."""

from __future__ import annotations

from tracer.address_space import (
    MEMORY_LIMIT, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, page_up, perms_text,
)
from tracer.syscalls.context import OpenFile, SyscallContext
from tracer.syscalls.errno import EACCES, EBADF, EEXIST, EFAULT, EINVAL, ENODEV, ENOMEM

MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_FIXED_NOREPLACE = 0x100000
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
TASK_SIZE = 0x7FFFFFFFF000
MOVE_PIECE = 1 << 20  # mremap copies a moved mapping's contents this much at a time


def sys_brk(ctx: SyscallContext, addr: int, *_: int) -> int:
    return ctx.space.set_brk(addr)


def sys_mmap(ctx: SyscallContext, addr: int, length: int, prot: int, flags: int, fd: int,
             offset: int) -> int:
    fd = _signed32(fd)
    if length == 0 or offset & (PAGE - 1):
        return -EINVAL
    if not flags & (MAP_SHARED | MAP_PRIVATE):
        return -EINVAL
    size = page_up(length)
    if size == 0 or size > TASK_SIZE:
        return -ENOMEM
    if size > MEMORY_LIMIT:
        return -ENOMEM
    data = b""
    if not flags & MAP_ANONYMOUS:
        file = ctx.process.files.get(fd)
        if file is None:
            return -EBADF
        if not isinstance(file, OpenFile):
            return -ENODEV
        if flags & MAP_SHARED and prot & PROT_WRITE:
            return -EACCES  # files are opened read-only
        data = file.data[offset:offset + size]
    fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)
    if fixed:
        if addr & (PAGE - 1) or addr + size > TASK_SIZE:
            return -EINVAL
        if flags & MAP_FIXED_NOREPLACE and not ctx.space.is_free(addr, addr + size):
            return -EEXIST
        start = addr
    elif addr and addr + size <= TASK_SIZE and ctx.space.is_free(addr & ~(PAGE - 1),
                                                                   (addr & ~(PAGE - 1)) + size):
        start = addr & ~(PAGE - 1)
    else:
        found = ctx.space.find_free_topdown(size)
        if found is None:
            return -ENOMEM
        start = found
    if not ctx.space.may_map(start, start + size):
        return -ENOMEM  # --max-memory, as RLIMIT_AS (`ulimit -v`) refuses it
    kind = "mmap"
    name = "" if flags & MAP_ANONYMOUS else str(ctx.process.files[fd].host_path)
    ctx.space.map(start, start + size, perms_text(prot & (PROT_READ | PROT_WRITE | PROT_EXEC)),
                  kind, name)
    if data:
        # File contents enter guest memory: an input of the run, kept for replay.
        ctx.uc.mem_write(start, data)
        ctx.mapped_file_data(start, data)
    return start


def sys_munmap(ctx: SyscallContext, addr: int, length: int, *_: int) -> int:
    if addr & (PAGE - 1) or length == 0:
        return -EINVAL
    end = addr + page_up(length)
    if end > TASK_SIZE:
        return -EINVAL
    ctx.space.unmap(addr, end)
    return 0


def sys_mprotect(ctx: SyscallContext, addr: int, length: int, prot: int, *_: int) -> int:
    if addr & (PAGE - 1):
        return -EINVAL
    if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC):
        return -EINVAL
    end = addr + page_up(length)
    if end == addr:
        return 0
    if not ctx.space.is_mapped(addr, end - addr):
        return -ENOMEM
    ctx.space.protect(addr, end, prot)
    return 0


def sys_mremap(ctx: SyscallContext, old: int, old_size: int, new_size: int, flags: int,
               new_addr: int, *_: int) -> int:
    if old & (PAGE - 1) or flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED):
        return -EINVAL
    # PAGE_ALIGN in 64 bits: a length within a page of 2^64 wraps to 0, which is invalid.
    old_size, new_size = page_up(old_size) & _U64, page_up(new_size) & _U64
    if new_size == 0:
        return -EINVAL
    region = ctx.space.region_at(old)
    if flags & MREMAP_FIXED:
        return -EINVAL  # moving to a chosen address is not emulated
    if region is None or not ctx.space.is_mapped(old, old_size):
        return -EFAULT
    if new_size <= old_size:
        if new_size < old_size:
            ctx.space.unmap(old + new_size, old + old_size)
        return old
    # Growing: the same checks as mmap (the overcommit stand-in, then --max-memory as
    # RLIMIT_AS), before any placement is tried, as Linux's resize_is_valid does.
    if new_size - old_size > MEMORY_LIMIT or not ctx.space.may_grow(new_size - old_size):
        return -ENOMEM
    if old + new_size <= TASK_SIZE and ctx.space.is_free(old + old_size, old + new_size):
        ctx.space.map(old + old_size, old + new_size, region.perms, region.kind, region.name)
        return old
    if not flags & MREMAP_MAYMOVE:
        return -ENOMEM
    target = ctx.space.find_free_topdown(new_size)
    if target is None:
        return -ENOMEM
    ctx.space.map(target, target + new_size, region.perms, region.kind, region.name)
    _move_contents(ctx, old, target, old_size)
    ctx.space.unmap(old, old + old_size)
    return target


def _move_contents(ctx: SyscallContext, src: int, dst: int, size: int) -> None:
    """Copies a moved mapping's pages, piece by piece, skipping all-zero pieces (the new
    mapping is zero already): a never-touched guest page costs the host no memory, neither
    when read nor when skipped, so moving a large, mostly untouched mapping stays cheap."""
    zero = bytes(MOVE_PIECE)
    for offset in range(0, size, MOVE_PIECE):
        n = min(MOVE_PIECE, size - offset)
        piece = ctx.uc.mem_read(src + offset, n)
        if piece != zero[:n]:
            ctx.uc.mem_write(dst + offset, bytes(piece))


_U64 = (1 << 64) - 1


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


MADV_DONTNEED = 4
# The advice values Linux accepts on x86-64 (anything else is -EINVAL).
_MADVICE = {0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
            25, 100, 101}


def sys_madvise(ctx: SyscallContext, addr: int, length: int, advice: int, *_: int) -> int:
    """Advice changes nothing a program can see, except MADV_DONTNEED on private memory:
    the next access finds zero-filled pages (recorded as the kernel writing zeros)."""
    advice &= 0xFFFFFFFF
    if addr & (PAGE - 1) or advice not in _MADVICE:
        return -EINVAL
    end = addr + page_up(length)
    if end < addr or end > TASK_SIZE:
        return -EINVAL
    if end == addr:
        return 0
    if not ctx.space.is_mapped(addr, end - addr):
        return -ENOMEM
    if advice == MADV_DONTNEED:
        for region in ctx.space.regions:
            lo, hi = max(region.start, addr), min(region.end, end)
            if lo < hi and "w" in region.perms:
                ctx.uc.mem_write(lo, bytes(hi - lo))
                ctx.mapped_file_data(lo, bytes(hi - lo))
    return 0
