"""Server-side login sessions and password-reset tokens.

Flask's session is a signed cookie: it cannot be revoked, so a copied cookie would stay
valid until the secret key changes. Each login therefore gets a row here; the cookie holds
only a random token whose SHA-256 is stored, and a request is authenticated only while its
row is open and neither idle nor too old. Reset tokens are stored the same way (hashed), so
a database leak does not hand out working links.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.accounts import User
from consensus.models.base import Base, utcnow


class UserSession(Base):
    """One login on one device; ended by logout, password change, expiry or an admin."""

    __tablename__ = "user_session"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 (hex) of the random token in the cookie; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(40), default="password")
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    origin: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(40))

    user: Mapped[User] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<UserSession {self.id} user={self.user_id}>"


class PasswordResetToken(Base):
    """A single-use, time-limited link to set a new password, sent by e-mail."""

    __tablename__ = "password_reset_token"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")
