"""The DWARF line table of an executable (.debug_line, versions 2 to 5): which source file
and line each instruction address comes from, read as pyelftools reads it (each compile
unit's line program, in .debug_info order; the first row for an address wins), with struct
alone. Every malformed byte is a MalformedElf."""

from __future__ import annotations

import struct
from collections.abc import Callable

from tracer.elf_file import ElfFile, MalformedElf, inflate

# "line" (.debug_line_str) and "str" (.debug_str): offset -> the string there.
_Strings = dict[str, Callable[[int], "bytes | None"]]

DW_AT_STMT_LIST = 0x10
DW_LNCT_PATH, DW_LNCT_DIRECTORY_INDEX = 1, 2
# DWARF 5 unit types -> what follows the address size and abbreviation offset.
_COMPILE, _SKELETON, _TYPE = "compile", "skeleton", "type"
_UNIT_TYPES = {1: _COMPILE, 2: _TYPE, 3: _COMPILE, 4: _SKELETON, 5: _SKELETON, 6: _TYPE}


class _Reader:
    """Little-endian reads from one section's bytes, each bounds-checked."""

    def __init__(self, data: bytes, name: str, pos: int = 0) -> None:
        self.data, self.name, self.pos = data, name, pos

    def _take(self, n: int) -> int:
        start = self.pos
        if n < 0 or start + n > len(self.data):
            raise MalformedElf(f"{self.name}: {n} bytes at {start:#x} are past its end")
        self.pos = start + n
        return start

    def uint(self, size: int) -> int:
        start = self._take(size)
        return int.from_bytes(self.data[start:start + size], "little")

    def int8(self) -> int:
        value = self.uint(1)
        return value - 0x100 if value & 0x80 else value

    def raw(self, n: int) -> bytes:
        start = self._take(n)
        return self.data[start:start + n]

    def _leb(self) -> tuple[int, int, int]:
        """A LEB128 number's bits, their count and its last byte."""
        value = shift = 0
        while True:
            byte = self.uint(1)
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, shift, byte

    def uleb(self) -> int:
        return self._leb()[0]

    def sleb(self) -> int:
        value, shift, last = self._leb()
        return value - (1 << shift) if last & 0x40 else value

    def cstring(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise MalformedElf(f"{self.name}: unterminated string at {self.pos:#x}")
        text, self.pos = self.data[self.pos:end], end + 1
        return text

    def initial_length(self) -> tuple[int, int]:
        """(unit length, offset size: 4 for 32-bit DWARF, 8 for 64-bit)."""
        length = self.uint(4)
        return (self.uint(8), 8) if length == 0xFFFFFFFF else (length, 4)


def _section(elf: ElfFile, name: str, zdebug: bool) -> bytes | None:
    """A DWARF section's bytes (.zdebug_* ones inflated), or None."""
    header = elf.section(f".z{name[1:]}" if zdebug else name)
    if header is None:
        return None
    data = elf.contents(header)
    if zdebug and data[:4] == b"ZLIB" and len(data) >= 12:
        return inflate(data[12:], struct.unpack(">Q", data[4:12])[0], header.name)
    return data


def _form_value(r: _Reader, form: int, offset_size: int, address_size: int, version: int,
                implicit: int | None = None) -> int | bytes:
    """One attribute value of `form`: integers as int, strings and blocks as bytes (a
    string form gives its offset: only the line table's strings are looked up)."""
    if form in (0x0B, 0x11, 0x0C, 0x25, 0x29):  # data1 flag ref1 strx1 addrx1
        return r.uint(1)
    if form in (0x05, 0x12, 0x26, 0x2A):        # data2 ref2 strx2 addrx2
        return r.uint(2)
    if form in (0x27, 0x2B):                    # strx3 addrx3
        return r.uint(3)
    if form in (0x06, 0x13, 0x28, 0x2C):        # data4 ref4 strx4 addrx4
        return r.uint(4)
    if form in (0x07, 0x14, 0x20):              # data8 ref8 ref_sig8
        return r.uint(8)
    if form == 0x1E:                            # data16
        return r.raw(16)
    if form in (0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02):
        return r.uleb()                         # udata ref_udata strx addrx *listx GNU idx
    if form == 0x0D:                            # sdata
        return r.sleb()
    if form == 0x01:                            # addr
        return r.uint(address_size)
    if form in (0x0E, 0x17, 0x1F, 0x1D, 0x1F20, 0x1F21):  # strp sec_offset line_strp
        return r.uint(offset_size)                         # strp_sup GNU_ref_alt/strp_alt
    if form == 0x10:                            # ref_addr
        return r.uint(address_size if version <= 2 else offset_size)
    if form == 0x08:                            # string
        return r.cstring()
    if form in (0x0A, 0x09, 0x03, 0x04, 0x18):  # block1 block block2 block4 exprloc
        size = {0x0A: 1, 0x03: 2, 0x04: 4}.get(form)
        return r.raw(r.uint(size) if size else r.uleb())
    if form == 0x19:                            # flag_present
        return 1
    if form == 0x21:                            # implicit_const
        return implicit or 0
    if form == 0x16:                            # indirect
        return _form_value(r, r.uleb(), offset_size, address_size, version)
    raise MalformedElf(f"unknown DWARF form {form:#x}")


def _stmt_lists(info: bytes, abbrev: bytes | None) -> list[tuple[int, int]]:
    """Each compile unit's line program offset (DW_AT_stmt_list of its first DIE), with
    its address size, in .debug_info order; units without one are skipped."""
    out = []
    offset = 0
    while offset < len(info):
        r = _Reader(info, ".debug_info", offset)
        length, offset_size = r.initial_length()
        version = r.uint(2)
        if version >= 5:
            kind = _UNIT_TYPES.get(r.uint(1))
            if kind is None:
                raise MalformedElf(f".debug_info: unknown unit type at {offset:#x}")
            address_size, abbrev_offset = r.uint(1), r.uint(offset_size)
            r.pos += {_COMPILE: 0, _SKELETON: 8, _TYPE: 8 + offset_size}[kind]
        else:
            abbrev_offset, address_size = r.uint(offset_size), r.uint(1)
        next_offset = offset + length + (12 if offset_size == 8 else 4)
        code = r.uleb()
        if code:
            stmt_list = _stmt_list(r, _abbreviation(abbrev, abbrev_offset, code),
                                   offset_size, address_size, version)
            if stmt_list is not None:
                out.append((stmt_list, address_size))
        offset = next_offset
    return out


def _abbreviation(abbrev: bytes | None, offset: int, code: int) -> list[tuple[int, int, int]]:
    """The (attribute, form, implicit constant) list of abbreviation `code` of the table
    at `offset`."""
    if abbrev is None:
        raise MalformedElf(".debug_info without .debug_abbrev")
    r = _Reader(abbrev, ".debug_abbrev", offset)
    while True:
        found = r.uleb()
        if found == 0:
            raise MalformedElf(f".debug_abbrev: no abbreviation {code} at {offset:#x}")
        r.uleb()   # tag
        r.uint(1)  # has children
        attributes = []
        while True:
            name, form = r.uleb(), r.uleb()
            if name == 0 and form == 0:
                break
            attributes.append((name, form, r.sleb() if form == 0x21 else None))
        if found == code:
            return attributes


def _stmt_list(r: _Reader, attributes, offset_size: int, address_size: int,
               version: int) -> int | None:
    for name, form, implicit in attributes:
        value = _form_value(r, form, offset_size, address_size, version, implicit)
        if name == DW_AT_STMT_LIST:
            if not isinstance(value, int):
                raise MalformedElf("DW_AT_stmt_list is not an offset")
            return value
    return None


class _LineProgram:
    """One line program's header: its directories and files (names as bytes)."""

    def __init__(self, r: _Reader, strings: _Strings) -> None:
        length, offset_size = r.initial_length()
        self.end = r.pos + length
        self.version = r.uint(2)
        if self.version >= 5:
            r.uint(1)  # address size
            r.uint(1)  # segment selector size
        r.uint(offset_size)  # header length: the program starts after the last file
        self.min_length = r.uint(1)
        self.max_ops = r.uint(1) if self.version >= 4 else 1
        self.default_is_stmt = r.uint(1)
        self.line_base = r.int8()
        self.line_range = r.uint(1)
        self.opcode_base = r.uint(1)
        r.raw(max(self.opcode_base - 1, 0))  # standard opcode lengths
        if self.version >= 5:
            self.dirs = [e.get(DW_LNCT_PATH) for e in _entries(r, offset_size, strings)]
            self.files = [(e.get(DW_LNCT_PATH), e.get(DW_LNCT_DIRECTORY_INDEX))
                          for e in _entries(r, offset_size, strings)]
        else:
            self.dirs = []
            while name := r.cstring():
                self.dirs.append(name)
            self.files = []
            while file := _file_entry(r):
                self.files.append(file)
        self.start = r.pos


def _file_entry(r: _Reader) -> tuple[bytes, int] | None:
    name = r.cstring()
    if not name:
        return None
    dir_index = r.uleb()
    r.uleb()  # modification time
    r.uleb()  # length
    return name, dir_index


def _entries(r: _Reader, offset_size: int, strings: _Strings) -> list[dict[int, object]]:
    """A DWARF 5 directory or file name table: each entry's {content type: value}, strings
    looked up."""
    formats = [(r.uleb(), r.uleb()) for _ in range(r.uint(1))]
    out = []
    for _ in range(r.uleb()):
        entry = {}
        for content, form in formats:
            value = _form_value(r, form, offset_size, 8, 5)
            if form == 0x1F:    # line_strp
                value = strings["line"](value)
            elif form == 0x0E:  # strp
                value = strings["str"](value)
            elif form in (0x1D, 0x1F21):  # in a supplementary file we do not read
                value = str(value).encode()
            elif form in (0x1A, 0x25, 0x26, 0x27, 0x28):
                raise MalformedElf("DWARF 5 string index forms are not supported")
            entry[content] = value
        out.append(entry)
    return out


def _rows(program: _LineProgram, r: _Reader, address_size: int):
    """The line program's rows as (address, file, line, end_sequence)."""
    if not program.line_range or not program.max_ops:
        raise MalformedElf(".debug_line: a line range or operation count of 0")
    address, file, line, op_index = 0, 1, 1, 0
    base, line_range, min_length = program.opcode_base, program.line_range, program.min_length
    while r.pos < program.end:
        opcode = r.uint(1)
        if opcode >= base:
            adjusted = opcode - base
            advance = adjusted // line_range
            address += min_length * ((op_index + advance) // program.max_ops)
            op_index = (op_index + advance) % program.max_ops
            line += program.line_base + adjusted % line_range
            yield address, file, line, False
        elif opcode == 0:
            length = r.uleb()
            extended = r.uint(1)
            if extended == 1:    # end_sequence
                yield address, file, line, True
                address, file, line, op_index = 0, 1, 1, 0
            elif extended == 2:  # set_address
                if address_size not in (4, 8):
                    raise MalformedElf(f".debug_line: address size {address_size}")
                address = r.uint(address_size)
            elif extended == 3:  # define_file
                entry = _file_entry(r)
                program.files.append(entry if entry else (b"", 0))
            elif extended == 4:  # set_discriminator
                r.uleb()
            else:
                r.pos += length - 1
        elif opcode == 1:        # copy
            yield address, file, line, False
        elif opcode == 2:        # advance_pc
            address += r.uleb() * min_length
        elif opcode == 3:        # advance_line
            line += r.sleb()
        elif opcode == 4:        # set_file
            file = r.uleb()
        elif opcode in (5, 12):  # set_column, set_isa
            r.uleb()
        elif opcode in (6, 7, 10, 11):  # negate_stmt basic_block prologue_end epilogue_begin
            pass
        elif opcode == 8:        # const_add_pc
            address += ((255 - base) // line_range) * min_length
        elif opcode == 9:        # fixed_advance_pc
            address += r.uint(2)
        else:
            raise MalformedElf(f".debug_line: invalid standard opcode {opcode}")


def _string_at(data: bytes | None, name: str) -> Callable[[int], bytes | None]:
    def look_up(offset: int) -> bytes | None:
        if data is None:
            raise MalformedElf(f"a string in {name}, which is missing")
        end = data.find(b"\0", offset)
        return None if end < 0 or offset < 0 else data[offset:end]
    return look_up


def line_table(elf: ElfFile) -> list[tuple[int, str, int]]:
    """(address, source file, line) of each address the line table names, by address.

    Raises:
        MalformedElf: the debug sections are not what DWARF says.
    """
    zdebug = elf.section(".zdebug_info") is not None
    info = _section(elf, ".debug_info", zdebug)
    if info is None:
        return []
    abbrev = _section(elf, ".debug_abbrev", zdebug)
    lines = _section(elf, ".debug_line", zdebug)
    strings = {"line": _string_at(_section(elf, ".debug_line_str", zdebug), ".debug_line_str"),
               "str": _string_at(_section(elf, ".debug_str", zdebug), ".debug_str")}
    out: dict[int, tuple[int, str, int]] = {}
    programs: dict[int, tuple[_LineProgram, list]] = {}
    for offset, address_size in _stmt_lists(info, abbrev):
        if lines is None:
            raise MalformedElf("a compile unit names a line program, but .debug_line is missing")
        if offset not in programs:
            program = _LineProgram(_Reader(lines, ".debug_line", offset), strings)
            rows = list(_rows(program, _Reader(lines, ".debug_line", program.start),
                              address_size))
            programs[offset] = program, rows
        program, rows = programs[offset]
        shift = 1 if program.version < 5 else 0
        for address, file, line, end_sequence in rows:
            index = file - shift
            if end_sequence or not 0 <= index < len(program.files):
                continue
            name_bytes, dir_index = program.files[index]
            if name_bytes is None:
                raise MalformedElf(".debug_line: a file without a name")
            name = name_bytes.decode(errors="replace")
            if dir_index and dir_index - shift < len(program.dirs):
                directory = program.dirs[dir_index - shift]
                if directory is None:
                    raise MalformedElf(".debug_line: a directory without a name")
                name = f"{directory.decode(errors='replace')}/{name}"
            out.setdefault(address, (address, name, line))
    return sorted(out.values())
