"""Checking a co-signature: its SSHSIG statement against the enrolled key, and the PAdES
signature in the letter; allowed_signers lines for ssh-keygen."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from consensus.crypto import sshsig
from consensus.extensions import db
from consensus.models import (
    CoSignature,
    JointLetter,
    SigningKey,
    Version,
)
from consensus.signing.cosigning import NAMESPACE


def _ssh_time(moment: datetime) -> str:
    """A time as allowed_signers and `ssh-keygen -Overify-time` want it (UTC)."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


@dataclass(frozen=True)
class SignatureCheck:
    """What the public page shows for one signature."""

    signature: CoSignature
    verified: bool
    reason: str = ""

    @property
    def key_revoked(self) -> bool:
        return self.signature.key.revoked_at is not None

    @property
    def signed_before_revocation(self) -> bool:
        revoked = self.signature.key.revoked_at
        return revoked is None or self.signature.signed_at < revoked


def check_signature(cosignature: CoSignature, letter: JointLetter | None = None) -> SignatureCheck:
    """Verify now: the SSHSIG over the stored bytes with the enrolled key, and that the
    statement names this version's text hash and this letter's hash."""
    try:
        sshsig.verify(
            cosignature.signature, cosignature.statement, NAMESPACE, [cosignature.key.public_key]
        )
        claimed = json.loads(cosignature.statement)
    except (sshsig.SignatureError, ValueError) as error:
        return SignatureCheck(cosignature, False, str(error))
    version = db.session.get_one(Version, cosignature.version_id)
    letter = letter or db.session.get_one(JointLetter, cosignature.letter_id)
    if claimed.get("version", {}).get("sha256") != version.sha256:
        return SignatureCheck(cosignature, False, "text hash differs")
    if claimed.get("letter", {}).get("unsigned_sha256") != letter.unsigned_sha256:
        return SignatureCheck(cosignature, False, "letter hash differs")
    if claimed.get("key_fingerprint") != cosignature.key.fingerprint:
        return SignatureCheck(cosignature, False, "key differs")
    if (
        cosignature.key.revoked_at is not None
        and cosignature.signed_at >= cosignature.key.revoked_at
    ):
        return SignatureCheck(cosignature, False, "signed after revocation")
    return SignatureCheck(cosignature, True)


def allowed_signers_line(key: SigningKey) -> str:
    """`org namespaces="cosign@consensus",valid-after=…[,valid-before=…] ssh-ed25519 …`.

    Validity comes from enrolment and revocation, so `ssh-keygen -Overify-time=` accepts a
    statement signed before a revocation and refuses one signed after it."""
    line = sshsig.allowed_signers_line(key.organisation.slug, NAMESPACE, key.public_key)
    principal, rest = line.split(" ", 1)
    options, key_part = rest.split(" ", 1)
    options += f',valid-after="{_ssh_time(key.created_at - timedelta(minutes=1))}"'
    if key.revoked_at is not None:
        options += f',valid-before="{_ssh_time(key.revoked_at)}"'
    return f"{principal} {options} {key_part}"


def ssh_verify_time(cosignature: CoSignature) -> str:
    return _ssh_time(cosignature.signed_at)
