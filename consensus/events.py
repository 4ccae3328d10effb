"""Domain events: recorded in the transaction, handled after its COMMIT.

A service that changes something others may want to react to (mail, later webhooks and
e-mail notifications) records a small event with `events.record(...)`. The event waits in
the SQLAlchemy session (`session.info`) until the transaction ends:

- COMMIT: every handler registered for the event's type runs once, in order, outside the
  transaction (the change is durable before anyone is told);
- ROLLBACK (or a session closed without commit): the events are dropped, so nothing is
  announced that did not happen; a rolled-back SAVEPOINT drops only what was recorded
  inside it.

Handlers are registered in create_app (consensus.hooks) with `on(app, EventType, handler)`.
A handler that fails is logged and never breaks the request: the change stands.

Writers (`within(app, EventType, writer)`) are the other side: they run inside the
transaction, as the event is recorded, and write rows that commit or roll back with the
change — the notification outbox (consensus.notifications) is written this way, so a
message exists exactly when its cause does.

Handlers get plain values, never ORM objects: after COMMIT the session's objects are
expired and the session cannot run SQL inside the `after_commit` hook. A handler that
needs the database reads it in a session of its own. In-app notices (`Notice` rows) and
the e-mail outbox are written in the same transaction as the change, by the services or by
the notification writers, for the people the rule book names (permissions.who_can_act).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from consensus.extensions import db
from consensus.models import utcnow

log = logging.getLogger(__name__)

_PENDING = "consensus.events"
_EXTENSION = "consensus.events"
_WRITERS = "consensus.events.within"
_AFTER_EACH = "consensus.events.after_each_commit"

Handler = Callable[[Any], None]


# --- The events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base of every domain event: when it happened (UTC)."""

    at: datetime = field(default_factory=utcnow, kw_only=True)


@dataclass(frozen=True)
class SecurityChanged(Event):
    """Something security-relevant changed on an account (ASVS 2.2.3 / 2.5.5): the
    holder is told by e-mail. `change`: password_changed, password_reset, totp_enabled,
    totp_disabled, recovery_codes."""

    user_id: int
    email: str
    display_name: str
    locale: str
    change: str


@dataclass(frozen=True)
class RoundOpened(Event):
    round_id: int
    process_id: int
    round_type: str


@dataclass(frozen=True)
class RoundClosed(Event):
    round_id: int
    process_id: int
    round_type: str


@dataclass(frozen=True)
class ReminderSent(Event):
    """The facilitator reminded the people who can act (the rule book's query) for the
    organisations that have not acted yet."""

    round_id: int
    process_id: int
    people: tuple[tuple[int, int], ...]  # (user_id, organisation_id)


@dataclass(frozen=True)
class VersionPublished(Event):
    version_id: int
    position_id: int
    process_id: int
    number: int


@dataclass(frozen=True)
class AmendmentDecided(Event):
    amendment_id: int
    position_id: int
    state: str


@dataclass(frozen=True)
class DeadlineApproaching(Event):
    """The clock (`rounds tick`) found a round's deadline this many days away; `people`
    are the ones who can act for the organisations that have not acted yet."""

    round_id: int
    process_id: int
    days_before: int
    people: tuple[tuple[int, int], ...]  # (user_id, organisation_id)


@dataclass(frozen=True)
class CommentReplied(Event):
    comment_id: int
    parent_id: int
    version_id: int


@dataclass(frozen=True)
class CoSigned(Event):
    """An organisation co-signed the letter of a signing round."""

    round_id: int
    process_id: int
    organisation_id: int


@dataclass(frozen=True)
class ProcessPublished(Event):
    process_id: int


@dataclass(frozen=True)
class DispositionSent(Event):
    """The facilitator sent a round's proposed disposition to the contributing
    organisations (services.drafting.send_disposition): they agree or contest it."""

    round_id: int
    process_id: int


@dataclass(frozen=True)
class DispositionFeedbackDue(Event):
    """The clock (`rounds tick`) found a feedback period on a proposed disposition about to
    end; `people` can answer for the organisations that have not answered every item."""

    round_id: int
    process_id: int
    people: tuple[tuple[int, int], ...]  # (user_id, organisation_id)


@dataclass(frozen=True)
class DispositionPublished(Event):
    """A round's disposition report reached its publication time (found by the clock)."""

    round_id: int
    process_id: int


@dataclass(frozen=True)
class AgendaPublished(Event):
    """A meeting's agenda went to the members: by its secretary, or by the clock when its
    notice period began (`actor_id` None)."""

    meeting_id: int
    body_id: int
    actor_id: int | None


@dataclass(frozen=True)
class MeetingCancelled(Event):
    meeting_id: int
    body_id: int
    actor_id: int | None


@dataclass(frozen=True)
class ActionOverdue(Event):
    """The clock found a follow-up action past its due date (once per action); `people`
    are the rule book's who_reports_on, with the owner organisation."""

    action_id: int
    people: tuple[tuple[int, int | None], ...]  # (user_id, organisation_id)


# --- Recording and dispatching ------------------------------------------------------------------


def record(domain_event: Event, session: Session | None = None) -> None:
    """Keep `domain_event` until the current transaction ends (see the module)."""
    session = session if session is not None else db.session()
    if not session.in_transaction():
        session.begin()  # the event belongs to a transaction: its commit tells, its rollback drops
    pending: list[tuple[SessionTransaction | None, Event]] = session.info.setdefault(_PENDING, [])
    pending.append((session.get_nested_transaction(), domain_event))
    if has_app_context():
        # Writers work inside the transaction (the outbox): what they write commits or rolls
        # back with the change. Their errors are the change's errors.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        for writer in writers_for(app, type(domain_event)):
            writer(domain_event)


def pending(session: Session | None = None) -> list[Event]:
    """The events recorded in the open transaction, not yet dispatched (for tests)."""
    session = session if session is not None else db.session()
    return [e for _, e in session.info.get(_PENDING, [])]


def on(app: Flask, event_type: type[Event], handler: Handler) -> None:
    """Register `handler` for `event_type` on this app (once; a second call is ignored)."""
    handlers: dict[type[Event], list[Handler]] = app.extensions.setdefault(_EXTENSION, {})
    registered = handlers.setdefault(event_type, [])
    if handler not in registered:
        registered.append(handler)


def handlers_for(app: Flask, event_type: type[Event]) -> list[Handler]:
    return list(app.extensions.get(_EXTENSION, {}).get(event_type, []))


def within(app: Flask, event_type: type[Event], writer: Handler) -> None:
    """Register `writer` to run inside the transaction, when the event is recorded: it
    writes rows that must commit or roll back with the change (the notification outbox).
    Once per app; a second call is ignored."""
    writers: dict[type[Event], list[Handler]] = app.extensions.setdefault(_WRITERS, {})
    registered = writers.setdefault(event_type, [])
    if writer not in registered:
        registered.append(writer)


def writers_for(app: Flask, event_type: type[Event]) -> list[Handler]:
    return list(app.extensions.get(_WRITERS, {}).get(event_type, []))


def after_each_commit(app: Flask, callback: Callable[[], None]) -> None:
    """Run `callback` once after a COMMIT that dispatched events, after their handlers
    (e.g. "send what was queued"), however many events the transaction recorded."""
    callbacks: list[Callable[[], None]] = app.extensions.setdefault(_AFTER_EACH, [])
    if callback not in callbacks:
        callbacks.append(callback)


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        # SQLAlchemy also says "after_commit" when a SAVEPOINT is released: the change is not
        # durable yet, so its events wait for the outermost COMMIT.
        return
    recorded = session.info.pop(_PENDING, [])
    if not recorded:
        return
    if not has_app_context():
        log.error("%d domain event(s) committed outside an application: dropped", len(recorded))
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for _, domain_event in recorded:
        for handler in handlers_for(app, type(domain_event)):
            try:
                handler(domain_event)
            except Exception:
                log.exception(
                    "handler %s failed for %s",
                    getattr(handler, "__qualname__", handler),
                    type(domain_event).__name__,
                )
    for callback in list(app.extensions.get(_AFTER_EACH, [])):
        try:
            callback()
        except Exception:
            log.exception(
                "after-commit callback %s failed", getattr(callback, "__qualname__", callback)
            )


def _inside(transaction: SessionTransaction | None, savepoint: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is savepoint:
            return True
        transaction = transaction.parent
    return False


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    recorded = session.info.get(_PENDING)
    if not recorded:
        return
    if previous_transaction.nested:
        session.info[_PENDING] = [
            (where, e) for where, e in recorded if not _inside(where, previous_transaction)
        ]
    else:
        session.info.pop(_PENDING, None)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit dispatching its events (a close
    # without commit, a rollback): what it recorded did not happen.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_PENDING, None)


def init_app(app: Flask) -> None:
    """Listen on the application's session (once per process; the listeners look up the
    handlers of whichever app is current)."""
    app.extensions.setdefault(_EXTENSION, {})
    for name, listener in (
        ("after_commit", _after_commit),
        ("after_soft_rollback", _after_soft_rollback),
        ("after_transaction_end", _after_transaction_end),
    ):
        if not event.contains(db.session, name, listener):
            event.listen(db.session, name, listener)
