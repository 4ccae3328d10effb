"""consensus.ops.allocator: large blocks stay in the worker's heap once tuned (glibc)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from consensus.ops import allocator

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


# --- Giving the free heap back, at most once a period ------------------------------------------

TRIM_PROBE = textwrap.dedent(
    """
    from consensus.ops import allocator

    def rss_kib():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    allocator.tune()
    # 12 MiB in 64 KiB blocks: from the heap (under the raised mmap threshold), and kept
    # there when freed (under the 16 MiB trim threshold).
    blocks = [bytearray(64 * 1024) for _ in range(192)]
    held = rss_kib()
    del blocks
    kept = rss_kib()
    allocator.malloc_trim()()
    print(held, kept, rss_kib())
    """
)


@needs_glibc
def test_malloc_trim_gives_the_kept_free_heap_back() -> None:
    result = subprocess.run(
        [sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True, check=True
    )
    held, kept, trimmed = (int(part) for part in result.stdout.split())
    assert kept > held - 2 * 1024  # the tuned heap keeps what was freed…
    assert trimmed < kept - 8 * 1024  # …until it is trimmed


def test_the_periodic_trim_trims_at_most_once_a_period() -> None:
    now = [100.0]
    trims: list[float] = []
    periodic = allocator.PeriodicTrim(lambda: trims.append(now[0]), 1.0, clock=lambda: now[0])
    assert periodic() is True  # the first response trims
    now[0] += 0.4
    assert periodic() is False
    now[0] += 0.5
    assert periodic() is False
    now[0] += 0.2  # 1.1 s after the first
    assert periodic() is True
    assert trims == pytest.approx([100.0, 101.1])


def test_a_worker_trims_after_the_response_is_sent() -> None:
    from flask import Flask

    app = Flask("probe")
    sent: list[str] = []
    trims: list[list[str]] = []

    @app.get("/")
    def page() -> str:
        return "page"

    # A period far longer than the test, however slow the machine.
    periodic = allocator.install_periodic_trim(app, lambda: trims.append(list(sent)), seconds=3600)
    assert periodic is not None
    client = app.test_client()
    for _ in range(3):
        response = client.get("/")
        sent.append(response.get_data(as_text=True))
        response.close()
    # Once (the next two came within the period), and only after the first page was sent.
    assert trims == [["page"]]


def test_no_trim_when_the_tuning_is_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSENSUS_TUNE_MALLOC", "false")
    assert allocator.malloc_trim() is None
