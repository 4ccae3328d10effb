"""Each person's choices: per kind of notification, by e-mail at once, in a daily digest,
or not at all (security notices cannot be turned off); the digest's hour and time zone; and
the signed one-click unsubscribe token (RFC 8058) that turns one kind off without a login.
"""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from consensus import audit
from consensus.extensions import db
from consensus.models import (
    Delivery,
    NotificationKind,
    NotificationPreference,
    NotificationSettings,
    User,
)
from consensus.services.errors import DomainError

# What a person gets until they choose otherwise: what asks them to act comes at once,
# news about the process comes in the daily digest.
DEFAULTS: dict[NotificationKind, Delivery] = {
    NotificationKind.ROUND_OPENED: Delivery.IMMEDIATE,
    NotificationKind.DEADLINE: Delivery.IMMEDIATE,
    NotificationKind.REMINDER: Delivery.IMMEDIATE,
    NotificationKind.SIGNING_REQUESTED: Delivery.IMMEDIATE,
    NotificationKind.AMENDMENT_DECIDED: Delivery.IMMEDIATE,
    NotificationKind.COMMENT_REPLY: Delivery.IMMEDIATE,
    NotificationKind.OUTCOME: Delivery.IMMEDIATE,
    NotificationKind.DISPOSITION_SENT: Delivery.IMMEDIATE,
    NotificationKind.NEW_VERSION: Delivery.DIGEST,
    NotificationKind.LETTER_SIGNED: Delivery.DIGEST,
    NotificationKind.PUBLISHED: Delivery.DIGEST,
    NotificationKind.DISPOSITION_PUBLISHED: Delivery.DIGEST,
    NotificationKind.AGENDA_PUBLISHED: Delivery.IMMEDIATE,
    NotificationKind.MEETING_CANCELLED: Delivery.IMMEDIATE,
    NotificationKind.ACTION_OVERDUE: Delivery.IMMEDIATE,
}
SWITCHABLE = tuple(DEFAULTS)

LABELS = {
    NotificationKind.ROUND_OPENED: _l("A round opens in which you can act"),
    NotificationKind.DEADLINE: _l("A deadline approaches and your organisation has not acted"),
    NotificationKind.REMINDER: _l("The facilitator sends a reminder"),
    NotificationKind.SIGNING_REQUESTED: _l("Your signature is requested"),
    NotificationKind.AMENDMENT_DECIDED: _l("An amendment of your organisation is decided"),
    NotificationKind.COMMENT_REPLY: _l("Someone replies to your comment"),
    NotificationKind.OUTCOME: _l("The outcome of an endorsement round is decided"),
    NotificationKind.DISPOSITION_SENT: _l(
        "The proposed disposition of your organisation's amendments asks for its answer"
    ),
    NotificationKind.NEW_VERSION: _l("A new version of a position appears"),
    NotificationKind.LETTER_SIGNED: _l("A joint letter is fully signed"),
    NotificationKind.PUBLISHED: _l("A process is published"),
    NotificationKind.DISPOSITION_PUBLISHED: _l(
        "A disposition report on your organisation's amendments is published"
    ),
    NotificationKind.AGENDA_PUBLISHED: _l("The agenda of a meeting where you hold a seat goes out"),
    NotificationKind.MEETING_CANCELLED: _l("A meeting where you hold a seat is cancelled"),
    NotificationKind.ACTION_OVERDUE: _l("A follow-up action of your organisation is overdue"),
    NotificationKind.SECURITY: _l("Security notices about your account"),
}

DEFAULT_TIME_ZONE = "Europe/Amsterdam"
DEFAULT_DIGEST_HOUR = 8
_SALT = "consensus.notifications.unsubscribe"


def deliveries(user_ids: Iterable[int], kind: NotificationKind) -> dict[int, Delivery]:
    """{user id: how they get `kind`} in one query (security: always at once)."""
    ids = sorted(set(user_ids))
    if kind == NotificationKind.SECURITY:
        return dict.fromkeys(ids, Delivery.IMMEDIATE)
    chosen = dict(
        db.session.execute(
            select(NotificationPreference.user_id, NotificationPreference.delivery).where(
                NotificationPreference.user_id.in_(ids or [0]),
                NotificationPreference.kind == kind,
            )
        ).all()
    )
    return {user_id: chosen.get(user_id, DEFAULTS[kind]) for user_id in ids}


def preferences_of(user: User) -> dict[NotificationKind, Delivery]:
    chosen = dict(
        db.session.execute(
            select(NotificationPreference.kind, NotificationPreference.delivery).where(
                NotificationPreference.user_id == user.id
            )
        ).all()
    )
    return {kind: chosen.get(kind, default) for kind, default in DEFAULTS.items()}


def settings_of(user_id: int) -> NotificationSettings:
    """The person's digest settings (a transient default row when they chose nothing)."""
    found = db.session.get(NotificationSettings, user_id)
    return found or NotificationSettings(
        user_id=user_id, digest_hour=DEFAULT_DIGEST_HOUR, time_zone=DEFAULT_TIME_ZONE
    )


def time_zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


def _set(user: User, kind: NotificationKind, delivery: Delivery) -> bool:
    row = db.session.execute(
        select(NotificationPreference).where(
            NotificationPreference.user_id == user.id, NotificationPreference.kind == kind
        )
    ).scalar_one_or_none()
    current = row.delivery if row is not None else DEFAULTS[kind]
    if row is None:
        db.session.add(NotificationPreference(user_id=user.id, kind=kind, delivery=delivery))
    else:
        row.delivery = delivery
    return current != delivery


def save_preferences(
    user: User,
    *,
    choices: dict[str, str],
    digest_hour: int,
    time_zone: str,
) -> None:
    """The person's own choices from the preferences page. Unknown kinds or values are
    refused (nothing changes); security notices are not among the choices."""
    parsed: dict[NotificationKind, Delivery] = {}
    for kind in SWITCHABLE:
        raw = choices.get(kind.value, DEFAULTS[kind].value)
        try:
            parsed[kind] = Delivery(raw)
        except ValueError as error:
            raise DomainError(
                str(_l("Choose how you want to receive this.")), field=kind.value
            ) from error
    if not 0 <= digest_hour <= 23:
        raise DomainError(str(_l("Choose an hour between 0 and 23.")), field="digest_hour")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise DomainError(
            str(_l("Choose a time zone from the list.")), field="time_zone"
        ) from error
    changed = {
        kind.value: delivery.value
        for kind, delivery in parsed.items()
        if _set(user, kind, delivery)
    }
    settings = db.session.get(NotificationSettings, user.id)
    if settings is None:
        settings = NotificationSettings(user_id=user.id, digest_hour=DEFAULT_DIGEST_HOUR)
        settings.time_zone = DEFAULT_TIME_ZONE
        db.session.add(settings)
    if (settings.digest_hour, settings.time_zone) != (digest_hour, time_zone):
        changed["digest"] = f"{digest_hour:02d}:00 {time_zone}"
    settings.digest_hour, settings.time_zone = digest_hour, time_zone
    if changed:
        audit.record(
            "notification.preferences_changed",
            actor=user,
            object_type="user",
            object_id=user.id,
            payload={"changes": changed},
        )
    db.session.flush()


# --- One-click unsubscribe (RFC 8058) --------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def unsubscribe_token(user_id: int, kind: NotificationKind) -> str:
    """A signed token naming one person and one kind: it can only turn that kind off."""
    return _serializer().dumps([user_id, kind.value])


def read_unsubscribe_token(token: str) -> tuple[User, NotificationKind] | None:
    try:
        user_id, raw_kind = _serializer().loads(token)
        kind = NotificationKind(raw_kind)
    except (BadSignature, ValueError, TypeError):
        return None
    if kind not in DEFAULTS:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active:
        return None
    return user, kind


def unsubscribe(user: User, kind: NotificationKind) -> None:
    """Turn one kind off for this person (the one-click link): nothing else changes.
    Doing it twice is harmless."""
    if _set(user, kind, Delivery.OFF):
        audit.record(
            "notification.unsubscribed",
            actor=user,
            object_type="user",
            object_id=user.id,
            payload={"kind": kind.value},
        )
    db.session.flush()


def give_defaults(users: Iterable[User]) -> int:
    """Settings rows with the defaults (digest at 08:00 Amsterdam time) for people who have
    none yet, e.g. the demo world's; their per-kind choices stay the defaults (DEFAULTS).
    Returns how many were added."""
    ids = sorted({u.id for u in users})
    have = set(
        db.session.execute(
            select(NotificationSettings.user_id).where(NotificationSettings.user_id.in_(ids or [0]))
        ).scalars()
    )
    added = [
        NotificationSettings(
            user_id=user_id, digest_hour=DEFAULT_DIGEST_HOUR, time_zone=DEFAULT_TIME_ZONE
        )
        for user_id in ids
        if user_id not in have
    ]
    db.session.add_all(added)
    db.session.flush()
    return len(added)
