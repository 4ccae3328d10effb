"""Server-side login sessions: start, check, touch and end them.

The cookie carries a random token; only its SHA-256 is kept here. A session counts while
its row is open, it was used within the idle timeout and it is younger than the absolute
lifetime, so logout, a password change or "log out everywhere else" take effect at once,
even for a copied cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app, has_request_context, request
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import joinedload

from consensus import audit
from consensus.extensions import db
from consensus.models import User, UserSession, utcnow

# Refresh last_seen_at at most this often, so reading pages does not write on every request;
# with a short idle timeout at most a tenth of it, so that an active session never runs out
# (a 1-minute timeout and a refresh once a minute ended it at 60 s despite a request every 20 s).
TOUCH_SECONDS = 60
TOUCH_FRACTION_OF_IDLE = 10


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def idle_timeout() -> timedelta:
    return timedelta(minutes=int(current_app.config["SESSION_IDLE_MINUTES"]))


def max_age() -> timedelta:
    return timedelta(hours=int(current_app.config["SESSION_MAX_HOURS"]))


def touch_interval() -> timedelta:
    """How stale last_seen_at may get before a request refreshes it."""
    return min(timedelta(seconds=TOUCH_SECONDS), idle_timeout() / TOUCH_FRACTION_OF_IDLE)


def is_current(user_session: UserSession, now: datetime | None = None) -> bool:
    """Open, used recently enough, and not older than the absolute lifetime."""
    now = now or utcnow()
    return (
        user_session.ended_at is None
        and now - user_session.last_seen_at < idle_timeout()
        and now - user_session.created_at < max_age()
    )


def start(user: User, *, method: str) -> str:
    """Open a new session for `user` and return the token for the cookie (shown once).

    Stale rows of this user are pruned here, which keeps the table small without cron.
    """
    now = utcnow()
    db.session.execute(
        delete(UserSession).where(
            UserSession.user_id == user.id,
            or_(
                UserSession.ended_at.is_not(None),
                UserSession.last_seen_at < now - idle_timeout(),
                UserSession.created_at < now - max_age(),
            ),
        )
    )
    token = secrets.token_urlsafe(32)
    user_agent = request.headers.get("User-Agent", "") if has_request_context() else "cli"
    origin = (request.remote_addr or "") if has_request_context() else "cli"
    db.session.add(
        UserSession(
            user_id=user.id,
            token_hash=hash_token(token),
            method=method[:40],
            user_agent=user_agent[:200],
            origin=origin[:80],
            created_at=now,
            last_seen_at=now,
        )
    )
    db.session.flush()
    return token


# Built once: every logged-in request runs it, and a statement object that is reused keeps
# its compiled form's cache key (building and keying it again cost as much as running it).
_CURRENT = (
    select(UserSession)
    .where(UserSession.token_hash == bindparam("token_hash"))
    .options(
        joinedload(UserSession.user).joinedload(User.memberships),
        # The header's count of unread messages, in the same statement.
        joinedload(UserSession.user).undefer(User.unread_notices),  # type: ignore[attr-defined]
    )
)


def find_current(token: str | None) -> UserSession | None:
    """The open session for this cookie token, or None if unknown, ended or expired.

    Touches last_seen_at (at most once a minute, see touch_interval) and commits that small
    write itself: it runs from the user loader, before the view has changed anything.
    """
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    # One query for the session, its user and the user's memberships (every request).
    found = (
        db.session.execute(_CURRENT, {"token_hash": hash_token(token)})
        .unique()
        .scalar_one_or_none()
    )
    now = utcnow()
    if found is None or not is_current(found, now):
        return None
    if now - found.last_seen_at >= touch_interval():
        try:
            db.session.execute(
                update(UserSession).where(UserSession.id == found.id).values(last_seen_at=now)
            )
            db.session.commit()
        except OperationalError:
            # SQLite: a read-only request's snapshot went stale under a concurrent writer.
            # The touch is best effort; the next request will make it.
            db.session.rollback()
    return found


def active_sessions(user: User) -> list[UserSession]:
    """The user's sessions that still count, newest first (for the account page)."""
    rows = db.session.execute(
        select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .order_by(UserSession.last_seen_at.desc())
    ).scalars()
    now = utcnow()
    return [row for row in rows if is_current(row, now)]


def end(user_session: UserSession, *, reason: str) -> None:
    if user_session.ended_at is None:
        user_session.ended_at = utcnow()
        user_session.end_reason = reason[:40]
    db.session.flush()


def end_all(user: User, *, reason: str, keep: UserSession | None = None) -> int:
    """End every open session of `user` (but `keep`); returns how many were ended."""
    statement = update(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None)
    )
    if keep is not None:
        statement = statement.where(UserSession.id != keep.id)
    result = db.session.execute(
        statement.values(ended_at=utcnow(), end_reason=reason[:40]).execution_options(
            synchronize_session="fetch"
        )
    )
    db.session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def end_other_sessions(user: User, *, current: UserSession) -> int:
    """ "Log out all other sessions": a security event, audited with the count only."""
    count = end_all(user, reason="ended_by_user", keep=current)
    audit.record(
        "user.other_sessions_ended",
        actor=user,
        object_type="user",
        object_id=user.id,
        payload={"count": count},
    )
    return count
