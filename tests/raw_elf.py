"""Static x86-64 ELF executables written byte by byte around given machine code, for tests
that need programs no assembler would write (random instruction bytes)."""

from __future__ import annotations

import struct

TEXT = 0x400000          # code, r-x
DATA = 0x600000          # a zeroed buffer, rw-
DATA_SIZE = 0x10000


def elf(code: bytes) -> bytes:
    """An executable whose entry point is `code` (mapped r-x at TEXT, after the headers),
    with a DATA_SIZE zeroed read-write buffer at DATA."""
    ehdr_size, phdr_size = 64, 56
    code_offset = ehdr_size + 2 * phdr_size
    header = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 2, 0x3E, 1,
                         TEXT + code_offset, ehdr_size, 0, 0, ehdr_size, phdr_size, 2, 64, 0, 0)
    text = struct.pack("<IIQQQQQQ", 1, 5, 0, TEXT, TEXT, code_offset + len(code),
                       code_offset + len(code), 0x1000)  # PT_LOAD, PF_R | PF_X
    data = struct.pack("<IIQQQQQQ", 1, 6, 0, DATA, DATA, 0, DATA_SIZE, 0x1000)  # PF_R | PF_W
    return header + text + data + code


def point_registers_at_data() -> bytes:
    """`mov r, DATA + DATA_SIZE / 2` for every general register but RSP, so that random
    memory operands mostly land in mapped memory."""
    out = b""
    for reg in range(16):
        if reg != 4:
            out += bytes([0x48 | (reg >> 3), 0xB8 + (reg & 7)])
            out += struct.pack("<Q", DATA + DATA_SIZE // 2)
    return out
