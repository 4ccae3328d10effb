"""Time RFC 9162 leaf hashing and root computation over synthetic audit-log entries.

Usage: python benchmarks/merkle_bench.py [number_of_entries]   (default 1,000,000)
"""

from __future__ import annotations

import sys
import time

from consensus.crypto.merkle import MemoryTree, leaf_hash, root


def synthetic_entries(count: int) -> list[bytes]:
    """~200-byte canonical-JSON-like events, all distinct."""
    template = (
        '{{"seq":{i},"actor":"user-{a}","action":"position.endorse",'
        '"object":"position/{o}","result":"ok","origin":"203.0.113.{b}",'
        '"at":"2025-01-01T12:{m:02d}:{s:02d}Z","prev":"{p:040x}"}}'
    )
    return [
        template.format(
            i=i, a=i % 997, o=i % 4999, b=i % 250, m=i // 60 % 60, s=i % 60, p=i * 2654435761
        ).encode()
        for i in range(count)
    ]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    entries = synthetic_entries(count)
    average = sum(map(len, entries)) / count
    print(f"{count:,} entries, {average:.0f} bytes on average")

    started = time.perf_counter()
    leaves = [leaf_hash(e) for e in entries]
    hashing = time.perf_counter() - started
    print(f"leaf hashing:     {hashing:6.2f} s  {count / hashing:12,.0f} events/s")

    started = time.perf_counter()
    head = root(leaves)
    rooting = time.perf_counter() - started
    print(f"root computation: {rooting:6.2f} s  {count / rooting:12,.0f} events/s")
    total = hashing + rooting
    print(f"both:             {total:6.2f} s  {count / total:12,.0f} events/s  root {head.hex()}")

    sample = min(count, 100_000)
    tree = MemoryTree()
    started = time.perf_counter()
    for leaf in leaves[:sample]:
        tree.append_leaf_hash(leaf)
    appending = time.perf_counter() - started
    assert tree.root() == root(leaves[:sample])
    print(
        f"incremental append ({sample:,} leaves, stored nodes): "
        f"{appending:6.2f} s  {sample / appending:12,.0f} events/s"
    )


if __name__ == "__main__":
    main()
