"""Builds and loads the C hot path (recorder.c) against the unicorn wheel's own headers and library.

The shared library is compiled with the system C compiler the first time it is needed (or by
`make`), into the package folder when writable, else into ~/.cache/vmtrace.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from tracer.errors import TracerError

_SOURCE = Path(__file__).with_name("recorder.c")


class NativeBuildError(TracerError):
    """The C recorder could not be compiled."""


def _unicorn_dirs() -> tuple[Path, Path]:
    import unicorn

    root = Path(unicorn.__file__).parent
    return root / "include", root / "lib"


def _library_path() -> Path:
    digest = hashlib.sha256(_SOURCE.read_bytes()).hexdigest()[:12]
    name = f"_vmtrace_recorder_{digest}.so"
    here = _SOURCE.parent
    if os.access(here, os.W_OK):
        return here / name
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vmtrace"
    cache.mkdir(parents=True, exist_ok=True)
    return cache / name


def build(force: bool = False) -> Path:
    """Compiles recorder.c if its current build is missing.

    Returns:
        The path of the shared library.

    Raises:
        NativeBuildError: no C compiler, or the compile failed.
    """
    target = _library_path()
    if target.exists() and not force:
        return target
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise NativeBuildError("no C compiler found (install gcc) to build vmtrace's recorder")
    include, lib = _unicorn_dirs()
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    cmd = [compiler, "-O2", "-shared", "-fPIC", "-pthread", f"-I{include}", str(_SOURCE),
           "-o", str(tmp), f"-L{lib}", "-l:libunicorn.so.2", f"-Wl,-rpath,{lib}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise NativeBuildError(f"building the native recorder failed:\n{done.stderr.strip()}")
    os.replace(tmp, target)
    for stale in target.parent.glob("_vmtrace_recorder_*.so"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


class Chunk(ctypes.Structure):
    """Mirror of `struct chunk` in recorder.c (field order matters)."""


_u64p = ctypes.POINTER(ctypes.c_uint64)
_u32p = ctypes.POINTER(ctypes.c_uint32)
_u8p = ctypes.POINTER(ctypes.c_uint8)
Chunk._fields_ = [
    ("acc_step", _u64p), ("acc_rip", _u64p), ("acc_addr", _u64p), ("acc_value", _u64p),
    ("acc_value_hi", _u64p), ("acc_size", _u32p), ("acc_write", _u8p), ("acc_source", _u8p),
    ("acc_has_value", _u8p), ("n_acc", ctypes.c_uint64), ("cap_acc", ctypes.c_uint64),
    ("rsp_step", _u64p), ("rsp_rip", _u64p), ("rsp_old", _u64p), ("rsp_new", _u64p),
    ("rsp_cause", _u8p), ("n_rsp", ctypes.c_uint64), ("cap_rsp", ctypes.c_uint64),
    ("first_step", ctypes.c_uint64), ("last_step", ctypes.c_uint64),
    ("next", ctypes.c_void_p),
]

class MemOperand(ctypes.Structure):
    """Mirror of `mem_operand` in recorder.c: an alignment-checked memory operand."""

    _fields_ = [("disp", ctypes.c_uint64), ("base", ctypes.c_int32), ("index", ctypes.c_int32),
                ("seg_base", ctypes.c_int32), ("scale", ctypes.c_uint32),
                ("align", ctypes.c_uint32), ("write", ctypes.c_uint32),
                ("addr32", ctypes.c_uint32)]


# uint32_t classify(uint64_t rip, const uint8_t *code, uint32_t len, mem_operand *op): called
# once per new instruction address; see the flag layout in recorder.c.
CLASSIFY_FN = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint8),
                               ctypes.c_uint32, ctypes.POINTER(MemOperand))

# uint32_t decode(uint64_t addr, const uint8_t *code, uint32_t len, uint32_t *offsets,
# uint32_t *flags, uint32_t cap): the fast recorder's block decoder (recorder.c `discover`):
# each instruction's offset and classifier flags, and how many; 0 when it cannot.
DECODE_FN = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint8),
                             ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32),
                             ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32)

_lib: ctypes.CDLL | None = None


def load() -> ctypes.CDLL:
    """Returns the loaded native recorder, building it first if needed."""
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(str(build()))
    vp, u64, i = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int
    chunk_p = ctypes.POINTER(Chunk)
    sigs = {
        "vm_new": (vp, [vp, u64, u64, i, u64, u64, CLASSIFY_FN]),
        "vm_install": (i, [vp]),
        "vm_new_blocks": (vp, [vp, u64, u64, i, u64, u64, CLASSIFY_FN, DECODE_FN]),
        "vm_install_blocks": (i, [vp]),
        "vm_fast": (vp, [vp]),
        "vm_misattributed": (u64, [vp]),
        "vm_uninstall": (i, [vp]),
        "vm_append_kernel": (None, [vp, u64, u64, i, u64, i]),
        "vm_check_rsp": (None, [vp, u64]),
        "vm_discard_current": (None, [vp]),
        "vm_step": (u64, [vp]),
        "vm_steps": (u64, [vp]),
        "vm_stop_reason": (i, [vp]),
        "vm_request_stop": (None, [vp]),
        "vm_stop_rip": (u64, [vp]),
        "vm_stop_fault": (i, [vp]),
        "vm_stop_address": (u64, [vp]),
        "vm_stop_write": (i, [vp]),
        "vm_set_stack": (None, [vp, u64, u64]),
        "vm_take_growth": (u64, [vp, _u64p, _u64p, u64]),
        "vm_growth_pending": (u64, [vp]),
        "vm_stepper_size": (u64, []),
        "vm_stepper_init": (i, [vp, vp]),
        "vm_stepper_reset": (None, [vp, u64]),
        "vm_stepper_steps": (u64, [vp]),
        "vm_total_accesses": (u64, [vp]),
        "vm_total_rsp": (u64, [vp]),
        "vm_count_by_kind": (u64, [vp, i, i]),
        "vm_lowest_rsp": (u64, [vp]),
        "vm_close": (None, [vp]),
        "vm_take": (chunk_p, [vp]),
        "vm_chunk_free": (None, [chunk_p]),
        "vm_release": (None, [vp, chunk_p]),
        "vm_exec_count_size": (u64, [vp]),
        "vm_exec_counts": (u64, [vp, _u64p, _u64p, u64]),
        "vm_free": (None, [vp]),
        "fr_new": (vp, [vp, u64, DECODE_FN, CLASSIFY_FN]),
        "fr_install": (i, [vp]),
        "fr_uninstall": (None, [vp]),
        "fr_apply": (i, [vp]),
        "fr_step_at": (u64, [vp, u64]),
        "fr_started": (u64, [vp, u64]),
        "fr_rewind": (None, [vp, u64]),
        "fr_invalidate": (None, [vp, u64, u64]),
        "fr_steps": (u64, [vp]),
        "fr_pending": (i, [vp]),
        "fr_set_next_keyframe": (None, [vp, u64]),
        "fr_request_stop": (None, [vp]),
        "fr_stop_reason": (i, [vp]),
        "fr_stop_rip": (u64, [vp]),
        "fr_stop_fault": (i, [vp]),
        "fr_stop_address": (u64, [vp]),
        "fr_stop_write": (i, [vp]),
        "fr_exact_pages": (u64, [vp]),
        "fr_free": (None, [vp]),
        "vm_split": (None, [vp, u64, vp, vp]),
        "vm_pack_bits": (u64, [vp, u64, vp]),
        "vm_wide_bits": (u64, [vp, vp, u64, ctypes.c_uint8, vp]),
        "vm_nonzero_pages": (u64, [vp, u64, u64, vp]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    _lib = lib
    return lib


def nonzero_pages(raw: bytearray, page: int) -> list[int]:
    """The indices of the pages of `raw` (a memory region's bytes, a whole number of pages)
    that hold a non-zero byte: what a keyframe stores (in C, so that no array library is
    needed)."""
    count = len(raw) // page
    if not count:
        return []
    out = (ctypes.c_uint64 * count)()
    found = load().vm_nonzero_pages((ctypes.c_char * len(raw)).from_buffer(raw), len(raw),
                                    page, out)
    return out[:found]
