"""tracer.format.build makes the same arrays pyarrow's own pa.array would (it exists only to
avoid pa.array's pandas import during recording)."""

import pyarrow as pa
import pytest

from tracer.format.build import array, record_batch
from tracer.format.schema import SYSCALLS

CASES = [
    (pa.uint64(), [0, 2**64 - 1, None, 7]),
    (pa.int64(), [-38, None, 2**62]),
    (pa.int32(), [1, -1, None]),
    (pa.uint32(), [16, 4096]),
    (pa.bool_(), [True, False, None, True, True, False, False, False, True]),
    (pa.string(), ["brk", None, "", "[stack]", "é"]),
    (pa.binary(), [b"\x00\xff", None, b""]),
    (pa.large_binary(), [b"x" * 10, b""]),
    (pa.list_(pa.uint64(), 6), [[1, 2, 3, 4, 5, 6], None, [0] * 6]),
    (pa.dictionary(pa.int8(), pa.string()), ["implicit", "explicit", None, "implicit"]),
]


@pytest.mark.parametrize("type_,values", CASES, ids=[str(t) for t, _ in CASES])
def test_same_values_as_pa_array(type_, values):
    built = array(values, type_)
    assert built.type == type_
    assert built.to_pylist() == values
    built.validate(full=True)


def test_empty_columns_and_a_whole_batch():
    assert len(array([], pa.string())) == 0
    row = {"step": [3], "rip": [0x401000], "nr": [12], "name": ["brk"], "args": [[0] * 6],
           "ret": [None], "detail": [None], "abi": ["x86_64"]}
    batch = record_batch(row, SYSCALLS)
    batch.validate(full=True)
    assert batch.to_pylist()[0]["name"] == "brk" and batch.to_pylist()[0]["ret"] is None
