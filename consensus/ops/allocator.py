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
returning it at once. Elsewhere than glibc (musl, macOS) there is no `mallopt` and nothing
happens.

What the heap keeps free is scattered between live blocks, though, and the next page's
blocks do not always fit in those holes: a worker's resident memory then creeps up page by
page (about 2 MiB over the benchmark's pages, issue 23). `PeriodicTrim` gives the free
pages back to the kernel (`malloc_trim`) at most once every `TRIM_EVERY_SECONDS`, after a
response has been sent (`install_periodic_trim`, used by consensus.wsgi): a fraction of a
millisecond a second, while every request in between keeps the heap as tuned.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask, Response

# mallopt() parameters from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 16 * 1024 * 1024
# Free heap kept at its top before it goes back to the kernel: the largest page's transient
# blocks (the board download's miss: about 8 MiB) fit; 64 MiB, as before issue 23, let every
# worker keep up to 64 MiB it no longer used (peak RSS per worker, issue 23).
TRIM_THRESHOLD = 16 * 1024 * 1024
# At most this often a worker gives its free heap back to the kernel (PeriodicTrim).
TRIM_EVERY_SECONDS = 1.0


def _enabled() -> bool:
    """CONSENSUS_TUNE_MALLOC=false leaves the allocator as it is (to compare, say)."""
    setting = os.environ.get("CONSENSUS_TUNE_MALLOC", "true").strip().lower()
    return setting not in {"0", "false", "no"} and sys.platform.startswith("linux")


def _glibc(name: str, *argtypes: type) -> Any | None:
    """glibc's function `name` with its C signature (returning an int), or None where the
    tuning is switched off or there is no glibc (musl, macOS: nothing to tune or trim)."""
    if not _enabled():
        return None
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function


def tune() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when it took effect.

    Set CONSENSUS_TUNE_MALLOC=false to leave the allocator as it is (to compare, say).
    """
    mallopt = _glibc("mallopt", ctypes.c_int, ctypes.c_int)
    if mallopt is None:
        return False
    # mallopt returns 1 on success. Setting the mmap threshold also ends glibc's dynamic
    # adjustment of both thresholds, so the values stay as set.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)` (every arena's free pages back to the kernel), or None where
    there is no glibc or the tuning is switched off."""
    trim = _glibc("malloc_trim", ctypes.c_size_t)
    return None if trim is None else lambda: trim(0)


class PeriodicTrim:
    """Calls `trim` at most once every `seconds` (the first call trims)."""

    def __init__(
        self,
        trim: Callable[[], object],
        seconds: float = TRIM_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trim, self.seconds, self.clock = trim, seconds, clock
        self.last: float | None = None

    def __call__(self) -> bool:
        now = self.clock()
        if self.last is not None and now - self.last < self.seconds:
            return False
        # Set before trimming: the worker's other thread finishing a response now skips.
        self.last = now
        self.trim()
        return True


def install_periodic_trim(
    app: Flask,
    trim: Callable[[], object] | None = None,
    seconds: float = TRIM_EVERY_SECONDS,
) -> PeriodicTrim | None:
    """After each response is sent (its close), trim the heap if a period has passed.
    Returns the trimmer, or None where there is nothing to trim with."""
    trim = trim or malloc_trim()
    if trim is None:
        return None
    periodic = PeriodicTrim(trim, seconds)

    @app.after_request
    def trim_after_sending(response: Response) -> Response:
        response.call_on_close(periodic)
        return response

    return periodic
