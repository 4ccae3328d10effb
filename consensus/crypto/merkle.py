"""RFC 9162 §2.1 Merkle tree hashing, proofs and their verification.

Written by hand on hashlib so that anyone auditing the log can read all of it. A node
(level, index) is the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level);
only such complete nodes are ever stored, because they never change once complete. Every
range that the RFC's recursion asks for decomposes into a few of them, so appends cost
O(log n) and proofs need no full recomputation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from hmac import compare_digest

NodeGetter = Callable[[int, int], bytes]
"""get_node(level, index) -> hash of a stored complete subtree."""

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 ‖ entry): the prefix keeps a leaf from posing as an interior node."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2): the RFC's split point."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a whole list, level by level; an odd last node is carried up unchanged,
    which yields exactly the RFC's left-balanced tree without recursion."""
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = list(map(node_hash, level[0:-1:2], level[1::2]))
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def nodes_completed_by_append(
    size_before: int, new_leaf_hash: bytes, get_node: NodeGetter
) -> list[tuple[int, int, bytes]]:
    """(level, index, hash) of the nodes that become complete when leaf number size_before
    (0-based) is appended, level 0 first: the caller stores them and never touches them again.
    """
    level, index, current = 0, size_before, new_leaf_hash
    completed = [(level, index, current)]
    while index % 2 == 1:
        current = node_hash(get_node(level, index - 1), current)
        level, index = level + 1, index // 2
        completed.append((level, index, current))
    return completed


def subtree_hash(start: int, end: int, get_node: NodeGetter) -> bytes:
    """MTH(D[start:end]) from stored nodes, for any range that the RFC's recursion produces.

    Such a range starts on a multiple of its largest power-of-two part, so it splits into
    perfect subtrees of decreasing size (one per bit of its width); the right edge is
    folded from the right, as MTH does.
    """
    width = end - start
    if width <= 0:
        raise ValueError(f"empty or inverted range [{start}, {end})")
    if start % (1 << (width.bit_length() - 1)):
        raise ValueError(f"range [{start}, {end}) is not a Merkle subtree")
    parts: list[bytes] = []
    offset = start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            parts.append(get_node(level, offset >> level))
            offset += 1 << level
    result = parts.pop()
    while parts:
        result = node_hash(parts.pop(), result)
    return result


def root_from_nodes(size: int, get_node: NodeGetter) -> bytes:
    """MTH of the first `size` leaves: at most log2(size) stored nodes are read."""
    return EMPTY_ROOT if size == 0 else subtree_hash(0, size, get_node)


def inclusion_proof(index: int, size: int, get_node: NodeGetter) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf-side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    start, end, path = 0, size, []
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree_hash(start + k, end, get_node))
            end = start + k
        else:
            path.append(subtree_hash(start, start + k, get_node))
            start += k
    return path[::-1]


def consistency_proof(old_size: int, new_size: int, get_node: NodeGetter) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1; empty when there is nothing to
    prove (old_size 0 or equal sizes)."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    start, m, n, whole_old_tree = 0, old_size, new_size, True
    path = []
    while m != n:
        k = _split(n)
        if m <= k:
            path.append(subtree_hash(start + k, start + n, get_node))
            n = k
        else:
            path.append(subtree_hash(start, start + k, get_node))
            start, m, n, whole_old_tree = start + k, m - k, n - k, False
    if not whole_old_tree:
        path.append(subtree_hash(start, start + n, get_node))
    return path[::-1]


def _well_formed(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: True only if `proof` shows leaf `index` of a `size`-leaf tree."""
    if not (0 <= index < size and _well_formed(leaf_hash, root, *proof)):
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and compare_digest(r, root)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: True only if the old tree is a prefix of the new one."""
    if not (0 <= old_size <= new_size and _well_formed(old_root, new_root, *proof)):
        return False
    if old_size == 0:
        return not proof and compare_digest(old_root, EMPTY_ROOT)
    if old_size == new_size:
        return not proof and compare_digest(old_root, new_root)
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and compare_digest(fr, old_root) and compare_digest(sr, new_root)


class MemoryTree:
    """All complete nodes in lists, for tests and for callers holding every leaf in memory.

    Proofs and roots are available for any earlier size too, since complete nodes never change.
    """

    def __init__(self, entries: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = []
        for entry in entries:
            self.append(entry)

    @property
    def size(self) -> int:
        return len(self._levels[0]) if self._levels else 0

    def get_node(self, level: int, index: int) -> bytes:
        return self._levels[level][index]

    def append(self, entry: bytes) -> int:
        """Add an entry; returns its 0-based leaf index."""
        return self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, leaf: bytes) -> int:
        index = self.size
        for level, _, digest in nodes_completed_by_append(index, leaf, self.get_node):
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(digest)
        return index

    def root(self, size: int | None = None) -> bytes:
        return root_from_nodes(self._size(size), self.get_node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self._size(size), self.get_node)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return consistency_proof(old_size, self._size(new_size), self.get_node)

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is beyond the tree's {self.size} leaves")
        return size
