"""Builds Arrow arrays from Python values through `Array.from_buffers`.

Why not `pa.array`: any call of it makes pyarrow import pandas (its array-like check goes
through the pandas shim), a quarter of a second and ~60 MB at the start of every
recording that uses nothing of pandas. Covers the column types of the format's small tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

_NUMPY = {pa.uint64(): np.uint64, pa.int64(): np.int64, pa.uint32(): np.uint32,
          pa.int32(): np.int32, pa.int16(): np.int16, pa.int8(): np.int8, pa.uint8(): np.uint8,
          pa.float64(): np.float64}


def _validity(values: list[Any]) -> pa.Buffer | None:
    valid = np.fromiter((v is not None for v in values), bool, len(values))
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())


def array(values: list[Any], type_: pa.DataType) -> pa.Array:
    """An Arrow array of `type_` holding `values` (None = null).

    Raises:
        TypeError: a type the format's small tables do not use.
    """
    n = len(values)
    validity = _validity(values)
    if type_ in _NUMPY:
        data = np.fromiter((0 if v is None else v for v in values), _NUMPY[type_], n)
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(data.tobytes())])
    if type_ in (pa.string(), pa.binary(), pa.large_binary()):
        raw = [b"" if v is None else (v.encode() if isinstance(v, str) else bytes(v))
               for v in values]
        offset_type = np.int64 if type_ == pa.large_binary() else np.int32
        offsets = np.zeros(n + 1, offset_type)
        np.cumsum([len(r) for r in raw], out=offsets[1:])
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(offsets.tobytes()),
                                                pa.py_buffer(b"".join(raw))])
    if type_ == pa.bool_():
        bits = np.packbits(np.fromiter((bool(v) for v in values), bool, n), bitorder="little")
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(bits.tobytes())])
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
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum([0 if v is None else len(v) for v in values], out=offsets[1:])
        child = array([x for v in values if v is not None for x in v], type_.value_type)
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(offsets.tobytes())],
                                     children=[child])
    raise TypeError(f"no builder for Arrow type {type_}")


def record_batch(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.RecordBatch:
    """A record batch of `schema` from columns of Python values."""
    return pa.RecordBatch.from_arrays(
        [array(columns[f.name], f.type) for f in schema], schema=schema)
