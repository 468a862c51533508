"""Give freed body buffers back to the system (glibc).

glibc's malloc serves a block above its mmap threshold (128 KiB at first) with its own mapping, which it
unmaps on free. But after such a block is freed it raises the threshold to that block's size (up to
32 MiB), so the next 20 MiB body buffer comes from a thread's heap arena instead, and with one arena per
handler thread those heaps stay resident: 40 bombs left the server at 350 MiB RSS for good. Fixing the
threshold (`mallopt(M_MMAP_THRESHOLD, 256 KiB)`, which also turns the dynamic adjustment off) keeps every
large buffer its own mapping. Elsewhere (musl, macOS) nothing is done.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024

_lock = threading.Lock()
_done: bool | None = None


def keep_large_buffers_unmappable() -> bool:
    """Once per process: fix glibc's mmap threshold; True if it was set."""
    global _done
    with _lock:
        if _done is None:
            _done = False
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
                mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
                mallopt.restype = ctypes.c_int
                _done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            except (OSError, AttributeError):
                pass
        return _done
