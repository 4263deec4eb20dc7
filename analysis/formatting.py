"""How numbers read in reports and on the command line: sizes, counts with their noun.
Imports nothing from the rest of vmtrace (the CLI and every renderer use it)."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """A size as people read it: `640 bytes`, `4.0 KiB`, `132.0 KiB`."""
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            if unit == "bytes":
                return f"{n:,} byte" if n == 1 else f"{n:,} bytes"
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{n:,} bytes"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 syscall`, `2 syscalls`, `1,000 memory accesses` (count with thousands separators).

    Args:
        count: how many.
        noun: the singular.
        many: the plural when it is not `noun + "s"`.
    """
    word = noun if count == 1 else (many or noun + "s")
    return f"{count:,} {word}"
