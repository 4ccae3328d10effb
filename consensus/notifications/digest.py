"""The daily digest: notices a person chose to get "in a daily digest" wait (digest =
"waiting") until their digest hour in their own time zone; the worker then writes one mail
with all of them and marks them sent, in one transaction per person.

A digest at 08:00 holds what arrived before 08:00; what arrives later waits for the next
day. Two workers cannot send the same notices twice: the notices are locked (FOR UPDATE
SKIP LOCKED on PostgreSQL) and only the ones still waiting are taken.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import force_locale, ngettext
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from consensus.extensions import db
from consensus.models import (
    MailState,
    Notice,
    NotificationSettings,
    OutgoingMail,
    User,
    utcnow,
)
from consensus.notifications import compose, preferences


def latest_digest_moment(now: datetime, hour: int, time_zone: str) -> datetime:
    """The most recent moment (UTC) at which this person's digest was due."""
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    moment = datetime(local.year, local.month, local.day, hour, tzinfo=zone)
    if moment > local:
        day = local.date() - timedelta(days=1)
        moment = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
    return moment.astimezone(now.tzinfo)


def compose_due(now: datetime | None = None) -> int:
    """Write the digests that are due; returns how many."""
    now = now or utcnow()
    written = 0
    with Session(db.engine) as session:
        waiting = sorted(
            set(session.execute(select(Notice.user_id).where(Notice.digest == "waiting")).scalars())
        )
        session.rollback()
        for user_id in waiting:
            try:
                if _compose_for(session, user_id, now):
                    written += 1
            except OperationalError:
                # SQLite: another worker wrote meanwhile (a stale snapshot); it composed
                # this digest, or the next pass will.
                session.rollback()
    return written


def _compose_for(session: Session, user_id: int, now: datetime) -> bool:
    settings = session.get(NotificationSettings, user_id)
    hour = settings.digest_hour if settings else preferences.DEFAULT_DIGEST_HOUR
    zone = settings.time_zone if settings else preferences.DEFAULT_TIME_ZONE
    due_before = latest_digest_moment(now, hour, zone)
    notices = (
        session.execute(
            select(Notice)
            .where(
                Notice.user_id == user_id,
                Notice.digest == "waiting",
                Notice.created_at <= due_before,
            )
            .order_by(Notice.created_at, Notice.id)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    user = session.get(User, user_id)
    if not notices or user is None:
        session.rollback()
        return False
    if not user.active:
        for notice in notices:
            notice.digest = "dropped"
        session.commit()
        return False
    base = compose.absolute_url("main.index").rstrip("/")
    items = [(n.message, f"{base}{n.link}" if n.link else "", n.created_at) for n in notices]
    with force_locale(user.locale):
        subject = ngettext(
            "Consensus: your daily summary (%(num)d message)",
            "Consensus: your daily summary (%(num)d messages)",
            len(items),
        )
        text, html = compose.render_digest(
            items,
            language=user.locale,
            name=user.display_name,
            preferences_url=compose.absolute_url("notifications.preferences"),
        )
    session.add(
        OutgoingMail(
            user_id=user.id,
            kind="digest",
            recipient=user.email,
            message_id=compose.new_message_id(),
            language=user.locale,
            subject=subject,
            body_text=text,
            body_html=html,
            state=MailState.QUEUED,
            attempts=0,
            next_attempt_at=now,
            last_error="",
            created_at=now,
        )
    )
    for notice in notices:
        notice.digest = "sent"
    if settings is not None:
        settings.last_digest_at = now
    session.commit()
    return True
