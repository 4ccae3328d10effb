"""Signing keys per organisation: custody (signer-held or platform-held), enrolment,
rotation, revocation, and the platform-held Ed25519 keys sealed with the KEK."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consensus import audit, permissions
from consensus.crypto import sshsig
from consensus.crypto.keystore import load_kek, open_ed25519, seal
from consensus.extensions import db
from consensus.models import (
    KeyCustody,
    Organisation,
    SigningKey,
    SigningSettings,
    User,
    utcnow,
)
from consensus.services.errors import DomainError, Forbidden

if TYPE_CHECKING:  # cryptography is loaded where a key is made or used (lean web workers)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DEFAULT_CUSTODY = KeyCustody.SIGNER_HELD
CUSTODY_LABELS = {
    KeyCustody.SIGNER_HELD: _l("Signer-held: representatives sign with their own SSH key"),
    KeyCustody.PLATFORM_HELD: _l(
        "Platform-held: the platform keeps the key and signs after re-authentication"
    ),
}


def _kek() -> bytes:
    return load_kek(current_app.config["KEY_ENCRYPTION_KEY"], current_app.instance_path)


def _can_manage_keys(actor: User, organisation: Organisation) -> bool:
    """Administrators, and whoever holds the organisation's mandate now."""
    return permissions.can_administer(actor) or permissions.holds_mandate(actor, organisation)


def custody_of(organisation: Organisation) -> KeyCustody:
    settings = db.session.get(SigningSettings, organisation.id)
    return settings.custody if settings is not None else DEFAULT_CUSTODY


def set_custody(organisation: Organisation, custody: KeyCustody, *, actor: User) -> None:
    """The administrator decides who holds the organisation's key. Switching to
    platform-held generates a key; switching away retires it (its signatures stay)."""
    if not permissions.can_administer(actor):
        raise Forbidden(str(_l("Only an administrator may do this.")))
    custody = KeyCustody(custody)
    settings = db.session.get(SigningSettings, organisation.id)
    before = settings.custody.value if settings is not None else None
    if settings is None:
        settings = SigningSettings(organisation_id=organisation.id, custody=custody)
        db.session.add(settings)
    settings.custody = custody
    settings.updated_at = utcnow()
    settings.updated_by_id = actor.id
    db.session.flush()
    audit.record(
        "signing.custody_set",
        actor=actor,
        object_type="organisation",
        object_id=organisation.id,
        organisation_id=organisation.id,
        payload={"before": before, "custody": custody.value},
    )
    if custody == KeyCustody.PLATFORM_HELD and platform_key(organisation) is None:
        create_platform_key(organisation, actor=actor)
    if custody == KeyCustody.SIGNER_HELD:
        current = platform_key(organisation)
        if current is not None:
            _retire(current, actor=actor)


def keys_of(organisation: Organisation) -> list[SigningKey]:
    return list(
        db.session.execute(
            select(SigningKey)
            .where(SigningKey.organisation_id == organisation.id)
            .order_by(SigningKey.created_at.desc(), SigningKey.id.desc())
        ).scalars()
    )


def platform_key(organisation: Organisation) -> SigningKey | None:
    return db.session.execute(
        select(SigningKey).where(
            SigningKey.organisation_id == organisation.id,
            SigningKey.custody == KeyCustody.PLATFORM_HELD,
            SigningKey.retired_at.is_(None),
            SigningKey.revoked_at.is_(None),
        )
    ).scalar_one_or_none()


def keys_held_by(user: User, organisation: Organisation) -> list[SigningKey]:
    """The signer-held keys in use that `user` enrolled for `organisation`."""
    return list(
        db.session.execute(
            select(SigningKey)
            .where(
                SigningKey.organisation_id == organisation.id,
                SigningKey.holder_id == user.id,
                SigningKey.custody == KeyCustody.SIGNER_HELD,
                SigningKey.retired_at.is_(None),
                SigningKey.revoked_at.is_(None),
            )
            .order_by(SigningKey.id.desc())
        ).scalars()
    )


def _key_associated_data(key: SigningKey) -> bytes:
    return f"org-signing-key:{key.organisation_id}:{key.id}".encode()


def _audit_key(action: str, key: SigningKey, actor: User | None, **extra: object) -> None:
    audit.record(
        action,
        actor=actor,
        object_type="signing_key",
        object_id=key.id,
        organisation_id=key.organisation_id,
        payload={
            "custody": key.custody.value,
            "fingerprint": key.fingerprint,
            "public_key": key.public_key,
            **extra,
        },
    )


def create_platform_key(
    organisation: Organisation, *, actor: User | None, replaces: SigningKey | None = None
) -> SigningKey:
    """A fresh Ed25519 key; the private half is sealed to this row before it is stored."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    blob = sshsig.public_key_blob(private.public_key())
    key = SigningKey(
        organisation_id=organisation.id,
        custody=KeyCustody.PLATFORM_HELD,
        key_type=sshsig.ED25519,
        public_key=sshsig.openssh_public_key_line(private.public_key()),
        fingerprint=sshsig.fingerprint(blob),
        label=str(_l("Platform-held key")),
        sealed_private_key="pending",
        created_by_id=actor.id if actor else None,
        created_at=utcnow(),
    )
    db.session.add(key)
    db.session.flush()  # the id is part of the associated data
    key.sealed_private_key = seal(_kek(), private.private_bytes_raw(), _key_associated_data(key))
    db.session.flush()
    _audit_key(
        "signing_key.created", key, actor, replaces=replaces.id if replaces is not None else None
    )
    return key


def enrol_key(
    organisation: Organisation, *, actor: User, public_key_line: str, label: str = ""
) -> SigningKey:
    """A representative enrols their own SSH key (ssh-ed25519 or sk-ssh-ed25519)."""
    if custody_of(organisation) != KeyCustody.SIGNER_HELD:
        raise DomainError(str(_l("This organisation's key is held by the platform.")))
    if not permissions.holds_mandate(actor, organisation):
        raise Forbidden(
            str(_l("Only a representative with the organisation's mandate may do this."))
        )
    try:
        key_type, blob, comment = sshsig.parse_openssh_public_key(public_key_line)
    except sshsig.KeyFormatError as error:
        raise DomainError(
            str(_l("This is not an SSH Ed25519 public key: %(why)s", why=str(error))),
            field="public_key",
        ) from error
    fingerprint = sshsig.fingerprint(blob)
    exists = db.session.execute(
        select(SigningKey.id).where(
            SigningKey.organisation_id == organisation.id, SigningKey.fingerprint == fingerprint
        )
    ).first()
    if exists is not None:
        raise DomainError(str(_l("This key is already enrolled.")), field="public_key")
    key = SigningKey(
        organisation_id=organisation.id,
        custody=KeyCustody.SIGNER_HELD,
        key_type=key_type,
        public_key=f"{key_type} {base64.b64encode(blob).decode()}",
        fingerprint=fingerprint,
        label=(label.strip() or comment)[:120],
        holder_id=actor.id,
        created_by_id=actor.id,
        created_at=utcnow(),
    )
    db.session.add(key)
    db.session.flush()
    _audit_key("signing_key.enrolled", key, actor, key_type=key_type)
    return key


def _retire(key: SigningKey, *, actor: User | None) -> None:
    key.retired_at = utcnow()
    db.session.flush()
    _audit_key("signing_key.retired", key, actor)


def rotate_key(
    key: SigningKey, *, actor: User, public_key_line: str = "", label: str = ""
) -> SigningKey:
    """Replace a key in use by a new one; the old key stays valid for old signatures."""
    organisation = key.organisation
    if not _can_manage_keys(actor, organisation):
        raise Forbidden(str(_l("You may not manage this organisation's keys.")))
    if not key.in_use:
        raise DomainError(str(_l("Only a key in use can be rotated.")))
    if key.custody == KeyCustody.PLATFORM_HELD:
        _retire(key, actor=actor)
        return create_platform_key(organisation, actor=actor, replaces=key)
    if key.holder_id != actor.id:
        raise Forbidden(str(_l("Only the holder of a key can replace it.")))
    new = enrol_key(organisation, actor=actor, public_key_line=public_key_line, label=label)
    _retire(key, actor=actor)
    return new


def revoke_key(key: SigningKey, *, actor: User, reason: str) -> None:
    """Stop trusting a key (lost, compromised). Signatures made with it stay, flagged."""
    if not _can_manage_keys(actor, key.organisation):
        raise Forbidden(str(_l("You may not manage this organisation's keys.")))
    if key.revoked_at is not None:
        raise DomainError(str(_l("This key is already revoked.")))
    reason = reason.strip()
    if not reason:
        raise DomainError(str(_l("Give the reason for the revocation.")), field="reason")
    key.revoked_at = utcnow()
    key.revoked_by_id = actor.id
    key.revocation_reason = reason[:2000]
    db.session.flush()
    _audit_key("signing_key.revoked", key, actor, reason=key.revocation_reason)


def _platform_private_key(key: SigningKey) -> Ed25519PrivateKey:
    assert key.sealed_private_key is not None
    return open_ed25519(_kek(), key.sealed_private_key, _key_associated_data(key))
