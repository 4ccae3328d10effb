"""SSHSIG: our signatures against the real ssh-keygen and the `sshsig` package, and back."""

from __future__ import annotations

import base64
import hashlib
import struct
import subprocess
from pathlib import Path

import pytest
import sshsig as sshsig_pkg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_ssh_private_key
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.crypto.sshsig import (
    SK_ED25519,
    KeyFormatError,
    SignatureError,
    allowed_signers_line,
    armour,
    dearmour,
    fingerprint,
    openssh_public_key_line,
    parse_openssh_public_key,
    public_key_blob,
    sign,
    signed_data,
    verify,
)
from tests.tools import require_tool

NS = "checkpoint@consensus"
MESSAGE = b"tree_size=42\nroot=9b758ccb293ec65f1f3fb3675d3c0976\n"


def s(data: bytes | str) -> bytes:
    """SSH wire string, written independently of the module under test."""
    raw = data.encode() if isinstance(data, str) else data
    return struct.pack(">I", len(raw)) + raw


def sshsig_blob(pub_blob: bytes, namespace: str, hash_alg: str, sig_blob: bytes) -> bytes:
    return (
        b"SSHSIG"
        + struct.pack(">I", 1)
        + s(pub_blob)
        + s(namespace)
        + s(b"")
        + s(hash_alg)
        + s(sig_blob)
    )


def fake_sk_signature(
    key: Ed25519PrivateKey,
    message: bytes,
    namespace: str,
    *,
    application: str = "ssh:",
    flags: int = 0x01,
    counter: int = 7,
) -> tuple[str, str]:
    """(armoured signature, public key line) as a FIDO authenticator would make them
    (PROTOCOL.u2f), built by hand since no hardware key is available here."""
    raw_pub = key.public_key().public_bytes_raw()
    pub_blob = s(SK_ED25519) + s(raw_pub) + s(application)
    data = b"SSHSIG" + s(namespace) + s(b"") + s("sha512") + s(hashlib.sha512(message).digest())
    to_sign = (
        hashlib.sha256(application.encode()).digest()
        + bytes([flags])
        + struct.pack(">I", counter)
        + hashlib.sha256(data).digest()
    )
    sig_blob = s(SK_ED25519) + s(key.sign(to_sign)) + bytes([flags]) + struct.pack(">I", counter)
    armoured = armour(sshsig_blob(pub_blob, namespace, "sha512", sig_blob))
    return armoured, f"{SK_ED25519} {base64.b64encode(pub_blob).decode()} yubikey"


# --- ssh-keygen ---------------------------------------------------------------------------


@pytest.fixture
def keygen() -> str:
    return require_tool("ssh-keygen")


def keygen_verify(
    keygen: str,
    tmp_path: Path,
    armoured: str,
    message: bytes,
    signers: list[str],
    namespace: str = NS,
    principal: str = "alice@example.nl",
) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "allowed_signers").write_text("".join(f"{line}\n" for line in signers))
    (tmp_path / "msg.sig").write_text(armoured)
    return subprocess.run(
        [keygen, "-Y", "verify", "-f", str(tmp_path / "allowed_signers"), "-I", principal]
        + ["-n", namespace, "-s", str(tmp_path / "msg.sig")],
        input=message,
        capture_output=True,
        check=False,
    )


def keygen_key(keygen: str, tmp_path: Path, name: str = "id") -> Path:
    path = tmp_path / name
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "bob@example.nl", "-f", str(path)],
        check=True,
    )
    return path


def test_our_signature_is_accepted_by_ssh_keygen(keygen: str, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    armoured = sign(key, MESSAGE, NS)
    signer = allowed_signers_line(
        "alice@example.nl", [NS], openssh_public_key_line(key.public_key())
    )
    assert signer.startswith(f'alice@example.nl namespaces="{NS}" ssh-ed25519 AAAA')
    result = keygen_verify(keygen, tmp_path, armoured, MESSAGE, [signer])
    assert result.returncode == 0, result.stderr
    assert b'Good "checkpoint@consensus" signature for alice@example.nl' in result.stdout


def test_ssh_keygen_and_we_reject_the_same_forgeries(keygen: str, tmp_path: Path) -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    armoured = sign(key, MESSAGE, NS)
    line = openssh_public_key_line(key.public_key())
    other_line = openssh_public_key_line(other.public_key())
    signer = allowed_signers_line("alice@example.nl", NS, line)
    flipped = bytes([MESSAGE[0] ^ 0x01]) + MESSAGE[1:]

    assert keygen_verify(keygen, tmp_path, armoured, MESSAGE, [signer], namespace="file").returncode
    with pytest.raises(SignatureError, match="namespace"):
        verify(armoured, MESSAGE, "file", [line])

    assert keygen_verify(keygen, tmp_path, armoured, flipped, [signer]).returncode
    with pytest.raises(SignatureError, match="does not match"):
        verify(armoured, flipped, NS, [line])

    other_signer = allowed_signers_line("alice@example.nl", NS, other_line)
    assert keygen_verify(keygen, tmp_path, armoured, MESSAGE, [other_signer]).returncode
    with pytest.raises(SignatureError, match="not allowed"):
        verify(armoured, MESSAGE, NS, [other_line])

    # A signer allowed only for another namespace is refused too.
    wrong_ns_signer = allowed_signers_line("alice@example.nl", ["file"], line)
    assert keygen_verify(keygen, tmp_path, armoured, MESSAGE, [wrong_ns_signer]).returncode


def test_ssh_keygen_signature_is_accepted_by_us(keygen: str, tmp_path: Path) -> None:
    key_path = keygen_key(keygen, tmp_path)
    (tmp_path / "msg").write_bytes(MESSAGE)
    subprocess.run(
        [keygen, "-Y", "sign", "-f", str(key_path), "-n", NS, str(tmp_path / "msg")],
        check=True,
        capture_output=True,
    )
    armoured = (tmp_path / "msg.sig").read_text()
    pub_line = (tmp_path / "id.pub").read_text()

    verified = verify(armoured, MESSAGE, NS, [pub_line])
    listed = subprocess.run(
        [keygen, "-lf", str(tmp_path / "id.pub")], capture_output=True, check=True
    )
    assert verified.fingerprint == listed.stdout.split()[1].decode()
    assert verified.key_type == "ssh-ed25519"
    assert verified.hash_algorithm == "sha512"
    assert verified.public_key_blob == parse_openssh_public_key(pub_line)[1]
    assert verified.public_key_line == " ".join(pub_line.split()[:2])

    other = openssh_public_key_line(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(SignatureError):
        verify(armoured, MESSAGE, "git", [pub_line])
    with pytest.raises(SignatureError):
        verify(armoured, MESSAGE + b"!", NS, [pub_line])
    with pytest.raises(SignatureError):
        verify(armoured, MESSAGE, NS, [other])


def test_same_key_gives_byte_identical_signature_to_ssh_keygen(keygen: str, tmp_path: Path) -> None:
    """Ed25519 is deterministic, so any difference in encoding or armour would show."""
    key_path = keygen_key(keygen, tmp_path)
    (tmp_path / "msg").write_bytes(MESSAGE)
    subprocess.run(
        [keygen, "-Y", "sign", "-f", str(key_path), "-n", NS, str(tmp_path / "msg")],
        check=True,
        capture_output=True,
    )
    private_key = load_ssh_private_key(key_path.read_bytes(), password=None)
    assert isinstance(private_key, Ed25519PrivateKey)
    assert sign(private_key, MESSAGE, NS) == (tmp_path / "msg.sig").read_text()
    ours = openssh_public_key_line(private_key.public_key(), "bob@example.nl")
    assert ours == (tmp_path / "id.pub").read_text().strip()


def test_fingerprint_equals_ssh_keygen(keygen: str, tmp_path: Path) -> None:
    for _ in range(3):
        pub = Ed25519PrivateKey.generate().public_key()
        (tmp_path / "k.pub").write_text(openssh_public_key_line(pub, "x") + "\n")
        listed = subprocess.run(
            [keygen, "-lf", str(tmp_path / "k.pub")], capture_output=True, check=True
        )
        assert fingerprint(public_key_blob(pub)) == listed.stdout.split()[1].decode()


def test_security_key_signature_accepted_by_ssh_keygen_and_us(keygen: str, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    armoured, line = fake_sk_signature(key, MESSAGE, NS, counter=4242)
    signer = allowed_signers_line("alice@example.nl", NS, line)
    assert signer.split()[2] == SK_ED25519
    result = keygen_verify(keygen, tmp_path, armoured, MESSAGE, [signer])
    assert result.returncode == 0, result.stderr

    verified = verify(armoured, MESSAGE, NS, [line])
    assert verified.key_type == SK_ED25519
    assert (verified.sk_application, verified.sk_flags, verified.sk_counter) == ("ssh:", 1, 4242)
    listed = subprocess.run(
        [keygen, "-lf", "-"], input=line.encode(), capture_output=True, check=True
    )
    assert verified.fingerprint == listed.stdout.split()[1].decode()

    # Raising the counter in transit breaks the signature for both verifiers.
    blob = bytearray(dearmour(armoured))
    blob[-1] ^= 0x01
    assert keygen_verify(keygen, tmp_path, armour(bytes(blob)), MESSAGE, [signer]).returncode
    with pytest.raises(SignatureError, match="does not match"):
        verify(armour(bytes(blob)), MESSAGE, NS, [line])
    assert keygen_verify(keygen, tmp_path, armoured, MESSAGE[:-1], [signer]).returncode


def test_security_key_signature_without_user_presence(keygen: str, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    armoured, line = fake_sk_signature(key, MESSAGE, NS, flags=0x00)
    # ssh-keygen itself does not insist on a touch (sshd does); we do by default.
    signer = allowed_signers_line("alice@example.nl", NS, line)
    assert keygen_verify(keygen, tmp_path, armoured, MESSAGE, [signer]).returncode == 0
    with pytest.raises(SignatureError, match="user presence"):
        verify(armoured, MESSAGE, NS, [line])
    assert verify(armoured, MESSAGE, NS, [line], require_user_presence=False).sk_flags == 0


# --- the sshsig package as a second, independent verifier ---------------------------------


def test_sshsig_package_accepts_ours_and_rejects_tampering() -> None:
    key = Ed25519PrivateKey.generate()
    armoured = sign(key, MESSAGE, NS)
    allowed = [sshsig_pkg.PublicKey.from_openssh_str(openssh_public_key_line(key.public_key()))]
    sshsig_pkg.verify(MESSAGE, armoured, allowed, namespace=NS)
    with pytest.raises(sshsig_pkg.InvalidSignature):
        sshsig_pkg.verify(MESSAGE, armoured, allowed, namespace="git")
    with pytest.raises(sshsig_pkg.InvalidSignature):
        sshsig_pkg.verify(MESSAGE + b"x", armoured, allowed, namespace=NS)
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(sshsig_pkg.InvalidSignature):
        sshsig_pkg.verify(
            MESSAGE,
            armoured,
            [sshsig_pkg.PublicKey.from_openssh_str(openssh_public_key_line(other))],
            NS,
        )


@settings(max_examples=25, deadline=None)
@given(
    st.binary(max_size=2000),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
)
def test_round_trip_with_both_verifiers(message: bytes, namespace: str) -> None:
    key = Ed25519PrivateKey.generate()
    armoured = sign(key, message, namespace)
    assert all(len(line) <= 70 for line in armoured.splitlines())
    verified = verify(armoured, message, namespace, [key.public_key()])
    assert verified.namespace == namespace
    assert sshsig_pkg.check_signature(message, armoured, namespace).openssh_str() == (
        openssh_public_key_line(key.public_key())
    )


# --- our verifier on malformed input --------------------------------------------------------


def test_every_single_byte_change_is_rejected() -> None:
    key = Ed25519PrivateKey.generate()
    blob = dearmour(sign(key, MESSAGE, NS))
    for position in range(len(blob)):
        changed = bytearray(blob)
        changed[position] ^= 0x04
        with pytest.raises(SignatureError):
            verify(armour(bytes(changed)), MESSAGE, NS)


def test_allowed_keys_in_every_accepted_form() -> None:
    key = Ed25519PrivateKey.generate()
    armoured = sign(key, MESSAGE, NS)
    pub = key.public_key()
    for allowed in (pub, openssh_public_key_line(pub, "c"), public_key_blob(pub)):
        assert verify(armoured, MESSAGE, NS, [allowed]).public_key_blob == public_key_blob(pub)
    assert verify(armoured, MESSAGE, NS, openssh_public_key_line(pub))  # a lone key is fine
    with pytest.raises(SignatureError, match="not allowed"):
        verify(armoured, MESSAGE, NS, [])
    # Without a list, the caller gets the key to decide about (like check-novalidate).
    assert verify(armoured, MESSAGE, NS).fingerprint == fingerprint(public_key_blob(pub))


def test_sha256_signatures_are_accepted() -> None:
    key = Ed25519PrivateKey.generate()
    data = signed_data(MESSAGE, NS, "sha256")
    blob = sshsig_blob(
        public_key_blob(key.public_key()), NS, "sha256", s("ssh-ed25519") + s(key.sign(data))
    )
    assert verify(armour(blob), MESSAGE, NS, [key.public_key()]).hash_algorithm == "sha256"


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        (lambda a: a.replace("BEGIN SSH SIGNATURE", "BEGIN PGP SIGNATURE"), "armoured"),
        (lambda a: a.replace("-----END SSH SIGNATURE-----\n", ""), "armoured"),
        (lambda a: a.replace("U1NI", "U1N!"), "base64"),
        (lambda a: "", "armoured"),
    ],
)
def test_bad_armour(mangle: object, error: str) -> None:
    armoured = sign(Ed25519PrivateKey.generate(), MESSAGE, NS)
    with pytest.raises(SignatureError, match=error):
        verify(mangle(armoured), MESSAGE, NS)  # type: ignore[operator]


def test_armour_tolerates_surrounding_whitespace_and_crlf() -> None:
    key = Ed25519PrivateKey.generate()
    armoured = sign(key, MESSAGE, NS)
    assert verify("\n  " + armoured.replace("\n", "\r\n") + "\n", MESSAGE, NS, [key.public_key()])


def test_structural_errors() -> None:
    key = Ed25519PrivateKey.generate()
    pub_blob = public_key_blob(key.public_key())
    good_sig = s("ssh-ed25519") + s(key.sign(signed_data(MESSAGE, NS)))
    good = sshsig_blob(pub_blob, NS, "sha512", good_sig)
    assert verify(armour(good), MESSAGE, NS)
    cases = {
        "trailing data": good + b"\x00",
        "truncated": good[:-5],
        "version": good[:6] + struct.pack(">I", 2) + good[10:],
        "hash algorithm": sshsig_blob(pub_blob, NS, "md5", good_sig),
        "unsupported key type": sshsig_blob(
            s("ssh-rsa") + s(b"\x01\x00\x01") + s(b"\x00" * 64), NS, "sha512", good_sig
        ),
        "does not match the key type": sshsig_blob(
            pub_blob, NS, "sha512", s("ssh-rsa") + s(b"x" * 64)
        ),
        "64 bytes": sshsig_blob(pub_blob, NS, "sha512", s("ssh-ed25519") + s(b"x" * 63)),
        "32 bytes": sshsig_blob(s("ssh-ed25519") + s(b"k" * 31), NS, "sha512", good_sig),
        "SSHSIG": b"SSHSIH" + good[6:],
    }
    for expected, blob in cases.items():
        with pytest.raises(SignatureError, match=expected):
            verify(armour(blob), MESSAGE, NS)
    with pytest.raises(SignatureError, match="namespace"):
        verify(armour(good), MESSAGE, "")
    for namespace in ["", "two words", "caf\u00e9", "\ud800"]:
        with pytest.raises(SignatureError, match="namespace"):
            sign(key, MESSAGE, namespace)


# --- key lines and allowed_signers --------------------------------------------------------


def test_parse_openssh_public_key() -> None:
    pub = Ed25519PrivateKey.generate().public_key()
    line = openssh_public_key_line(pub, "alice laptop")
    assert parse_openssh_public_key(line + "\n") == (
        "ssh-ed25519",
        public_key_blob(pub),
        "alice laptop",
    )
    assert parse_openssh_public_key(openssh_public_key_line(pub))[2] == ""
    _, sk_line = fake_sk_signature(Ed25519PrivateKey.generate(), b"", NS)
    key_type, blob, comment = parse_openssh_public_key(sk_line)
    assert (key_type, comment) == (SK_ED25519, "yubikey")
    assert blob.endswith(s("ssh:"))

    encoded = line.split()[1]
    rsa_blob = base64.b64encode(s("ssh-rsa") + s(b"\x01\x00\x01") + s(b"\x00" * 64)).decode()
    bad = {
        "": "expected",
        "ssh-ed25519": "expected",
        f"ssh-rsa {encoded}": "unsupported key type 'ssh-rsa'",
        f"ssh-rsa {rsa_blob}": "unsupported key type",
        f"ssh-ed25519 {rsa_blob}": "unsupported key type",
        f"ssh-ed25519 {encoded[:-4]}": "base64|malformed|truncated",
        f"ssh-ed25519 {encoded}!": "base64",
        f"{SK_ED25519} {encoded}": "says sk-ssh-ed25519@openssh.com but the key is ssh-ed25519",
        f"{SK_ED25519} {encoded[:-4]}": "base64|malformed|truncated",
        f"ssh-ed25519 {base64.b64encode(base64.b64decode(encoded) + b'x').decode()}": "trailing",
        f"ssh-ed25519 {sk_line.split()[1]}": "says ssh-ed25519",
    }
    for text, message in bad.items():
        with pytest.raises(KeyFormatError, match=message):
            parse_openssh_public_key(text)


def test_allowed_signers_line() -> None:
    pub = Ed25519PrivateKey.generate().public_key()
    line = openssh_public_key_line(pub, "comment is dropped")
    key = line.split()[1]
    assert allowed_signers_line("bob@gemeente.nl", ["a@x", "b@x"], line) == (
        f'bob@gemeente.nl namespaces="a@x,b@x" ssh-ed25519 {key}'
    )
    for principal in ["", "two words", "a,b", "*", 'q"', "tab\there"]:
        with pytest.raises(KeyFormatError, match="principal"):
            allowed_signers_line(principal, NS, line)
    for namespaces in [[], ["a b"], ['x"'], ["a,b"]]:
        with pytest.raises(KeyFormatError, match="namespace"):
            allowed_signers_line("bob", namespaces, line)
    with pytest.raises(KeyFormatError):
        allowed_signers_line("bob", NS, "ssh-rsa AAAA")
