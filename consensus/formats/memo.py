"""A memo bounded in bytes, not only in entries (issue 23: flat memory over time).

`functools.lru_cache(maxsize=N)` bounds the number of entries; for text its memory is then
bounded only by N times the longest text (8,192 rendered position versions of 100 KB would
be most of a gigabyte per worker). `bounded_memo` keeps the most recently used results of a
function of text until their keys and results together reach `max_bytes`.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def _size(value: object) -> int:
    if isinstance(value, str | bytes):
        # What it really takes: a str with one non-ASCII character in it takes two or four
        # bytes a character, not one.
        return sys.getsizeof(value)
    if isinstance(value, tuple):
        return 40 + sum(_size(item) for item in value)
    return 64


def bounded_memo(max_bytes: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Memoise a function of hashable arguments, least recently used first out, bounded by
    the size of its arguments and results (text by the memory it takes). A result larger than a
    quarter of the bound is returned but not kept."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        items: OrderedDict[Hashable, tuple[R, int]] = OrderedDict()
        lock = threading.Lock()
        used = 0
        hits = misses = 0

        @functools.wraps(function)
        def memoised(*args: P.args, **kwargs: P.kwargs) -> R:
            nonlocal used, hits, misses
            key: Hashable = (args, tuple(sorted(kwargs.items()))) if kwargs else args
            with lock:
                found = items.get(key)
                if found is not None:
                    items.move_to_end(key)
                    hits += 1
                    return found[0]
                misses += 1
            result = function(*args, **kwargs)
            size = _size(args) + _size(result)
            if size > max_bytes // 4:
                return result
            with lock:
                old = items.pop(key, None)
                if old is not None:
                    used -= old[1]
                items[key] = (result, size)
                used += size
                while used > max_bytes and items:
                    _, (_, dropped) = items.popitem(last=False)
                    used -= dropped
            return result

        def cache_info() -> tuple[int, int]:
            """(entries, bytes) kept now."""
            return len(items), used

        def cache_stats() -> dict[str, int]:
            """Entries and bytes kept now, hits and misses so far (benchmarks/page_memory.py)."""
            return {"entries": len(items), "bytes": used, "hits": hits, "misses": misses}

        def cache_clear() -> None:
            nonlocal used, hits, misses
            with lock:
                items.clear()
                used = hits = misses = 0

        memoised.cache_info = cache_info  # type: ignore[attr-defined]
        memoised.cache_stats = cache_stats  # type: ignore[attr-defined]
        memoised.cache_clear = cache_clear  # type: ignore[attr-defined]
        return memoised

    return decorate
