"""Keep the C allocator from returning large blocks to the kernel after every request.

Long pages are built from strings of several hundred kilobytes (a version page with its
comment thread, the tally, the board download). glibc's malloc serves blocks above its
mmap threshold (128 KiB to start with) with a fresh `mmap` and gives them back with `munmap`
when they are freed, and it trims the top of the heap as soon as more than the trim threshold
is free. A worker that renders such a page every few milliseconds then pays for the kernel to
hand out and zero the same pages again and again: measured here, copying a 400 KB string
took 0.9 ms instead of 0.07 ms and encoding it to UTF-8 0.6 ms instead of 0.3 ms (issue 9).

`tune()` raises both thresholds once per process, so such blocks come from and go back to
the worker's own heap. The worker keeps up to `TRIM_THRESHOLD` of free heap instead of
returning it at once; the peak a worker reaches is unchanged, as it is the same requests
that allocate. Elsewhere than glibc (musl, macOS) there is no `mallopt` and nothing happens.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt() parameters from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 16 * 1024 * 1024
# Free heap kept at its top before it goes back to the kernel: the largest page's transient
# blocks (the board download's miss: about 8 MiB) fit; 64 MiB, as before issue 23, let every
# worker keep up to 64 MiB it no longer used (peak RSS per worker, issue 23).
TRIM_THRESHOLD = 16 * 1024 * 1024


def tune() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when it took effect.

    Set CONSENSUS_TUNE_MALLOC=false to leave the allocator as it is (to compare, say).
    """
    if os.environ.get("CONSENSUS_TUNE_MALLOC", "true").strip().lower() in {"0", "false", "no"}:
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success. Setting the mmap threshold also ends glibc's dynamic
    # adjustment of both thresholds, so the values stay as set.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
