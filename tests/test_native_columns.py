"""The C helpers that let the record process lay out its Arrow columns without numpy
(recorder.c vm_pack_bits, vm_wide_bits, vm_nonzero_pages) agree with numpy's own."""

from __future__ import annotations

import ctypes

import numpy as np
import pyarrow as pa
import pytest

from tracer import native
from tracer.classify import KERNEL
from tracer.native import nonzero_pages

LENGTHS = [1, 7, 8, 9, 63, 64, 65, 1000]


def _address(array: np.ndarray) -> int:
    return array.ctypes.data_as(ctypes.c_void_p).value


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("density", [0.0, 0.5, 1.0])
def test_pack_bits_is_arrows_bit_layout(n, density):
    flags = (np.random.default_rng(n).random(n) < density).astype(np.uint8)
    out = np.full((n + 7) // 8, 0xAA, np.uint8)  # stale bits must be cleared
    set_ = native.load().vm_pack_bits(_address(flags), n, _address(out))
    assert set_ == int(flags.sum())
    assert out.tobytes() == np.packbits(flags.astype(bool), bitorder="little").tobytes()
    column = pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(out.tobytes())])
    assert column.to_pylist() == flags.astype(bool).tolist()


@pytest.mark.parametrize("n", LENGTHS)
def test_wide_bits_mark_the_16_byte_accesses_of_instructions(n):
    rng = np.random.default_rng(n)
    size = rng.choice(np.array([1, 2, 4, 8, 16, 32], np.uint32), n)
    source = rng.integers(0, 3, n).astype(np.uint8)
    out = np.full((n + 7) // 8, 0xFF, np.uint8)
    set_ = native.load().vm_wide_bits(_address(size), _address(source), n, KERNEL,
                                      _address(out))
    want = (size == 16) & (source != KERNEL)
    assert set_ == int(want.sum())
    assert out.tobytes() == np.packbits(want, bitorder="little").tobytes()


def test_nonzero_pages_finds_every_page_with_a_set_byte():
    page = 4096
    raw = bytearray(page * 9)
    for offset in (0, page * 2 + page - 1, page * 5 + 1234, page * 8 + 8):
        raw[offset] = 1
    want = np.flatnonzero(np.frombuffer(bytes(raw), np.uint8).reshape(-1, page).any(axis=1))
    assert nonzero_pages(raw, page) == want.tolist() == [0, 2, 5, 8]
    assert nonzero_pages(bytearray(page * 3), page) == []
    assert nonzero_pages(bytearray(), page) == []
