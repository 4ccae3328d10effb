"""Encryption at rest of private keys under a key-encryption key."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.crypto.keystore import (
    KEK_FILENAME,
    KeystoreError,
    generate_kek,
    load_kek,
    new_ed25519_sealed,
    open_ed25519,
    seal,
    unseal,
)

KEK = bytes(range(32))
AD = b"org-signing-key:42"


def test_kek_from_value_with_or_without_padding(tmp_path: Path) -> None:
    text = base64.urlsafe_b64encode(KEK).decode()
    assert text.endswith("=")
    assert load_kek(text, str(tmp_path)) == KEK
    assert load_kek(text.rstrip("=") + "\n", str(tmp_path)) == KEK
    assert not (tmp_path / KEK_FILENAME).exists()  # a given value never touches the file


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "not urlsafe base64"),
        ("   ", "not urlsafe base64"),
        ("not base64 at all!", "not urlsafe base64"),
        (base64.b64encode(b"\xfb" * 32).decode(), "not urlsafe base64"),  # '+' and '/'
        (base64.urlsafe_b64encode(b"k" * 16).decode(), "32 bytes, not 16"),
        (base64.urlsafe_b64encode(b"k" * 33).decode(), "32 bytes, not 33"),
        (KEK.hex(), "32 bytes, not 48"),
    ],
)
def test_malformed_kek_values(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(KeystoreError, match=message) as excinfo:
        load_kek(value, str(tmp_path))
    assert "CONSENSUS_KEY_ENCRYPTION_KEY" in str(excinfo.value)
    if value.strip():
        assert value.strip() not in str(excinfo.value)  # never echo key material


def test_kek_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    instance = tmp_path / "instance"  # does not exist yet
    first = load_kek(None, str(instance))
    path = instance / KEK_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32
    assert load_kek(None, str(instance)) == first
    assert base64.urlsafe_b64decode(path.read_text().strip()) == first
    assert sorted(p.name for p in instance.iterdir()) == [KEK_FILENAME]  # no temporary left


def test_concurrent_first_start_agrees_on_one_kek(tmp_path: Path) -> None:
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(load_kek(None, str(tmp_path))))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert len(set(results)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEK_FILENAME]


def test_corrupt_kek_file_is_reported_with_its_path(tmp_path: Path) -> None:
    (tmp_path / KEK_FILENAME).write_text("garbage\n")
    with pytest.raises(KeystoreError, match=KEK_FILENAME):
        load_kek(None, str(tmp_path))
    (tmp_path / KEK_FILENAME).write_bytes(b"\xff\xfe")
    with pytest.raises(KeystoreError, match=KEK_FILENAME):
        load_kek(None, str(tmp_path))


def test_generated_kek_is_accepted(tmp_path: Path) -> None:
    text = generate_kek()
    assert len(load_kek(text, str(tmp_path))) == 32
    assert generate_kek() != text


def test_seal_round_trip_and_format() -> None:
    sealed = seal(KEK, b"secret seed", AD)
    version, nonce, ciphertext = sealed.split(":")
    assert version == "v1"
    assert len(base64.urlsafe_b64decode(nonce)) == 12
    assert len(base64.urlsafe_b64decode(ciphertext)) == len(b"secret seed") + 16
    assert unseal(KEK, sealed, AD) == b"secret seed"
    assert seal(KEK, b"secret seed", AD) != sealed  # fresh nonce every time
    assert b"secret" not in sealed.encode()


def test_wrong_kek_or_associated_data_fails() -> None:
    sealed = seal(KEK, b"secret", AD)
    with pytest.raises(KeystoreError, match="does not open"):
        unseal(bytes(32), sealed, AD)
    with pytest.raises(KeystoreError, match="does not open"):
        unseal(KEK, sealed, b"org-signing-key:43")
    with pytest.raises(KeystoreError, match="32 bytes"):
        unseal(KEK[:16], sealed, AD)
    with pytest.raises(KeystoreError, match="32 bytes"):
        seal(KEK + b"x", b"secret", AD)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.replace("v1:", "v2:"),
        lambda s: s.replace("v1:", ""),
        lambda s: s + ":extra",
        lambda s: s[:-4],
        lambda s: s.split(":")[0] + ":" + s.split(":")[2] + ":" + s.split(":")[1],
        lambda s: "v1:" + base64.urlsafe_b64encode(b"n" * 11).decode() + ":" + s.split(":")[2],
        lambda s: s.replace(":", ":*", 1),
        lambda s: "",
    ],
)
def test_malformed_sealed_values(mangle: object) -> None:
    sealed = seal(KEK, b"secret", AD)
    with pytest.raises(KeystoreError):
        unseal(KEK, mangle(sealed), AD)  # type: ignore[operator]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=50), st.integers(0, 10_000), st.integers(0, 7))
def test_any_bit_flip_in_nonce_or_ciphertext_fails(
    plaintext: bytes, ad: bytes, position: int, bit: int
) -> None:
    sealed = seal(KEK, plaintext, ad)
    assert unseal(KEK, sealed, ad) == plaintext
    _, nonce, ciphertext = sealed.split(":")
    raw = bytearray(base64.urlsafe_b64decode(nonce) + base64.urlsafe_b64decode(ciphertext))
    raw[position % len(raw)] ^= 1 << bit
    tampered = ":".join(
        [
            "v1",
            base64.urlsafe_b64encode(raw[:12]).decode(),
            base64.urlsafe_b64encode(raw[12:]).decode(),
        ]
    )
    with pytest.raises(KeystoreError):
        unseal(KEK, tampered, ad)


def test_ed25519_keys_sealed_and_opened() -> None:
    sealed, public_raw = new_ed25519_sealed(KEK, AD)
    assert len(public_raw) == 32
    key = open_ed25519(KEK, sealed, AD)
    assert isinstance(key, Ed25519PrivateKey)
    assert key.public_key().public_bytes_raw() == public_raw
    key.public_key().verify(key.sign(b"m"), b"m")
    other, _ = new_ed25519_sealed(KEK, AD)
    assert open_ed25519(KEK, other, AD).public_key().public_bytes_raw() != public_raw
    with pytest.raises(KeystoreError):
        open_ed25519(KEK, sealed, b"another key's row")
    with pytest.raises(KeystoreError, match="not an Ed25519"):
        open_ed25519(KEK, seal(KEK, b"short", AD), AD)


def test_no_file_mode_surprises_from_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_kek(None, str(tmp_path))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / KEK_FILENAME).stat().st_mode) == 0o600
