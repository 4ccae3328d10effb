"""Personal access tokens for the REST API: make, find, revoke.

A token acts as its person and never as more: the API asks the same rule book for the
token's user as the pages ask for a logged-in person. The secret is shown once; only its
SHA-256 is stored. Making a token is announced by the security-notice mail (after commit),
so a person notices a token they did not make. Every make and revoke is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import joinedload

from consensus import audit, events, permissions
from consensus.domain.visible import visible_line
from consensus.extensions import db
from consensus.models import ApiToken, User, utcnow
from consensus.services import accounts
from consensus.services.errors import DomainError, Forbidden, NotFound

PREFIX = "cns_"
EXPIRY_DAYS = (7, 30, 90, 365)
MAX_ACTIVE = 20
# Refresh last_used_at at most this often: reading the API does not write on every request.
TOUCH_SECONDS = 60


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    user: User, *, name: str, scopes: str, days: int, at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Make a token for `user` and return it with its secret (shown once, never stored)."""
    moment = at or utcnow()
    label = visible_line(name, field="name")
    if not label:
        raise DomainError(str(_l("Give the token a name.")), field="name")
    if len(label) > 100:
        raise DomainError(str(_l("Use at most %(n)d characters.", n=100)), field="name")
    if scopes not in {"read", "read write"}:
        raise DomainError(str(_l("Choose what the token may do.")), field="scopes")
    if days not in EXPIRY_DAYS:
        raise DomainError(str(_l("Choose when the token expires.")), field="days")
    active = [t for t in tokens_of(user) if t.counts_at(moment)]
    if len(active) >= MAX_ACTIVE:
        raise DomainError(
            str(_l("You have %(n)d active tokens. Revoke one first.", n=len(active))), field="name"
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=label,
        token_hash=hash_secret(secret),
        prefix=secret[: len(PREFIX) + 6],
        scopes=scopes,
        created_at=moment,
        expires_at=moment + timedelta(days=days),
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        "api_token.created",
        actor=user,
        object_type="api_token",
        object_id=token.id,
        payload={"name": label, "scopes": scopes, "expires_at": token.expires_at.isoformat()},
    )
    # The one call into the security-notice mail path (consensus.notifications), after commit.
    events.record(accounts.security_changed(user, "api_token_created"))
    return token, secret


def revoke_token(token: ApiToken, *, actor: User) -> None:
    """The token's owner or an administrator revokes it; it stops working at once."""
    if token.user_id != actor.id and not permissions.can_administer(actor):
        raise Forbidden(str(_l("You cannot revoke this token.")))
    if token.revoked_at is not None:
        raise DomainError(str(_l("This token was already revoked.")))
    token.revoked_at = utcnow()
    token.revoked_by_id = actor.id
    db.session.flush()
    audit.record(
        "api_token.revoked",
        actor=actor,
        object_type="api_token",
        object_id=token.id,
        payload={"owner": token.user_id, "name": token.name},
    )


def tokens_of(user: User) -> list[ApiToken]:
    """The person's tokens, newest first (revoked and expired ones too, for the record)."""
    return list(
        db.session.execute(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        ).scalars()
    )


def all_tokens() -> list[ApiToken]:
    """Every token with its owner, newest first (administrators' overview)."""
    return list(
        db.session.execute(
            select(ApiToken).options(joinedload(ApiToken.user)).order_by(ApiToken.id.desc())
        ).scalars()
    )


def token_by_id(token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(str(_l("No such token.")))
    return token


_BY_HASH = select(ApiToken).options(joinedload(ApiToken.user).joinedload(User.memberships))


def find_token(secret: str | None) -> ApiToken | None:
    """The token for this secret if it counts now (not revoked, not expired, its person
    active), else None. Touches last_used_at at most once a minute and commits that small
    write itself, like the login session's touch: it runs before the view."""
    if not secret or len(secret) > 100 or not secret.startswith(PREFIX):
        return None
    found = (
        db.session.execute(_BY_HASH.where(ApiToken.token_hash == hash_secret(secret)))
        .unique()
        .scalar_one_or_none()
    )
    now = utcnow()
    if found is None or not found.counts_at(now) or not found.user.active:
        return None
    if found.last_used_at is None or now - found.last_used_at >= timedelta(seconds=TOUCH_SECONDS):
        try:
            db.session.execute(
                update(ApiToken).where(ApiToken.id == found.id).values(last_used_at=now)
            )
            db.session.commit()
        except OperationalError:
            db.session.rollback()  # best effort, as the session touch
    return found
