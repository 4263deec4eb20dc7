"""The block decoder the native step counter calls once per new translated block
(recorder.c `discover`): each instruction's offset and classifier flags."""

from __future__ import annotations

import ctypes

from capstone import CS_ARCH_X86, CS_MODE_64, Cs

from tracer import native
from tracer.classify import InstructionClassifier


def block_decoder(classifier: InstructionClassifier) -> native.DECODE_FN:
    """A C-callable decoder; keep a reference to it for as long as the engine may run."""
    lengths = Cs(CS_ARCH_X86, CS_MODE_64)

    def decode(addr: int, code, length: int, offsets, flags, cap: int) -> int:
        try:
            data = ctypes.string_at(code, length)
            n = pos = 0
            for _address, size, _mnemonic, _ops in lengths.disasm_lite(data, addr):
                if n >= cap:
                    return 0
                offsets[n] = pos
                flags[n] = classifier.classify(addr + pos, data[pos:pos + 16])[0]
                n += 1
                pos += size
            return n if pos == length else 0  # 0: the exact path decides
        except Exception:  # noqa: BLE001 - any doubt takes the exact path
            return 0

    return native.DECODE_FN(decode)
