"""consensus.ops.allocator: large blocks stay in the worker's heap once tuned (glibc)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# Run in a fresh interpreter: the thresholds are per process and the test process's own heap
# history would blur the count of mmapped blocks.
PROBE = textwrap.dedent(
    """
    import ctypes, sys

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2

    def new_mappings(mib):
        # Mappings made for a block of `mib` MiB while it is held; the heap kept after.
        mapped = libc.mallinfo2().hblks
        block = bytearray(mib * 1024 * 1024)
        mapped, heap = libc.mallinfo2().hblks - mapped, libc.mallinfo2().arena
        del block
        return mapped, libc.mallinfo2().arena >= heap

    before, _ = new_mappings(4)
    from consensus.ops import allocator
    tuned = allocator.tune()
    # Larger than anything freed so far: glibc's own sliding threshold cannot have covered it.
    after, kept = new_mappings(6)
    print(int(tuned), before, after, int(kept))
    """
)


def _probe(**env: str) -> tuple[int, ...]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return tuple(int(part) for part in result.stdout.split())


def _glibc() -> bool:
    import ctypes

    try:
        ctypes.CDLL(None).mallinfo2  # noqa: B018
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith("linux")


needs_glibc = pytest.mark.skipif(not _glibc(), reason="glibc's malloc (Linux) is not in use")


@needs_glibc
def test_a_tuned_process_keeps_large_blocks_in_its_heap() -> None:
    tuned, before, after, kept = _probe()
    assert tuned == 1
    assert before == 1  # untuned: a 4 MiB block is a fresh mapping from the kernel
    assert after == 0  # tuned: a 6 MiB block comes from the heap…
    assert kept == 1  # …and the heap keeps the space when it is freed (no trim)


@needs_glibc
def test_the_tuning_can_be_switched_off() -> None:
    tuned, before, after, kept = _probe(CONSENSUS_TUNE_MALLOC="false")
    assert tuned == 0
    assert (before, after) == (1, 1)
