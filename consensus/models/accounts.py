"""People, their memberships of organisations, and their second factor."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.base import Base, str_enum, utcnow
from consensus.models.organisations import Organisation


class MembershipRole(enum.StrEnum):
    REPRESENTATIVE = "representative"
    OFFICIAL = "official"
    OBSERVER = "observer"


class User(UserMixin, Base):
    __tablename__ = "user_account"
    __table_args__ = (
        # Case-insensitive uniqueness: emails are stored lower-cased (checked) and unique.
        UniqueConstraint("email"),
        CheckConstraint("email <> '' AND email = lower(email)", name="email_lower_not_empty"),
        CheckConstraint("locale IN ('nl', 'en')", name="locale_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(5), default="nl")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_facilitator: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Base32 TOTP secret; set while enrolling, trusted once totp_enabled is true.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last TOTP time step accepted, so a code can never be used twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # Bumped on password change / logout-everywhere: sessions carry it and die when it moves.
    session_generation: Mapped[int] = mapped_column(Integer, default=0)
    # Secret part of the personal calendar feed URL; reset by the user.
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_generation}"

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class Membership(Base):
    """A person's role in one organisation for a period; a representative holds the mandate."""

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("user_id", "organisation_id"),
        CheckConstraint(
            "valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from",
            name="valid_period",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    role: Mapped[MembershipRole] = mapped_column(str_enum(MembershipRole, 20))
    title: Mapped[str] = mapped_column(String(200), default="")
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships")
    organisation: Mapped[Organisation] = relationship(lazy="joined")

    def is_valid_at(self, moment: datetime) -> bool:
        """A membership counts from valid_from (inclusive) until valid_until (exclusive)."""
        if self.valid_from is not None and moment < self.valid_from:
            return False
        return self.valid_until is None or moment < self.valid_until

    def __repr__(self) -> str:
        return f"<Membership {self.user_id}@{self.organisation_id} {self.role}>"


class RecoveryCode(Base):
    """A one-time code to log in when the authenticator is lost; stored hashed."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(128))
    used_at: Mapped[datetime | None]
