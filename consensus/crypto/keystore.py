"""Private keys at rest, encrypted with a key-encryption key (KEK) kept outside the database.

A copy of the database alone then reveals no signing key. Each sealed value is bound to
associated data (say, "org-signing-key:42"), so a ciphertext moved to another row fails to open.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cryptography is loaded where a key is used (lean web workers, issue 23)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEK_ENV_VAR = "CONSENSUS_KEY_ENCRYPTION_KEY"
KEK_FILENAME = "key-encryption-key"
KEK_SIZE = 32
NONCE_SIZE = 12
VERSION = "v1"


class KeystoreError(ValueError):
    """A KEK or sealed value that cannot be used; messages never contain key material."""


def generate_kek() -> str:
    """A fresh KEK in the text form that `load_kek` expects (for the env var or the file)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEK_SIZE)).decode()


def _decode_kek(text: str, source: str) -> bytes:
    value = text.strip()
    if not value or any(c in value for c in "+/"):
        raise KeystoreError(f"{source} is not urlsafe base64")
    try:
        kek = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise KeystoreError(f"{source} is not urlsafe base64") from None
    if len(kek) != KEK_SIZE:
        raise KeystoreError(f"{source} must decode to {KEK_SIZE} bytes, not {len(kek)}")
    return kek


def load_kek(value: str | None, instance_path: str) -> bytes:
    """The KEK from `value` (the env var's content) if given, else from the instance folder.

    The file, created on first use with mode 0600, is a development convenience: in
    production set CONSENSUS_KEY_ENCRYPTION_KEY and keep it away from database backups.
    """
    if value is not None:
        return _decode_kek(value, KEK_ENV_VAR)
    path = Path(instance_path) / KEK_FILENAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then linked into place: a concurrent first
        # start never reads a half-written file, and the first one to link wins.
        temporary = path.with_name(f".{KEK_FILENAME}.{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(generate_kek() + "\n")
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise KeystoreError(f"{path} is not urlsafe base64") from None
    return _decode_kek(text, str(path))


def _aesgcm(kek: bytes) -> AESGCM:
    if not isinstance(kek, bytes) or len(kek) != KEK_SIZE:
        raise KeystoreError(f"the KEK must be {KEK_SIZE} bytes")
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(kek)


def seal(kek: bytes, plaintext: bytes, associated_data: bytes) -> str:
    """AES-256-GCM with a random nonce, as 'v1:<nonce>:<ciphertext>' (urlsafe base64)."""
    nonce = secrets.token_bytes(NONCE_SIZE)
    ciphertext = _aesgcm(kek).encrypt(nonce, plaintext, associated_data)
    parts = (base64.urlsafe_b64encode(p).decode() for p in (nonce, ciphertext))
    return ":".join([VERSION, *parts])


def unseal(kek: bytes, sealed: str, associated_data: bytes) -> bytes:
    """Reverse of `seal`; a wrong KEK, wrong associated data or any tampering is an error."""
    from cryptography.exceptions import InvalidTag

    aesgcm = _aesgcm(kek)
    fields = sealed.split(":")
    if len(fields) != 3 or fields[0] != VERSION:
        raise KeystoreError("not a sealed value of a known version")
    try:
        nonce, ciphertext = (base64.b64decode(f, altchars=b"-_", validate=True) for f in fields[1:])
    except (binascii.Error, ValueError):
        raise KeystoreError("sealed value is not valid base64") from None
    if len(nonce) != NONCE_SIZE:
        raise KeystoreError("sealed value has a nonce of the wrong size")
    try:
        return aesgcm.decrypt(nonce, ciphertext, associated_data)
    except InvalidTag:
        raise KeystoreError(
            "sealed value does not open with this KEK and associated data"
        ) from None


def new_ed25519_sealed(kek: bytes, associated_data: bytes) -> tuple[str, bytes]:
    """A new signing key: (sealed private seed, raw 32-byte public key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    sealed = seal(kek, key.private_bytes_raw(), associated_data)
    return sealed, key.public_key().public_bytes_raw()


def open_ed25519(kek: bytes, sealed: str, associated_data: bytes) -> Ed25519PrivateKey:
    seed = unseal(kek, sealed, associated_data)
    if len(seed) != 32:
        raise KeystoreError("sealed value is not an Ed25519 private key")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed)
