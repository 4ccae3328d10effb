"""E-mail notifications: the outbox, each person's preferences, and what the clock warned.

The in-app inbox is the `notice` table (models.processes.Notice); a notification writes a
notice for the inbox and, depending on the person's preference, a mail in the outbox
(`outgoing_mail`) in the same transaction as the change that caused it.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column

from consensus.models.accounts import User
from consensus.models.base import Base, str_enum, utcnow
from consensus.models.processes import Notice


class NotificationKind(enum.StrEnum):
    ROUND_OPENED = "round_opened"
    DEADLINE = "deadline_approaching"
    REMINDER = "reminder"
    NEW_VERSION = "new_version"
    AMENDMENT_DECIDED = "amendment_decided"
    COMMENT_REPLY = "comment_reply"
    OUTCOME = "outcome_decided"
    SIGNING_REQUESTED = "signing_requested"
    LETTER_SIGNED = "letter_signed"
    PUBLISHED = "process_published"
    DISPOSITION_SENT = "disposition_sent"
    DISPOSITION_PUBLISHED = "disposition_published"
    AGENDA_PUBLISHED = "agenda_published"
    MEETING_CANCELLED = "meeting_cancelled"
    ACTION_OVERDUE = "action_overdue"
    SECURITY = "security"


class Delivery(enum.StrEnum):
    IMMEDIATE = "immediate"
    DIGEST = "digest"
    OFF = "off"


class MailState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DEAD = "dead"


class OutgoingMail(Base):
    """One message to one address, complete as it will be sent (the outbox row).

    Written in the transaction of the change that caused it; the worker (`flask notifications
    deliver`) claims it, sends it, and marks it sent, or retries later with back-off and
    gives up (dead) after too many failures. The Message-ID is fixed when the row is made, so
    a retry is the same message."""

    __tablename__ = "outgoing_mail"
    __table_args__ = (
        UniqueConstraint("message_id"),
        Index("ix_outgoing_mail_due", "state", "next_attempt_at"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(254))
    message_id: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(5), default="nl")
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, default="")
    calendar: Mapped[str | None] = mapped_column(Text)
    unsubscribe_url: Mapped[str | None] = mapped_column(String(600))
    state: Mapped[MailState] = mapped_column(str_enum(MailState, 10), default=MailState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class NotificationPreference(Base):
    """How one person wants one kind of notification by e-mail (absent: the default)."""

    __tablename__ = "notification_preference"
    __table_args__ = (
        UniqueConstraint("user_id", "kind"),
        CheckConstraint("kind <> 'security'", name="security_not_switchable"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(str_enum(NotificationKind, 40))
    delivery: Mapped[Delivery] = mapped_column(str_enum(Delivery, 10))


class NotificationSettings(Base):
    """When a person's daily digest goes out: an hour in their own time zone."""

    __tablename__ = "notification_settings"
    __table_args__ = (CheckConstraint("digest_hour BETWEEN 0 AND 23", name="digest_hour_valid"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    digest_hour: Mapped[int] = mapped_column(Integer, default=8)
    time_zone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    last_digest_at: Mapped[datetime | None]


class ProcessNotificationSettings(Base):
    """Per process: how many days before a round's deadline the people who still have to
    act are warned (comma-separated whole days, e.g. "3,1")."""

    __tablename__ = "process_notification_settings"

    process_id: Mapped[int] = mapped_column(
        ForeignKey("process.id", ondelete="CASCADE"), primary_key=True
    )
    deadline_warning_days: Mapped[str] = mapped_column(String(40), default="3,1")


class DeadlineWarning(Base):
    """The clock warned about this round's deadline this many days before: once only."""

    __tablename__ = "deadline_warning"
    __table_args__ = (UniqueConstraint("round_id", "days_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"))
    days_before: Mapped[int] = mapped_column(Integer)
    warned_at: Mapped[datetime] = mapped_column(default=utcnow)


# The header's unread count comes with the user row the request loads anyway (undeferred by
# services.sessions), so it costs no statement of its own.
User.unread_notices = column_property(  # type: ignore[attr-defined]
    select(func.count(Notice.id))
    .where(and_(Notice.user_id == User.id, Notice.read_at.is_(None)))
    .correlate_except(Notice)
    .scalar_subquery(),
    deferred=True,
)
