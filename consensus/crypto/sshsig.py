"""OpenSSH signatures (PROTOCOL.sshsig) with Ed25519, checkable with `ssh-keygen -Y verify`.

Signing uses an `ssh-ed25519` key held by the application. Verification also accepts
`sk-ssh-ed25519@openssh.com` (FIDO security keys, PROTOCOL.u2f), so people can sign with a
hardware key of their own. Errors are all `SignatureError`, a `ValueError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:  # cryptography is loaded where a signature is checked (lean web workers)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

ED25519 = "ssh-ed25519"
SK_ED25519 = "sk-ssh-ed25519@openssh.com"
SUPPORTED_KEY_TYPES = (ED25519, SK_ED25519)
MAGIC = b"SSHSIG"
VERSION = 1
HASH_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
SK_USER_PRESENT = 0x01
"""PROTOCOL.u2f flag: the authenticator was touched."""

PublicKeyLike: TypeAlias = "bytes | str | Ed25519PublicKey"
"""A key as an SSH wire blob, an OpenSSH public key line, or a cryptography key."""


class SignatureError(ValueError):
    """Any reason why a signature is not accepted, or cannot be made."""


class KeyFormatError(SignatureError):
    """A public key line or blob that cannot be used."""


@dataclass(frozen=True)
class VerifiedSignature:
    """What a valid signature proves: which key signed, in which namespace."""

    key_type: str
    public_key_blob: bytes
    fingerprint: str
    namespace: str
    hash_algorithm: str
    sk_application: str | None = None
    sk_flags: int | None = None
    sk_counter: int | None = None

    @property
    def public_key_line(self) -> str:
        return f"{self.key_type} {base64.b64encode(self.public_key_blob).decode()}"


def _string(data: bytes | str) -> bytes:
    """SSH wire `string`: uint32 big-endian length, then the bytes."""
    raw = data.encode() if isinstance(data, str) else data
    return struct.pack(">I", len(raw)) + raw


class _Reader:
    """Strict reader of SSH wire data: any short read is an error."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.offset, self.what = data, 0, what

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise SignatureError(f"truncated {self.what}")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def uint32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def string(self) -> bytes:
        return self.take(self.uint32())

    def text(self) -> str:
        try:
            return self.string().decode()
        except UnicodeDecodeError as exc:
            raise SignatureError(f"non-UTF-8 text in {self.what}") from exc

    def end(self) -> None:
        if self.offset != len(self.data):
            raise SignatureError(f"trailing data after {self.what}")


def public_key_blob(pub: Ed25519PublicKey) -> bytes:
    """SSH wire encoding of an Ed25519 public key, as embedded in signatures and key lines."""
    return _string(ED25519) + _string(pub.public_bytes_raw())


def openssh_public_key_line(pub: Ed25519PublicKey, comment: str = "") -> str:
    """'ssh-ed25519 AAAA… comment', as in id_ed25519.pub."""
    line = f"{ED25519} {base64.b64encode(public_key_blob(pub)).decode()}"
    return f"{line} {comment}" if comment else line


def _parse_blob(blob: bytes) -> tuple[str, bytes, str | None]:
    """(key type, raw Ed25519 key, FIDO application or None) of a wire-format public key."""
    reader = _Reader(blob, "public key")
    try:
        key_type = reader.text()
        if key_type not in SUPPORTED_KEY_TYPES:
            raise KeyFormatError(
                f"unsupported key type {key_type!r}; use {ED25519} or {SK_ED25519}"
            )
        raw = reader.string()
        application = reader.text() if key_type == SK_ED25519 else None
        reader.end()
    except KeyFormatError:
        raise
    except SignatureError as exc:
        raise KeyFormatError(f"malformed public key: {exc}") from exc
    if len(raw) != 32:
        raise KeyFormatError("an Ed25519 public key has 32 bytes")
    return key_type, raw, application


def parse_openssh_public_key(line: str) -> tuple[str, bytes, str]:
    """Split 'type base64 [comment]' into (key type, wire blob, comment), checking all three."""
    fields = line.strip().split(None, 2)
    if len(fields) < 2:
        raise KeyFormatError("expected '<key type> <base64 key> [comment]'")
    declared, encoded = fields[0], fields[1]
    if declared not in SUPPORTED_KEY_TYPES:
        raise KeyFormatError(f"unsupported key type {declared!r}; use {ED25519} or {SK_ED25519}")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyFormatError("the key is not valid base64") from exc
    key_type, _, _ = _parse_blob(blob)
    if key_type != declared:
        raise KeyFormatError(f"the line says {declared} but the key is {key_type}")
    return key_type, blob, fields[2].strip() if len(fields) == 3 else ""


def fingerprint(blob: bytes) -> str:
    """OpenSSH's default fingerprint, 'SHA256:' + unpadded base64 of SHA-256(blob)."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _check_token(value: str, what: str) -> None:
    # allowed_signers separates principals and namespaces by commas and fields by whitespace;
    # wildcards would widen who may sign, so none of these may appear in one name.
    if not value or any(c.isspace() or c in ',"*?!\\' or not c.isprintable() for c in value):
        raise KeyFormatError(f"{what} {value!r} cannot be written to an allowed_signers file")


def allowed_signers_line(
    principal: str, namespaces: Iterable[str] | str, public_key_line: str
) -> str:
    """One line of an allowed_signers file for `ssh-keygen -Y verify`, without the key comment."""
    names = [namespaces] if isinstance(namespaces, str) else list(namespaces)
    _check_token(principal, "principal")
    if not names:
        raise KeyFormatError("at least one namespace is needed")
    for name in names:
        _check_token(name, "namespace")
    key_type, blob, _ = parse_openssh_public_key(public_key_line)
    key = base64.b64encode(blob).decode()
    return f'{principal} namespaces="{",".join(names)}" {key_type} {key}'


def signed_data(message: bytes, namespace: str, hash_algorithm: str = "sha512") -> bytes:
    """The bytes the key actually signs: the namespace binds a signature to one purpose."""
    if not namespace or not all("!" <= c <= "~" for c in namespace):
        # OpenSSH would take any string, but other verifiers (the sshsig package) want ASCII.
        raise SignatureError(f"a namespace must be non-empty printable ASCII, not {namespace!r}")
    if hash_algorithm not in HASH_ALGORITHMS:
        raise SignatureError(f"unsupported hash algorithm {hash_algorithm!r}")
    digest = HASH_ALGORITHMS[hash_algorithm](message).digest()
    return MAGIC + _string(namespace) + _string(b"") + _string(hash_algorithm) + _string(digest)


def armour(blob: bytes) -> str:
    """PEM-like text with base64 wrapped at 70 columns, exactly as ssh-keygen writes it."""
    encoded = base64.b64encode(blob).decode()
    lines = [encoded[i : i + 70] for i in range(0, len(encoded), 70)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def dearmour(armoured: str) -> bytes:
    lines = [line.strip() for line in armoured.strip().splitlines()]
    if len(lines) < 3 or lines[0] != BEGIN or lines[-1] != END:
        raise SignatureError("not an armoured SSH signature")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("the signature is not valid base64") from exc


def sign(private_key: Ed25519PrivateKey, message: bytes, namespace: str) -> str:
    """Armoured SSHSIG over `message` (SHA-512), as `ssh-keygen -Y sign -n namespace` makes."""
    signature = private_key.sign(signed_data(message, namespace))
    blob = (
        MAGIC
        + struct.pack(">I", VERSION)
        + _string(public_key_blob(private_key.public_key()))
        + _string(namespace)
        + _string(b"")
        + _string("sha512")
        + _string(_string(ED25519) + _string(signature))
    )
    return armour(blob)


def _allowed_blob(key: PublicKeyLike) -> bytes:
    if isinstance(key, str):
        return parse_openssh_public_key(key)[1]
    if isinstance(key, bytes):
        return key
    return public_key_blob(key)  # a cryptography key


def verify(
    armoured: str,
    message: bytes,
    namespace: str,
    allowed_public_keys: Iterable[PublicKeyLike] | None = None,
    *,
    require_user_presence: bool = True,
) -> VerifiedSignature:
    """Check an armoured SSHSIG over `message` in `namespace`; raise SignatureError if not valid.

    With `allowed_public_keys`, the signing key must be one of them; with None, the caller must
    decide whether to trust the returned key (like `ssh-keygen -Y check-novalidate`). Security
    key signatures must carry the user-presence flag unless `require_user_presence` is False
    (stricter than ssh-keygen, which leaves that check to sshd).
    """
    if isinstance(allowed_public_keys, str | bytes):
        allowed_public_keys = [allowed_public_keys]  # one key, not an iterable of characters
    reader = _Reader(dearmour(armoured), "signature")
    if reader.take(6) != MAGIC:
        raise SignatureError("not an SSHSIG signature")
    if reader.uint32() != VERSION:
        raise SignatureError("unsupported SSHSIG version")
    blob = reader.string()
    signed_namespace = reader.text()
    reader.string()  # reserved; ignored, as OpenSSH does
    hash_algorithm = reader.text()
    signature_blob = reader.string()
    reader.end()

    if not namespace or signed_namespace != namespace:
        raise SignatureError(f"signature is for namespace {signed_namespace!r}, not {namespace!r}")
    if hash_algorithm not in HASH_ALGORITHMS:
        raise SignatureError(f"unsupported hash algorithm {hash_algorithm!r}")
    key_type, raw_key, application = _parse_blob(blob)
    if allowed_public_keys is not None and blob not in {
        _allowed_blob(k) for k in allowed_public_keys
    }:
        raise SignatureError(f"signed by a key that is not allowed ({fingerprint(blob)})")

    sig_reader = _Reader(signature_blob, "signature blob")
    if sig_reader.text() != key_type:
        raise SignatureError("signature algorithm does not match the key type")
    raw_signature = sig_reader.string()
    to_verify = signed_data(message, namespace, hash_algorithm)
    flags = counter = None
    if application is not None:
        # PROTOCOL.u2f: the authenticator signs SHA-256(application) ‖ flags ‖ counter ‖
        # SHA-256(data); flags and counter travel next to the signature.
        flags, counter = sig_reader.take(1)[0], sig_reader.uint32()
        to_verify = (
            hashlib.sha256(application.encode()).digest()
            + bytes([flags])
            + struct.pack(">I", counter)
            + hashlib.sha256(to_verify).digest()
        )
        if require_user_presence and not flags & SK_USER_PRESENT:
            raise SignatureError("security key signature made without user presence")
    sig_reader.end()
    if len(raw_signature) != 64:
        raise SignatureError("an Ed25519 signature has 64 bytes")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_signature, to_verify)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("signature does not match the message") from exc
    return VerifiedSignature(
        key_type=key_type,
        public_key_blob=blob,
        fingerprint=fingerprint(blob),
        namespace=signed_namespace,
        hash_algorithm=hash_algorithm,
        sk_application=application,
        sk_flags=flags,
        sk_counter=counter,
    )
