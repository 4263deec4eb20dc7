"""Builds Arrow arrays from Python values through `Array.from_buffers`.

Why not `pa.array`: any call of it makes pyarrow import pandas (its array-like check goes
through the pandas shim), a quarter of a second and ~60 MB at the start of every
recording that uses nothing of pandas. Covers the column types of the format's small tables.
"""

from __future__ import annotations

from array import array as _packed
from itertools import accumulate
from typing import Any

import pyarrow as pa

# Each fixed-width type's typecode in the `array` module (the record process loads no
# numpy: see vmtrace/cli.py).
_TYPECODES = {pa.uint64(): "Q", pa.int64(): "q", pa.uint32(): "I", pa.int32(): "i",
              pa.int16(): "h", pa.int8(): "b", pa.uint8(): "B", pa.float64(): "d"}


def _bits(flags: list[bool]) -> pa.Buffer:
    """Arrow's bit layout: bit i of byte i // 8, least significant first."""
    packed = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            packed[i >> 3] |= 1 << (i & 7)
    return pa.py_buffer(bytes(packed))


def _validity(values: list[Any]) -> pa.Buffer | None:
    valid = [v is not None for v in values]
    return None if all(valid) else _bits(valid)


def _offsets(lengths: list[int], typecode: str) -> pa.Buffer:
    return pa.py_buffer(_packed(typecode, accumulate(lengths, initial=0)).tobytes())


def array(values: list[Any], type_: pa.DataType) -> pa.Array:
    """An Arrow array of `type_` holding `values` (None = null).

    Raises:
        TypeError: a type the format's small tables do not use.
    """
    n = len(values)
    validity = _validity(values)
    if type_ in _TYPECODES:
        data = _packed(_TYPECODES[type_], (0 if v is None else v for v in values))
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(data.tobytes())])
    if type_ in (pa.string(), pa.binary(), pa.large_binary()):
        raw = [b"" if v is None else (v.encode() if isinstance(v, str) else bytes(v))
               for v in values]
        offsets = _offsets([len(r) for r in raw], "q" if type_ == pa.large_binary() else "i")
        return pa.Array.from_buffers(type_, n, [validity, offsets, pa.py_buffer(b"".join(raw))])
    if type_ == pa.bool_():
        return pa.Array.from_buffers(type_, n, [validity, _bits([bool(v) for v in values])])
    if pa.types.is_dictionary(type_):
        words = list(dict.fromkeys(v for v in values if v is not None))
        index = {w: i for i, w in enumerate(words)}
        indices = array([None if v is None else index[v] for v in values], type_.index_type)
        return pa.DictionaryArray.from_arrays(indices, array(words, type_.value_type))
    if pa.types.is_fixed_size_list(type_):
        width = type_.list_size
        flat = [x for v in values for x in (v if v is not None else [0] * width)]
        child = array(flat, type_.value_type)
        return pa.Array.from_buffers(type_, n, [validity], children=[child])
    if pa.types.is_list(type_):
        offsets = _offsets([0 if v is None else len(v) for v in values], "i")
        child = array([x for v in values if v is not None for x in v], type_.value_type)
        return pa.Array.from_buffers(type_, n, [validity, offsets], children=[child])
    raise TypeError(f"no builder for Arrow type {type_}")


def record_batch(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.RecordBatch:
    """A record batch of `schema` from columns of Python values."""
    return pa.RecordBatch.from_arrays(
        [array(columns[f.name], f.type) for f in schema], schema=schema)
