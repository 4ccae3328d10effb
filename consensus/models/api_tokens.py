"""Personal access tokens for the REST API (consensus/api)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.accounts import User
from consensus.models.base import Base, utcnow

SCOPES = ("read", "write")


class ApiToken(Base):
    """A person's token for the API: it acts as that person, never as more.

    Only the SHA-256 of the secret is kept (the secret has 256 bits of entropy, so a fast
    hash is enough); the person sees the secret once, when it is made. `scopes` is "read"
    or "read write"; a token past `expires_at` or with `revoked_at` set no longer counts.
    """

    __tablename__ = "api_token"
    __table_args__ = (
        CheckConstraint("scopes IN ('read', 'read write')", name="scopes_known"),
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
        CheckConstraint("name <> ''", name="name_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the secret, shown in lists so a person can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    def allows(self, scope: str) -> bool:
        return scope in self.scope_list

    def counts_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and moment < self.expires_at

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.prefix}… of {self.user_id}>"
