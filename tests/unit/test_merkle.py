"""RFC 9162 Merkle tree: known answers, pymerkle as an independent oracle, and properties."""

from __future__ import annotations

import hashlib
import random
from functools import cache
from pathlib import Path

import pymerkle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.crypto import merkle
from consensus.crypto.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    nodes_completed_by_append,
    root,
    root_from_nodes,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

# Certificate Transparency's reference inputs and results (RFC 6962 test data, also used by
# other RFC 6962/9162 implementations).
CT_ENTRIES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CT_CONSISTENCY = [
    (
        2,
        8,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

BIG = 2100  # leaves in the shared tree used by property tests


def entry(i: int) -> bytes:
    return f"entry {i}".encode() * (1 + i % 3)


@cache
def big() -> tuple[MemoryTree, list[bytes], list[bytes]]:
    """A tree of BIG leaves, its leaf hashes and its root at every size (built once)."""
    tree = MemoryTree([entry(i) for i in range(BIG)])
    leaves = [leaf_hash(entry(i)) for i in range(BIG)]
    return tree, leaves, [tree.root(n) for n in range(BIG + 1)]


@cache
def oracle(size: int) -> pymerkle.InmemoryTree:
    # security mode (the default) adds the 0x00 / 0x01 prefixes of RFC 6962 / 9162.
    return pymerkle.InmemoryTree.init_from_entries([entry(i) for i in range(size)])


# --- literal transcription of RFC 9162's recursive definitions, as a reference ----------


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return leaf_hash(d[0])
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


# --- known answers ------------------------------------------------------------------------


def test_leaf_and_node_hash_prefixes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )


def test_ct_reference_roots() -> None:
    leaves = [leaf_hash(e) for e in CT_ENTRIES]
    tree = MemoryTree(CT_ENTRIES)
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    for n in range(len(CT_ENTRIES) + 1):
        assert root(leaves[:n]).hex() == CT_ROOTS[n]
        assert tree.root(n).hex() == CT_ROOTS[n]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_ct_reference_inclusion(index: int, size: int, expected: list[str]) -> None:
    tree = MemoryTree(CT_ENTRIES)
    proof = tree.inclusion_proof(index, size)
    assert [p.hex() for p in proof] == expected
    leaf = leaf_hash(CT_ENTRIES[index])
    assert verify_inclusion(leaf, index, size, proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "expected"), CT_CONSISTENCY)
def test_ct_reference_consistency(old: int, new: int, expected: list[str]) -> None:
    tree = MemoryTree(CT_ENTRIES)
    proof = tree.consistency_proof(old, new)
    assert [p.hex() for p in proof] == expected
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old, new, old_root, new_root, proof)


# --- pymerkle as an independent implementation --------------------------------------------


def test_roots_match_pymerkle_for_sizes_1_to_130() -> None:
    tree, leaves, roots = big()
    reference = oracle(130)
    for n in range(1, 131):
        expected = reference.get_root(n)
        assert root(leaves[:n]) == expected, n
        assert roots[n] == expected, n


@pytest.mark.parametrize("size", [255, 256, 257, 1000, 1023, 1024, 1025, 1537, 2049, BIG])
def test_roots_match_pymerkle_for_larger_sizes(size: int) -> None:
    _, leaves, roots = big()
    assert root(leaves[:size]) == roots[size] == oracle(size).get_root()


def test_random_large_sizes_match_pymerkle() -> None:
    rng = random.Random(9162)
    for size in rng.sample(range(131, 5000), 3):
        entries = [rng.randbytes(rng.randrange(1, 300)) for _ in range(size)]
        expected = pymerkle.InmemoryTree.init_from_entries(entries).get_root()
        assert root([leaf_hash(e) for e in entries]) == expected
        assert MemoryTree(entries).root() == expected


def test_inclusion_proofs_equal_pymerkle_paths() -> None:
    tree, leaves, roots = big()
    reference = oracle(130)
    for n in range(1, 131):
        for i in range(n):
            proof = tree.inclusion_proof(i, n)
            theirs = reference.prove_inclusion(i + 1, n)  # pymerkle counts leaves from 1
            # pymerkle's path starts with the leaf itself, then RFC 9162's audit path.
            assert theirs.path == [leaves[i], *proof], (i, n)
            pymerkle.verify_inclusion(leaves[i], roots[n], theirs)
            assert verify_inclusion(leaves[i], i, n, proof, roots[n])


def test_consistency_proofs_against_pymerkle_and_rfc_reference() -> None:
    """pymerkle's consistency proofs use a layout of their own (not the RFC's PROOF), so they are
    checked against our roots, and our proofs against a literal transcription of the RFC."""
    tree, _, roots = big()
    reference = oracle(70)
    entries = [entry(i) for i in range(70)]
    for n in range(1, 71):
        for m in range(1, n + 1):
            pymerkle.verify_consistency(roots[m], roots[n], reference.prove_consistency(m, n))
            proof = tree.consistency_proof(m, n)
            assert proof == ref_subproof(m, entries[:n], True), (m, n)
            assert verify_consistency(m, n, roots[m], roots[n], proof), (m, n)


def test_inclusion_proofs_match_rfc_reference() -> None:
    tree, _, _ = big()
    entries = [entry(i) for i in range(40)]
    for n in range(1, 41):
        assert tree.root(n) == ref_mth(entries[:n])
        for i in range(n):
            assert tree.inclusion_proof(i, n) == ref_path(i, entries[:n])


# --- stored complete nodes ----------------------------------------------------------------


def test_append_stores_each_node_once_and_reads_few() -> None:
    store: dict[tuple[int, int], bytes] = {}
    reads: list[tuple[int, int]] = []

    def get_node(level: int, index: int) -> bytes:
        reads.append((level, index))
        return store[level, index]

    _, leaves, roots = big()
    for n in range(300):
        reads.clear()
        completed = nodes_completed_by_append(n, leaves[n], get_node)
        assert [(lv, ix) for lv, ix, _ in completed] == [
            (lv, n >> lv) for lv in range(len(completed))
        ]
        assert len(completed) == 1 + ((n + 1) & -(n + 1)).bit_length() - 1
        assert len(reads) == len(completed) - 1
        for lv, ix, digest in completed:
            assert (lv, ix) not in store
            store[lv, ix] = digest
        reads.clear()
        assert root_from_nodes(n + 1, get_node) == roots[n + 1]
        assert len(reads) == (n + 1).bit_count()  # one stored node per perfect subtree


def test_subtree_hash_rejects_ranges_that_are_not_subtrees() -> None:
    tree, leaves, _ = big()
    assert subtree_hash(4, 10, tree.get_node) == root(leaves[4:10])
    assert subtree_hash(8, 20, tree.get_node) == root(leaves[8:20])
    for start, end in [(1, 3), (2, 6), (3, 3), (5, 4), (8, 25)]:
        with pytest.raises(ValueError):
            subtree_hash(start, end, tree.get_node)


def test_proof_arguments_are_checked() -> None:
    tree, _, _ = big()
    with pytest.raises(ValueError):
        inclusion_proof(5, 5, tree.get_node)
    with pytest.raises(ValueError):
        inclusion_proof(-1, 5, tree.get_node)
    with pytest.raises(ValueError):
        consistency_proof(6, 5, tree.get_node)
    with pytest.raises(ValueError):
        tree.root(BIG + 1)
    assert consistency_proof(0, 5, tree.get_node) == []
    assert consistency_proof(5, 5, tree.get_node) == []
    assert MemoryTree().root() == EMPTY_ROOT


def test_degenerate_consistency_cases() -> None:
    _, _, roots = big()
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 8, EMPTY_ROOT, roots[8], [])
    assert not verify_consistency(0, 8, roots[1], roots[8], [])
    assert not verify_consistency(0, 8, EMPTY_ROOT, roots[8], [roots[1]])
    assert verify_consistency(4, 4, roots[4], roots[4], [])
    assert not verify_consistency(4, 4, roots[4], roots[5], [])
    assert not verify_consistency(4, 4, roots[4], roots[4], [roots[4]])
    assert not verify_consistency(3, 8, roots[3], roots[8], [])
    assert not verify_consistency(8, 3, roots[8], roots[3], [])


def test_malformed_hashes_fail_verification() -> None:
    tree, leaves, roots = big()
    proof = tree.inclusion_proof(5, 8)
    assert not verify_inclusion(leaves[5][:31], 5, 8, proof, roots[8])
    assert not verify_inclusion(leaves[5], 5, 8, proof, roots[8] + b"\x00")
    assert not verify_inclusion(leaves[5], 5, 8, [proof[0][:31], *proof[1:]], roots[8])
    cproof = tree.consistency_proof(6, 8)
    assert not verify_consistency(6, 8, roots[6][:31], roots[8], cproof)
    assert not verify_consistency(6, 8, roots[6], roots[8], [b"x" * 33, *cproof[1:]])


def test_module_has_no_dependencies_beyond_stdlib() -> None:
    source = Path(merkle.__file__).read_text(encoding="utf-8")
    imports = {
        line.split()[1] for line in source.splitlines() if line.startswith(("import", "from"))
    }
    assert imports <= {"__future__", "hashlib", "collections.abc", "hmac"}


# --- properties ---------------------------------------------------------------------------

sizes_and_index = st.integers(1, BIG).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n - 1))
)
old_and_new = st.integers(1, BIG).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n)))


def flip(data: bytes, position: int) -> bytes:
    position %= len(data)
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


@settings(max_examples=150, deadline=None)
@given(sizes_and_index, st.integers(0, 10_000), st.integers(0, 31))
def test_inclusion_property(size_index: tuple[int, int], pick: int, byte: int) -> None:
    size, index = size_index
    tree, leaves, roots = big()
    proof = tree.inclusion_proof(index, size)
    assert len(proof) <= (size - 1).bit_length()
    assert verify_inclusion(leaves[index], index, size, proof, roots[size])
    other = (index + 1 + pick % max(1, size - 1)) % size
    assert not verify_inclusion(flip(leaves[index], byte), index, size, proof, roots[size])
    assert not verify_inclusion(leaves[index], index, size, proof, flip(roots[size], byte))
    if other != index:
        assert not verify_inclusion(leaves[other], index, size, proof, roots[size])
        assert not verify_inclusion(leaves[index], other, size, proof, roots[size])
    if proof:
        at = pick % len(proof)
        tampered = [*proof[:at], flip(proof[at], byte), *proof[at + 1 :]]
        assert not verify_inclusion(leaves[index], index, size, tampered, roots[size])
        assert not verify_inclusion(leaves[index], index, size, proof[:-1], roots[size])
    assert not verify_inclusion(leaves[index], index, size, [*proof, leaves[0]], roots[size])


@settings(max_examples=150, deadline=None)
@given(old_and_new, st.integers(0, 10_000), st.integers(0, 31))
def test_consistency_property(old_new: tuple[int, int], pick: int, byte: int) -> None:
    old, new = old_new
    tree, _, roots = big()
    proof = tree.consistency_proof(old, new)
    assert verify_consistency(old, new, roots[old], roots[new], proof)
    assert not verify_consistency(old, new, flip(roots[old], byte), roots[new], proof)
    assert not verify_consistency(old, new, roots[old], flip(roots[new], byte), proof)
    if old < new:
        # The old root of another size is not consistent with this proof either.
        wrong = 1 + (old + pick) % new
        if roots[wrong] != roots[old]:
            assert not verify_consistency(old, new, roots[wrong], roots[new], proof)
        at = pick % len(proof)
        tampered = [*proof[:at], flip(proof[at], byte), *proof[at + 1 :]]
        assert not verify_consistency(old, new, roots[old], roots[new], tampered)
        assert not verify_consistency(old, new, roots[old], roots[new], proof[:-1])
        assert not verify_consistency(old, new, roots[old], roots[new], [*proof, roots[1]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=70))
def test_incremental_tree_equals_batch_root(entries: list[bytes]) -> None:
    tree = MemoryTree()
    for i, e in enumerate(entries):
        assert tree.append(e) == i
    assert tree.root() == root([leaf_hash(e) for e in entries]) == ref_mth(entries)


def test_proof_length_must_match_the_sizes() -> None:
    """Proofs that hash to the given root but are too long or too short for the claimed sizes
    (the sn checks of RFC 9162 §2.1.3.2 / §2.1.4.2) are rejected."""
    tree, leaves, roots = big()
    l0, l1 = leaves[0], leaves[1]
    assert not verify_inclusion(l0, 0, 4, [l1], node_hash(l0, l1))  # too short for size 4
    assert not verify_inclusion(l0, 0, 1, [l1], node_hash(l1, l0))  # too long for size 1
    assert not verify_consistency(2, 8, roots[2], roots[4], tree.consistency_proof(2, 4))
    x = leaves[9]
    extended = [*tree.consistency_proof(3, 4), x]
    assert not verify_consistency(3, 4, node_hash(x, roots[3]), node_hash(x, roots[4]), extended)
