"""Identity: organisations' OpenID providers, the links of their people to our accounts, and
passkeys. Accounts, memberships and mandates stay ours: nothing here grants a role."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.accounts import User
from consensus.models.base import Base, str_enum, utcnow
from consensus.models.organisations import Organisation


class IdentityProvider(Base):
    """An organisation's OpenID provider (NL GOV Assurance profile for OIDC). The client
    secret is sealed with the key-encryption key (consensus.crypto.keystore)."""

    __tablename__ = "identity_provider"
    __table_args__ = (
        UniqueConstraint("organisation_id"),
        CheckConstraint("issuer <> ''", name="issuer_not_empty"),
        CheckConstraint("client_id <> ''", name="client_id_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(200))
    sealed_client_secret: Mapped[str] = mapped_column(Text)
    # Lower-case domains, one space between them: e-mail addresses the provider may vouch for.
    allowed_domains: Mapped[str] = mapped_column(String(1000), default="")
    required_acr: Mapped[str | None] = mapped_column(String(200))
    # Members of the organisation may not log in with a password (platform admins may).
    sso_required: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship(lazy="joined")

    @property
    def domains(self) -> list[str]:
        return self.allowed_domains.split()


class LinkStatus(enum.StrEnum):
    PENDING = "pending"  # waits for an administrator
    LINKED = "linked"
    REJECTED = "rejected"


class ExternalIdentity(Base):
    """A person at an organisation's provider (issuer + subject), linked to one account of
    ours, or waiting for an administrator to link it."""

    __tablename__ = "external_identity"
    __table_args__ = (
        UniqueConstraint("provider_id", "subject"),
        CheckConstraint("status <> 'linked' OR user_id IS NOT NULL", name="linked_has_account"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("identity_provider.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[LinkStatus] = mapped_column(str_enum(LinkStatus, 20))
    email: Mapped[str] = mapped_column(String(254), default="")
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    provider: Mapped[IdentityProvider] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship()


class Passkey(Base):
    """A WebAuthn credential of one account: a second factor, a passwordless login and
    the re-authentication before signing."""

    __tablename__ = "passkey"
    __table_args__ = (
        UniqueConstraint("credential_id"),
        CheckConstraint("name <> ''", name="name_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1024))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(80))
    transports: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
