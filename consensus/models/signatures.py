"""Co-signing: organisations' signing keys and certificates, co-signatures, the joint letter.

Private keys the platform holds (platform-held SSH keys, the CA, organisation certificates)
are stored sealed with the key-encryption key, never in plain text. Rows are never deleted:
a rotated key is retired, a revoked key is flagged, a withdrawn signature keeps its bytes,
so every signature ever made stays verifiable and explainable.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.accounts import User
from consensus.models.base import Base, str_enum, utcnow
from consensus.models.organisations import Organisation
from consensus.models.positions import Version


class KeyCustody(enum.StrEnum):
    """Who holds an organisation's signing key: its representatives, or the platform."""

    SIGNER_HELD = "signer_held"
    PLATFORM_HELD = "platform_held"


class CertificateSource(enum.StrEnum):
    PLATFORM_CA = "platform_ca"
    UPLOADED = "uploaded"


class SigningSettings(Base):
    """The custody mode an administrator chose for one organisation."""

    __tablename__ = "signing_settings"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), primary_key=True
    )
    custody: Mapped[KeyCustody] = mapped_column(str_enum(KeyCustody))
    # The PDF signature made remotely at the organisation's (qualified) trust service
    # provider through the Cloud Signature Consortium API instead of with a certificate
    # the platform holds (docs/signing.md). The access token is sealed with the KEK.
    csc_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    csc_service_url: Mapped[str] = mapped_column(String(500), default="")
    csc_credential_id: Mapped[str] = mapped_column(String(300), default="")
    csc_sealed_token: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )


class SigningKey(Base):
    """An SSH Ed25519 key that signs statements for one organisation.

    Signer-held keys belong to the representative who enrolled them (`holder_id`); the
    platform only knows the public half. A platform-held key has no holder and its private
    half is sealed. At most one platform-held key of an organisation is in use at a time.
    """

    __tablename__ = "signing_key"
    __table_args__ = (
        UniqueConstraint("organisation_id", "fingerprint"),
        CheckConstraint(
            "(custody = 'platform_held') = (sealed_private_key IS NOT NULL)",
            name="sealed_only_when_platform_held",
        ),
        CheckConstraint(
            "custody = 'platform_held' OR holder_id IS NOT NULL", name="signer_held_has_holder"
        ),
        Index(
            "uq_signing_key_one_platform_key",
            "organisation_id",
            unique=True,
            sqlite_where=text(
                "custody = 'platform_held' AND retired_at IS NULL AND revoked_at IS NULL"
            ),
            postgresql_where=text(
                "custody = 'platform_held' AND retired_at IS NULL AND revoked_at IS NULL"
            ),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    custody: Mapped[KeyCustody] = mapped_column(str_enum(KeyCustody))
    key_type: Mapped[str] = mapped_column(String(40))
    # "ssh-ed25519 AAAA…" without a comment: what allowed_signers and verification use.
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(120), default="")
    sealed_private_key: Mapped[str | None] = mapped_column(Text)
    holder_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Rotation: replaced by a newer key; old signatures stay valid and unflagged.
    retired_at: Mapped[datetime | None]
    # Revocation: no longer trusted from this moment; earlier signatures are flagged.
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    revocation_reason: Mapped[str] = mapped_column(Text, default="")

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    holder: Mapped[User | None] = relationship(foreign_keys=[holder_id], lazy="joined")

    @property
    def in_use(self) -> bool:
        return self.retired_at is None and self.revoked_at is None


class CertificateAuthority(Base):
    """The platform's own CA (ECDSA P-256) that issues organisation certificates."""

    __tablename__ = "signing_ca"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))
    certificate_pem: Mapped[str] = mapped_column(Text)
    sealed_private_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


class OrganisationCertificate(Base):
    """The X.509 certificate an organisation's PDF signatures carry (one in use at a time)."""

    __tablename__ = "organisation_certificate"
    __table_args__ = (
        Index(
            "uq_organisation_certificate_one_current",
            "organisation_id",
            unique=True,
            sqlite_where=text("retired_at IS NULL"),
            postgresql_where=text("retired_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    source: Mapped[CertificateSource] = mapped_column(str_enum(CertificateSource))
    ca_id: Mapped[int | None] = mapped_column(ForeignKey("signing_ca.id", ondelete="RESTRICT"))
    certificate_pem: Mapped[str] = mapped_column(Text)
    # Intermediate certificates of an uploaded PKCS#12, PEM, in order.
    chain_pem: Mapped[str] = mapped_column(Text, default="")
    sealed_private_key: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(300))
    serial: Mapped[str] = mapped_column(String(60))
    sha256: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]
    # Revoked by an administrator (key lost or compromised): listed on the CA's CRL from
    # then on; the organisation cannot sign with it any more.
    revoked_at: Mapped[datetime | None]
    revocation_reason: Mapped[str] = mapped_column(Text, default="")

    organisation: Mapped[Organisation] = relationship(lazy="joined")


class JointLetter(Base):
    """The joint letter of one signing round: the unsigned PDF the statements name by
    hash, and the current signed PDF (one incremental PAdES signature per organisation).

    The row is the lock that serialises signers: every change to `signed_pdf` first
    locks it, so no signature is ever lost to a concurrent one.
    """

    __tablename__ = "joint_letter"
    __table_args__ = (CheckConstraint("length(unsigned_sha256) = 64", name="sha256_hex"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(
        ForeignKey("process.id", ondelete="CASCADE"), index=True
    )
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), unique=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("position_version.id", ondelete="RESTRICT"))
    unsigned_pdf: Mapped[bytes] = mapped_column(LargeBinary)
    unsigned_sha256: Mapped[str] = mapped_column(String(64))
    # Where each organisation's signature goes: {"slug": [page, x1, y1, x2, y2]} in PDF
    # points, measured when the letter was laid out.
    signature_boxes: Mapped[str] = mapped_column(Text, default="{}")
    signed_pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    # How many times the signed PDF was written (a signature added, or rebuilt after a
    # withdrawal); also bumped to take the row lock before reading it.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]
    # When the final letter got its validation data and document timestamp (PAdES B-LTA).
    sealed_at: Mapped[datetime | None]

    version: Mapped[Version] = relationship(lazy="joined")


class CoSignature(Base):
    """One organisation's signature over one statement about one exact version.

    `statement` holds the exact signed bytes; names are snapshots, so the record never
    changes when a profile does. Withdrawal keeps the row (and its bytes).
    """

    __tablename__ = "co_signature"
    __table_args__ = (
        Index(
            "uq_co_signature_one_current",
            "round_id",
            "organisation_id",
            unique=True,
            sqlite_where=text("withdrawn_at IS NULL"),
            postgresql_where=text("withdrawn_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(
        ForeignKey("process.id", ondelete="CASCADE"), index=True
    )
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    version_id: Mapped[int] = mapped_column(ForeignKey("position_version.id", ondelete="RESTRICT"))
    letter_id: Mapped[int] = mapped_column(ForeignKey("joint_letter.id", ondelete="RESTRICT"))
    key_id: Mapped[int] = mapped_column(ForeignKey("signing_key.id", ondelete="RESTRICT"))
    signer_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    signer_name: Mapped[str] = mapped_column(String(120))
    signer_title: Mapped[str] = mapped_column(String(200), default="")
    custody: Mapped[KeyCustody] = mapped_column(str_enum(KeyCustody))
    statement: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    key: Mapped[SigningKey] = relationship(lazy="joined")

    @property
    def is_current(self) -> bool:
        return self.withdrawn_at is None
