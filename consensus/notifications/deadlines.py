"""Deadline warnings, produced by the clock (`flask --app consensus rounds tick`).

A process warns the people who still have to act N days before an open round's deadline
(`ProcessNotificationSettings.deadline_warning_days`, default 3 and 1). Each warning goes
out once per round and threshold (a `deadline_warning` row, unique); when a round opened
closer to its deadline than a threshold, only the nearest threshold is sent.

The feedback period on a proposed disposition (issue 21) gets one reminder, to the
organisations that have not answered every item, at the process's nearest threshold before
its end (by default a day) — or halfway through a shorter period, so that a short period
does not bring the request and the reminder at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consensus import audit, events, permissions
from consensus.extensions import db
from consensus.models import (
    DeadlineWarning,
    DispositionReview,
    Process,
    ProcessNotificationSettings,
    ProcessState,
    Round,
    RoundState,
    User,
    utcnow,
)
from consensus.permissions import drafting as drafting_rules
from consensus.services import drafting, processes
from consensus.services.errors import DomainError

DEFAULT_DAYS = (3, 1)
MAX_DAYS = 60


def parse_days(raw: str) -> tuple[int, ...]:
    """ "3, 1" -> (3, 1): whole days, distinct, largest first; "" means no warnings."""
    days: set[int] = set()
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= MAX_DAYS:
            raise DomainError(
                str(
                    _l("Give whole days between 1 and %(max)d, separated by commas.", max=MAX_DAYS)
                ),
                field="deadline_warning_days",
            )
        days.add(int(part))
    return tuple(sorted(days, reverse=True))


def warning_days(process_id: int) -> tuple[int, ...]:
    row = db.session.get(ProcessNotificationSettings, process_id)
    return parse_days(row.deadline_warning_days) if row is not None else DEFAULT_DAYS


def set_warning_days(process: Process, *, actor: User, raw: str) -> None:
    """The facilitator chooses when people are warned before a deadline."""
    days = parse_days(raw)
    text = ",".join(str(d) for d in days)
    row = db.session.get(ProcessNotificationSettings, process.id)
    before = row.deadline_warning_days if row is not None else ",".join(map(str, DEFAULT_DAYS))
    if row is None:
        row = ProcessNotificationSettings(process_id=process.id)
        db.session.add(row)
    row.deadline_warning_days = text
    if before != text:
        audit.record(
            "process.deadline_warnings_set",
            actor=actor,
            object_type="process",
            object_id=process.id,
            payload={"days": list(days)},
        )
    db.session.flush()


def warn_deadlines(now: datetime | None = None) -> int:
    """Record a DeadlineApproaching event for every open round whose next warning is due,
    naming the people who can act for the organisations that have not acted. Returns the
    number of warnings (rounds × thresholds) recorded."""
    now = now or utcnow()
    rounds = (
        db.session.execute(
            select(Round)
            .join(Process)
            .where(
                Process.state == ProcessState.ACTIVE,
                Round.state == RoundState.OPEN,
                Round.closes_at > now,
                Round.closes_at <= now + timedelta(days=MAX_DAYS),
            )
            .order_by(Round.id)
            .with_for_update(of=Round)
        )
        .scalars()
        .all()
    )
    warned = 0
    for round_ in rounds:
        thresholds = [
            d
            for d in warning_days(round_.process_id)
            if round_.closes_at - now <= timedelta(days=d)
        ]
        if not thresholds:
            continue
        done = set(
            db.session.execute(
                select(DeadlineWarning.days_before).where(DeadlineWarning.round_id == round_.id)
            ).scalars()
        )
        due = [d for d in thresholds if d not in done]
        if not due:
            continue
        for days in due:
            db.session.add(DeadlineWarning(round_id=round_.id, days_before=days, warned_at=now))
        nearest = min(due)
        if nearest != min(thresholds):
            continue  # a nearer warning was already sent
        process = round_.process
        waiting = [
            s.organisation.id for s in processes.response_status(process, round_) if not s.acted
        ]
        acting = permissions.who_can_act_many(((round_, org_id) for org_id in waiting), now)
        people = tuple(
            sorted({(user_id, org_id) for (_, org_id), ids in acting.items() for user_id in ids})
        )
        db.session.flush()
        if people:
            events.record(
                events.DeadlineApproaching(
                    round_id=round_.id,
                    process_id=process.id,
                    days_before=nearest,
                    people=people,
                )
            )
        warned += 1
    db.session.flush()
    return warned


def remind_disposition_feedback(now: datetime | None = None) -> int:
    """Record a DispositionFeedbackDue event, once per proposed disposition, when its
    feedback period is about to end (see the module), naming the people who can answer
    for the organisations that have not answered every item. Returns how many reviews
    were reminded (a review whose organisations all answered is marked done silently)."""
    now = now or utcnow()
    reviews = (
        db.session.execute(
            select(DispositionReview)
            .where(
                DispositionReview.reminded_at.is_(None),
                DispositionReview.respond_by > now,
                DispositionReview.respond_by <= now + timedelta(days=MAX_DAYS),
            )
            .order_by(DispositionReview.id)
            .with_for_update(of=DispositionReview)
        )
        .scalars()
        .all()
    )
    reminded = 0
    for review in reviews:
        round_ = db.session.get(Round, review.round_id)
        assert round_ is not None  # noqa: S101 - a review belongs to a round
        days = warning_days(round_.process_id)
        if not days:
            continue  # the facilitator turned the warnings off
        before = min(timedelta(days=min(days)), (review.respond_by - review.sent_at) / 2)
        if review.respond_by - now > before:
            continue
        review.reminded_at = now
        waiting = drafting.waiting_organisations(review)
        answering = drafting_rules.who_answers_disposition_many(round_, waiting, now)
        people = tuple(
            sorted({(user_id, org_id) for org_id, ids in answering.items() for user_id in ids})
        )
        if people:
            events.record(
                events.DispositionFeedbackDue(
                    round_id=round_.id, process_id=round_.process_id, people=people
                )
            )
            reminded += 1
    db.session.flush()
    return reminded
