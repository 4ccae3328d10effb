"""Processes and rounds: set-up by facilitators, the clock, and who still has to act."""

from __future__ import annotations

import functools
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select
from sqlalchemy.orm import lazyload

from consensus import audit, events, permissions
from consensus.domain.visible import visible_line
from consensus.extensions import db
from consensus.models import (
    DeadlineExtension,
    DecisionRule,
    Notice,
    Organisation,
    Participation,
    Process,
    ProcessFacilitator,
    ProcessState,
    ProcessTheme,
    Round,
    RoundCompletion,
    RoundState,
    RoundType,
    User,
    Visibility,
    utcnow,
)
from consensus.services.errors import Conflict, DomainError

MAX_THEMES = 12


# --- Processes --------------------------------------------------------------------------------


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:60].strip("-") or "process"


def _unique_slug(title: str) -> str:
    base = slugify(title)
    taken = set(
        db.session.execute(select(Process.slug).where(Process.slug.like(f"{base}%"))).scalars()
    )
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def parse_themes(raw: str | Iterable[str]) -> list[str]:
    """Themes are free tags: comma-separated, trimmed, de-duplicated (case-insensitively)."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    seen: dict[str, str] = {}
    for item in items:
        name = " ".join(item.split())[:60]
        if name and name.lower() not in seen:
            seen[name.lower()] = name
    if len(seen) > MAX_THEMES:
        raise DomainError(str(_l("Use at most %(n)d themes.", n=MAX_THEMES)), field="themes")
    return list(seen.values())


def _check_rule(rule: DecisionRule, quorum: int, share: int | None) -> None:
    if quorum < 0:
        raise DomainError(str(_l("The quorum cannot be negative.")), field="quorum")
    if rule == DecisionRule.QUALIFIED_MAJORITY and not share:
        raise DomainError(
            str(_l("Give the share of organisations that must endorse.")),
            field="qualified_share_percent",
        )
    if share is not None and not 0 < share <= 100:
        raise DomainError(
            str(_l("Give a percentage between 1 and 100.")), field="qualified_share_percent"
        )


def create_process(
    *,
    actor: User,
    title: str,
    purpose: str = "",
    themes: Iterable[str] = (),
    decision_rule: DecisionRule = DecisionRule.CONSENSUS,
    quorum: int = 0,
    qualified_share_percent: int | None = None,
    hide_tally_until_closed: bool = False,
    require_clearance: bool = False,
    slug: str | None = None,
) -> Process:
    """A facilitator starts a process in draft; they become its first facilitator."""
    if not actor.is_facilitator:
        raise DomainError(str(_l("Only facilitators can start a process.")))
    _check_rule(decision_rule, quorum, qualified_share_percent)
    process = Process(
        slug=slug or _unique_slug(title),
        title=visible_line(title, field="title"),
        purpose=visible_line(purpose, field="purpose"),
        state=ProcessState.DRAFT,
        decision_rule=decision_rule,
        quorum=quorum,
        qualified_share_percent=qualified_share_percent
        if decision_rule == DecisionRule.QUALIFIED_MAJORITY
        else None,
        hide_tally_until_closed=hide_tally_until_closed,
        require_clearance=require_clearance,
        visibility=Visibility.PARTICIPANTS,
        created_by_id=actor.id,
    )
    process.themes = [ProcessTheme(name=name) for name in parse_themes(themes)]
    process.facilitators = [ProcessFacilitator(user_id=actor.id)]
    db.session.add(process)
    db.session.flush()
    audit.record(
        "process.created",
        actor=actor,
        object_type="process",
        object_id=process.id,
        payload={
            "slug": process.slug,
            "title": process.title,
            "decision_rule": decision_rule.value,
            "quorum": quorum,
            "qualified_share_percent": process.qualified_share_percent,
            "themes": [t.name for t in process.themes],
        },
    )
    return process


def update_process(
    process: Process,
    *,
    actor: User,
    title: str,
    purpose: str,
    themes: Iterable[str],
    decision_rule: DecisionRule,
    quorum: int,
    qualified_share_percent: int | None,
    hide_tally_until_closed: bool,
    require_clearance: bool,
) -> Process:
    """The rule cannot change once an endorsement round has opened: that would move the
    goalposts after organisations took a stance."""
    _require_editable(process)
    _check_rule(decision_rule, quorum, qualified_share_percent)
    rule_changed = (decision_rule, quorum, qualified_share_percent) != (
        process.decision_rule,
        process.quorum,
        process.qualified_share_percent,
    )
    if rule_changed and endorsement_has_opened(process):
        raise DomainError(
            str(_l("The decision rule cannot change after an endorsement round has opened.")),
            field="decision_rule",
        )
    names = parse_themes(themes)
    before = {
        "title": process.title,
        "purpose": process.purpose,
        "themes": [t.name for t in process.themes],
        "decision_rule": process.decision_rule.value,
        "quorum": process.quorum,
        "qualified_share_percent": process.qualified_share_percent,
        "hide_tally_until_closed": process.hide_tally_until_closed,
        "require_clearance": process.require_clearance,
    }
    process.title = visible_line(title, field="title")
    process.purpose = visible_line(purpose, field="purpose")
    process.decision_rule = decision_rule
    process.quorum = quorum
    process.qualified_share_percent = (
        qualified_share_percent if decision_rule == DecisionRule.QUALIFIED_MAJORITY else None
    )
    process.hide_tally_until_closed = hide_tally_until_closed
    process.require_clearance = require_clearance
    existing = {t.name: t for t in process.themes}
    process.themes = [existing.get(name) or ProcessTheme(name=name) for name in names]
    after = {
        "title": process.title,
        "purpose": process.purpose,
        "themes": names,
        "decision_rule": decision_rule.value,
        "quorum": quorum,
        "qualified_share_percent": process.qualified_share_percent,
        "hide_tally_until_closed": hide_tally_until_closed,
        "require_clearance": require_clearance,
    }
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changes:
        audit.record(
            "process.updated",
            actor=actor,
            object_type="process",
            object_id=process.id,
            payload={"changes": changes},
        )
    db.session.flush()
    return process


def _require_editable(process: Process) -> None:
    if process.state not in {ProcessState.DRAFT, ProcessState.ACTIVE}:
        raise DomainError(str(_l("This process has ended and can no longer change.")))


def endorsement_has_opened(process: Process) -> bool:
    return any(
        r.type == RoundType.ENDORSEMENT and r.state != RoundState.SCHEDULED for r in process.rounds
    )


def add_participant(
    process: Process, *, actor: User, organisation: Organisation, reason: str = ""
) -> Participation:
    """Invite an organisation. After activation a reason is required; after an
    endorsement round has opened the set of voices is fixed."""
    _require_editable(process)
    if endorsement_has_opened(process):
        raise DomainError(
            str(_l("Organisations cannot be added after an endorsement round has opened.")),
            field="organisation_id",
        )
    reason = visible_line(reason, field="reason")
    if process.state != ProcessState.DRAFT and not reason:
        raise DomainError(str(_l("Give a reason for adding this organisation.")), field="reason")
    if not organisation.active:
        raise DomainError(str(_l("This organisation is not active.")), field="organisation_id")
    participation = next(
        (p for p in process.participations if p.organisation_id == organisation.id), None
    )
    if participation is not None and participation.removed_at is None:
        raise Conflict(str(_l("This organisation already takes part.")), field="organisation_id")
    if participation is None:
        participation = Participation(organisation=organisation, reason=reason.strip())
        process.participations.append(participation)
    else:
        participation.removed_at = None
        participation.added_at = utcnow()
        participation.reason = reason.strip()
    db.session.flush()
    audit.record(
        "process.participant_added",
        actor=actor,
        object_type="process",
        object_id=process.id,
        organisation_id=organisation.id,
        payload={"organisation": organisation.slug, "reason": reason.strip()},
    )
    return participation


def remove_participant(
    process: Process, *, actor: User, organisation: Organisation, reason: str
) -> None:
    _require_editable(process)
    if endorsement_has_opened(process):
        raise DomainError(
            str(_l("Organisations cannot be removed after an endorsement round has opened."))
        )
    reason = visible_line(reason, field="reason")
    if not reason:
        raise DomainError(str(_l("Give a reason for removing this organisation.")), field="reason")
    participation = next(
        (
            p
            for p in process.participations
            if p.organisation_id == organisation.id and p.removed_at is None
        ),
        None,
    )
    if participation is None:
        raise DomainError(str(_l("This organisation does not take part in this process.")))
    participation.removed_at = utcnow()
    participation.reason = reason.strip()
    audit.record(
        "process.participant_removed",
        actor=actor,
        object_type="process",
        object_id=process.id,
        organisation_id=organisation.id,
        payload={"organisation": organisation.slug, "reason": reason.strip()},
    )
    db.session.flush()


def add_facilitator(process: Process, *, actor: User, user: User) -> None:
    _require_editable(process)
    if not user.is_facilitator or not user.active:
        raise DomainError(
            str(_l("Only people with the facilitator capability can facilitate.")), field="user_id"
        )
    if user.id in process.facilitator_ids:
        raise Conflict(str(_l("This person already facilitates this process.")), field="user_id")
    process.facilitators.append(ProcessFacilitator(user_id=user.id))
    db.session.flush()
    audit.record(
        "process.facilitator_added",
        actor=actor,
        object_type="process",
        object_id=process.id,
        payload={"user": user.id},
    )


def activate_process(process: Process, *, actor: User) -> None:
    """Start the process: it needs participants and at least one round."""
    if process.state != ProcessState.DRAFT:
        raise DomainError(str(_l("Only a draft process can be started.")))
    if len(process.current_participations) < 1:
        raise DomainError(str(_l("Invite at least one organisation first.")))
    if not process.rounds:
        raise DomainError(str(_l("Plan at least one round first.")))
    process.state = ProcessState.ACTIVE
    audit.record("process.activated", actor=actor, object_type="process", object_id=process.id)
    db.session.flush()


def conclude_process(process: Process, *, actor: User) -> None:
    if process.state != ProcessState.ACTIVE:
        raise DomainError(str(_l("Only an active process can be concluded.")))
    if process.open_round() is not None:
        raise DomainError(str(_l("Close the open round first.")))
    process.state = ProcessState.CONCLUDED
    process.concluded_at = utcnow()
    audit.record("process.concluded", actor=actor, object_type="process", object_id=process.id)
    db.session.flush()


def withdraw_process(process: Process, *, actor: User, reason: str) -> None:
    _require_editable(process)
    reason = visible_line(reason, field="reason")
    if not reason:
        raise DomainError(str(_l("Give a reason for withdrawing the process.")), field="reason")
    now = utcnow()
    for round_ in process.rounds:
        if round_.state == RoundState.OPEN:
            _close(round_, actor=actor, at=now, why="withdrawn")
    process.state = ProcessState.WITHDRAWN
    process.withdrawn_reason = reason.strip()
    audit.record(
        "process.withdrawn",
        actor=actor,
        object_type="process",
        object_id=process.id,
        payload={"reason": reason.strip()},
    )
    db.session.flush()


def schedule_publication(process: Process, *, actor: User, at: datetime | None) -> None:
    """Publish now (at=None) or at a chosen moment (embargo). Published outcome pages are
    public; the drafting history stays with the participants."""
    if process.is_published:
        raise DomainError(str(_l("This process is already published.")))
    if process.state == ProcessState.WITHDRAWN:
        raise DomainError(str(_l("A withdrawn process cannot be published.")))
    now = utcnow()
    if at is not None and at <= now:
        raise DomainError(
            str(_l("Choose a moment in the future, or publish now.")), field="publish_at"
        )
    process.publish_at = at or now
    audit.record(
        "process.publication_scheduled",
        actor=actor,
        object_type="process",
        object_id=process.id,
        payload={"publish_at": process.publish_at},
    )
    if at is None:
        _publish(process, actor=actor, at=now)
    db.session.flush()


def _publish(process: Process, *, actor: User | None, at: datetime) -> None:
    process.visibility = Visibility.PUBLISHED
    process.published_at = at
    audit.record(
        "process.published",
        actor=actor,
        object_type="process",
        object_id=process.id,
        origin=None if actor else "clock",
    )
    events.record(events.ProcessPublished(process_id=process.id))


# --- Rounds -----------------------------------------------------------------------------------


def _check_times(
    process: Process, opens_at: datetime, closes_at: datetime, exclude: Round | None = None
) -> None:
    if closes_at <= opens_at:
        raise DomainError(str(_l("The round must close after it opens.")), field="closes_at")
    for other in process.rounds:
        if other is exclude or other.state == RoundState.CLOSED:
            continue
        if opens_at < other.closes_at and other.opens_at < closes_at:
            raise DomainError(
                str(
                    _l(
                        "This overlaps the round \u201c%(title)s\u201d. Rounds follow each other.",
                        title=other.title,
                    )
                ),
                field="opens_at",
            )


def add_round(
    process: Process,
    *,
    actor: User,
    type: RoundType,
    title: str,
    instructions: str,
    opens_at: datetime,
    closes_at: datetime,
) -> Round:
    _require_editable(process)
    _check_times(process, opens_at, closes_at)
    sequence = max((r.sequence for r in process.rounds), default=0) + 1
    round_ = Round(
        sequence=sequence,
        type=RoundType(type),
        title=visible_line(title, field="title"),
        instructions=visible_line(instructions, field="instructions"),
        opens_at=opens_at,
        closes_at=closes_at,
        state=RoundState.SCHEDULED,
    )
    process.rounds.append(round_)
    db.session.flush()
    audit.record(
        "round.created",
        actor=actor,
        object_type="round",
        object_id=round_.id,
        payload={
            "process": process.id,
            "type": round_.type.value,
            "title": round_.title,
            "opens_at": opens_at,
            "closes_at": closes_at,
        },
    )
    return round_


def update_round(
    round_: Round,
    *,
    actor: User,
    title: str,
    instructions: str,
    opens_at: datetime,
    closes_at: datetime,
) -> Round:
    """A scheduled round can be re-planned; an open one only gets new text (its deadline
    moves through an extension, with a reason)."""
    process = round_.process
    _require_editable(process)
    if round_.state == RoundState.CLOSED:
        raise DomainError(str(_l("A closed round cannot change.")))
    if round_.state == RoundState.OPEN and (opens_at, closes_at) != (
        round_.opens_at,
        round_.closes_at,
    ):
        raise DomainError(
            str(_l("Extend the deadline of an open round instead.")), field="closes_at"
        )
    _check_times(process, opens_at, closes_at, exclude=round_)
    before = {
        "title": round_.title,
        "instructions": round_.instructions,
        "opens_at": round_.opens_at,
        "closes_at": round_.closes_at,
    }
    round_.title = visible_line(title, field="title")
    round_.instructions = visible_line(instructions, field="instructions")
    round_.opens_at, round_.closes_at = opens_at, closes_at
    after = {
        "title": round_.title,
        "instructions": round_.instructions,
        "opens_at": opens_at,
        "closes_at": closes_at,
    }
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changes:
        audit.record(
            "round.updated",
            actor=actor,
            object_type="round",
            object_id=round_.id,
            payload={"changes": changes},
        )
    db.session.flush()
    return round_


def _open(round_: Round, *, actor: User | None, at: datetime) -> None:
    round_.state = RoundState.OPEN
    round_.opened_at = at
    db.session.flush()  # the partial unique index guards "one open round" here too
    audit.record(
        "round.opened",
        actor=actor,
        object_type="round",
        object_id=round_.id,
        payload={"process": round_.process_id, "type": round_.type.value},
        origin=None if actor else "clock",
    )
    for hook in ROUND_OPENED_HOOKS:
        hook(round_, actor)
    events.record(
        events.RoundOpened(
            round_id=round_.id, process_id=round_.process_id, round_type=round_.type.value
        )
    )


def _close(round_: Round, *, actor: User | None, at: datetime, why: str) -> None:
    round_.state = RoundState.CLOSED
    round_.closed_at = at
    audit.record(
        "round.closed",
        actor=actor,
        object_type="round",
        object_id=round_.id,
        payload={"process": round_.process_id, "type": round_.type.value, "why": why},
        origin=None if actor else "clock",
    )
    for hook in ROUND_CLOSED_HOOKS:
        hook(round_, actor)
    # After the hooks: the event describes the whole close (the outcome is fixed), and its
    # notification writer reads it in this transaction.
    events.record(
        events.RoundClosed(
            round_id=round_.id, process_id=round_.process_id, round_type=round_.type.value
        )
    )
    db.session.flush()


# Later features (outcomes, signing) react to a round closing; they register here.
ROUND_CLOSED_HOOKS: list[Callable[[Round, User | None], None]] = []
# Work that belongs to a round's opening (e.g. the signing round's letter), in the same
# transaction: by the facilitator's request or by the clock, never by a later page view.
ROUND_OPENED_HOOKS: list[Callable[[Round, User | None], None]] = []
# Checks before a round may open (e.g. clearance before endorsement); raise DomainError.
ROUND_OPEN_CHECKS: list[Callable[[Round], None]] = []


def _check_can_open(round_: Round, at: datetime) -> None:
    process = round_.process
    if process.state != ProcessState.ACTIVE:
        raise DomainError(str(_l("Start the process before opening a round.")))
    if round_.state != RoundState.SCHEDULED:
        raise DomainError(str(_l("Only a scheduled round can open.")))
    if process.open_round() is not None:
        raise DomainError(str(_l("Another round of this process is open. Close it first.")))
    if round_.closes_at <= at:
        raise DomainError(str(_l("Its deadline has passed. Change the planning first.")))
    if (
        round_.type == RoundType.ENDORSEMENT
        and process.require_clearance
        and not any(
            r.type == RoundType.CLEARANCE
            and r.state == RoundState.CLOSED
            and r.sequence < round_.sequence
            for r in process.rounds
        )
    ):
        raise DomainError(
            str(_l("This process requires official clearance before the endorsement round."))
        )
    for check in ROUND_OPEN_CHECKS:
        check(round_)


def open_round(round_: Round, *, actor: User) -> None:
    """The facilitator opens a round early (or on time)."""
    now = utcnow()
    _check_can_open(round_, now)
    _open(round_, actor=actor, at=now)


def close_round(round_: Round, *, actor: User) -> None:
    if round_.state != RoundState.OPEN:
        raise DomainError(str(_l("Only an open round can close.")))
    _close(round_, actor=actor, at=utcnow(), why="facilitator")


def extend_deadline(round_: Round, *, actor: User, closes_at: datetime, reason: str) -> None:
    """A later deadline, with a reason everyone can see."""
    if round_.state == RoundState.CLOSED:
        raise DomainError(str(_l("A closed round cannot be extended.")))
    reason = visible_line(reason, field="reason")
    if not reason:
        raise DomainError(str(_l("Give a reason for the extension.")), field="reason")
    now = utcnow()
    if closes_at <= round_.closes_at or closes_at <= now:
        raise DomainError(
            str(_l("The new deadline must be later than the current one.")), field="closes_at"
        )
    _check_times(round_.process, round_.opens_at, closes_at, exclude=round_)
    round_.extensions.append(
        DeadlineExtension(
            previous_closes_at=round_.closes_at,
            new_closes_at=closes_at,
            reason=reason.strip(),
            extended_by_id=actor.id,
        )
    )
    audit.record(
        "round.deadline_extended",
        actor=actor,
        object_type="round",
        object_id=round_.id,
        payload={"from": round_.closes_at, "to": closes_at, "reason": reason.strip()},
    )
    round_.closes_at = closes_at
    db.session.flush()


def tick(now: datetime | None = None) -> int:
    """Apply the clock: close overdue rounds, open due ones, publish embargoed processes.

    Runs on every request (one indexed query when nothing is due) and from
    `flask --app consensus rounds tick` for cron. Returns the number of changes.
    """
    now = now or utcnow()
    due_rounds = (
        db.session.execute(
            select(Round)
            .join(Process)
            .where(
                Process.state == ProcessState.ACTIVE,
                ((Round.state == RoundState.OPEN) & (Round.closes_at <= now))
                | ((Round.state == RoundState.SCHEDULED) & (Round.opens_at <= now)),
            )
            .order_by(Round.process_id, Round.sequence)
            .with_for_update(of=Round)
        )
        .scalars()
        .all()
    )
    # Locked like the rounds above: every worker of every instance runs the clock, and a
    # second tick at the same moment waits here, then finds the process published already.
    due_publications = (
        db.session.execute(
            select(Process)
            .where(
                Process.publish_at <= now,
                Process.published_at.is_(None),
                Process.state != ProcessState.WITHDRAWN,
            )
            .with_for_update(of=Process)
        )
        .scalars()
        .all()
    )
    changes = 0
    for round_ in due_rounds:
        if round_.state == RoundState.OPEN:
            _close(round_, actor=None, at=now, why="deadline")
            changes += 1
    for round_ in due_rounds:
        if round_.state == RoundState.SCHEDULED and round_.closes_at > now:
            try:
                _check_can_open(round_, now)
            except DomainError:
                continue  # e.g. clearance still missing: the facilitator decides
            _open(round_, actor=None, at=now)
            changes += 1
        elif round_.state == RoundState.SCHEDULED:
            # Its whole window passed without opening (e.g. process started late).
            _close(round_, actor=None, at=now, why="missed")
            changes += 1
    for process in due_publications:
        _publish(process, actor=None, at=now)
        changes += 1
    db.session.flush()
    return changes


def next_due_at() -> datetime | None:
    """The earliest moment at which `tick` has something to do (None: nothing planned).

    Only an audited change can move it (a round opened, closed, extended or planned, a
    publication scheduled), so the per-request check caches it by the audit log's head
    (consensus.web.fragments) and compares it with the clock: no query on most requests.
    """
    moments = db.session.execute(_next_due_statement()).one()
    found = [m for m in moments if m is not None]
    return min(found) if found else None


@functools.cache
def _next_due_statement() -> Select[tuple[datetime | None, datetime | None, datetime | None]]:
    """Built once: requests that change things run it, and a reused statement keeps its
    cache key (building this one cost more than running it)."""
    closing = (
        select(func.min(Round.closes_at))
        .join(Process)
        .where(Round.state == RoundState.OPEN, Process.state == ProcessState.ACTIVE)
        .scalar_subquery()
    )
    opening = (
        select(func.min(Round.opens_at))
        .join(Process)
        .where(Round.state == RoundState.SCHEDULED, Process.state == ProcessState.ACTIVE)
        .scalar_subquery()
    )
    publishing = (
        select(func.min(Process.publish_at))
        .where(
            Process.publish_at.is_not(None),
            Process.published_at.is_(None),
            Process.state != ProcessState.WITHDRAWN,
        )
        .scalar_subquery()
    )
    return select(closing, opening, publishing)


def something_is_due(now: datetime | None = None) -> bool:
    """The cheap check run on every request before `tick`."""
    now = now or utcnow()
    round_due = db.session.execute(
        select(Round.id)
        .where(
            ((Round.state == RoundState.OPEN) & (Round.closes_at <= now))
            | ((Round.state == RoundState.SCHEDULED) & (Round.opens_at <= now)),
        )
        .join(Process)
        .where(Process.state == ProcessState.ACTIVE)
        .limit(1)
    ).first()
    if round_due is not None:
        return True
    return (
        db.session.execute(
            select(Process.id)
            .where(
                Process.publish_at <= now,
                Process.published_at.is_(None),
                Process.state != ProcessState.WITHDRAWN,
            )
            .limit(1)
        ).first()
        is not None
    )


# --- Who still has to act ---------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationStatus:
    organisation: Organisation
    acted: bool
    acted_at: datetime | None = None
    detail: str = ""


# Round types whose "acted" comes from another feature register a provider here. A
# provider answers for many rounds in one query:
# provider(round_ids, organisation_ids) -> {(round_id, organisation_id): (acted_at, detail)}
# organisation_ids None: every organisation; otherwise only these (the dashboard asks for the
# user's own organisations, not for the hundreds of others in each round).
StatusProvider = Callable[
    [list[int], list[int] | None], dict[tuple[int, int], tuple[datetime, str]]
]
STATUS_PROVIDERS: dict[RoundType, StatusProvider] = {}


def _completions(
    round_ids: list[int], organisation_ids: list[int] | None = None
) -> dict[tuple[int, int], tuple[datetime, str]]:
    statement = select(
        RoundCompletion.round_id, RoundCompletion.organisation_id, RoundCompletion.marked_at
    ).where(RoundCompletion.round_id.in_(round_ids))
    if organisation_ids is not None:
        statement = statement.where(RoundCompletion.organisation_id.in_(organisation_ids))
    rows = db.session.execute(statement).all()
    return {(round_id, org_id): (at, "") for round_id, org_id, at in rows}


def register() -> None:
    """The frame's own providers: drafting and consultation rounds count "our input is
    complete". Called once by consensus.hooks.register (create_app); idempotent."""
    STATUS_PROVIDERS[RoundType.DRAFTING] = _completions
    STATUS_PROVIDERS[RoundType.CONSULTATION] = _completions


def acted_in(
    rounds: Iterable[Round], organisation_ids: list[int] | None = None
) -> dict[tuple[int, int], tuple[datetime, str]]:
    """Who acted in each of these rounds: one query per round type, never per round.
    With organisation_ids, only those organisations are looked up."""
    by_type: dict[RoundType, list[int]] = {}
    for round_ in rounds:
        by_type.setdefault(round_.type, []).append(round_.id)
    acted: dict[tuple[int, int], tuple[datetime, str]] = {}
    for round_type, ids in by_type.items():
        provider = STATUS_PROVIDERS.get(round_type)
        if provider is not None:
            acted.update(provider(ids, organisation_ids))
    return acted


def response_status(process: Process, round_: Round) -> list[OrganisationStatus]:
    """For each participating organisation: has it acted in this round?"""
    acted = acted_in([round_])
    statuses = []
    for participation in process.current_participations:
        acted_at, detail = acted.get((round_.id, participation.organisation_id), (None, ""))
        statuses.append(
            OrganisationStatus(participation.organisation, acted_at is not None, acted_at, detail)
        )
    return statuses


@dataclass(frozen=True)
class TodoItem:
    process: Process
    round: Round
    organisation: Organisation
    acted: bool


def dashboard_items(user: User) -> tuple[list[TodoItem], list[tuple[Process, Round, int, int]]]:
    """What needs this person's action, for which organisation, by when — and, for
    facilitators, how many organisations still have to act in their open rounds."""
    now = utcnow()
    memberships = [m for m in user.memberships if m.is_valid_at(now)]
    org_ids = {m.organisation_id for m in memberships}
    processes = (
        db.session.execute(
            select(Process)
            .where(Process.state == ProcessState.ACTIVE)
            .where(permissions.involved_clause(user, now))
            .order_by(Process.title)
            # Not every participant of every process (hundreds each at national scale):
            # only this person's own participations and the facilitators' counts, below.
            .options(lazyload(Process.participations))
        )
        .scalars()
        .all()
    )
    open_rounds = [(p, r) for p in processes if (r := p.open_round()) and r.is_open_at(now)]
    # Facilitators see how many organisations acted; everyone else only their own.
    acted = acted_in(r for p, r in open_rounds if user.id in p.facilitator_ids)
    acted.update(
        acted_in(
            (r for p, r in open_rounds if user.id not in p.facilitator_ids),
            organisation_ids=list(org_ids),
        )
    )
    open_ids = [p.id for p, _ in open_rounds] or [0]
    own: dict[int, list[Participation]] = {}
    for participation in db.session.execute(
        select(Participation).where(
            Participation.process_id.in_(open_ids),
            Participation.organisation_id.in_(list(org_ids) or [0]),
            Participation.removed_at.is_(None),
        )
    ).scalars():
        own.setdefault(participation.process_id, []).append(participation)
    facilitated_ids = [p.id for p, _ in open_rounds if user.id in p.facilitator_ids] or [0]
    participants: dict[int, list[int]] = {}
    for process_id, organisation_id in db.session.execute(
        select(Participation.process_id, Participation.organisation_id).where(
            Participation.process_id.in_(facilitated_ids), Participation.removed_at.is_(None)
        )
    ):
        participants.setdefault(process_id, []).append(organisation_id)
    # The rule book decides who acts (roles, and substitutes for rounds that need the
    # mandate); one query at most, for delegations to this person.
    can_act = permissions.can_act_in(
        user,
        (
            (round_, participation.organisation)
            for process, round_ in open_rounds
            for participation in own.get(process.id, [])
        ),
        now,
    )
    todo: list[TodoItem] = []
    facilitated: list[tuple[Process, Round, int, int]] = []
    for process, round_ in open_rounds:
        for participation in sorted(own.get(process.id, []), key=lambda p: p.organisation.name):
            if (round_.id, participation.organisation_id) in can_act:
                todo.append(
                    TodoItem(
                        process,
                        round_,
                        participation.organisation,
                        (round_.id, participation.organisation_id) in acted,
                    )
                )
        if user.id in process.facilitator_ids:
            organisation_ids = participants.get(process.id, [])
            done = sum(1 for o in organisation_ids if (round_.id, o) in acted)
            facilitated.append((process, round_, done, len(organisation_ids)))
    todo.sort(key=lambda item: (item.acted, item.round.closes_at))
    return todo, facilitated


def mark_input_complete(round_: Round, *, actor: User, organisation: Organisation) -> None:
    """ "Our input is complete": the organisation tells the facilitator it is done."""
    exists = db.session.execute(
        select(RoundCompletion.id).where(
            RoundCompletion.round_id == round_.id,
            RoundCompletion.organisation_id == organisation.id,
        )
    ).first()
    if exists is not None:
        raise Conflict(str(_l("Your organisation has already said its input is complete.")))
    db.session.add(
        RoundCompletion(round_id=round_.id, organisation_id=organisation.id, marked_by_id=actor.id)
    )
    db.session.flush()
    audit.record(
        "round.input_completed",
        actor=actor,
        object_type="round",
        object_id=round_.id,
        organisation_id=organisation.id,
    )


def send_reminder(process: Process, round_: Round, *, actor: User) -> int:
    """A reminder (in-app notice and e-mail, consensus.notifications) to the people who can
    act for each organisation that has not yet acted. Returns the number of people reminded."""
    if not round_.is_open_at(utcnow()):
        raise DomainError(str(_l("Reminders can only be sent while the round is open.")))
    waiting = [s.organisation for s in response_status(process, round_) if not s.acted]
    if not waiting:
        raise DomainError(str(_l("Every organisation has acted; nobody to remind.")))
    # The rule book says who acts: holders of the mandate and active substitutes,
    # officials for clearance (never a query of our own).
    acting = permissions.who_can_act_many((round_, organisation) for organisation in waiting)
    people = sorted(
        (user_id, org_id) for (_, org_id), user_ids in acting.items() for user_id in user_ids
    )
    # The in-app notice and the e-mail (each in the person's language, as they chose) are
    # written by the notification writer of ReminderSent, in this transaction.
    audit.record(
        "round.reminder_sent",
        actor=actor,
        object_type="round",
        object_id=round_.id,
        payload={"organisations": sorted(o.id for o in waiting), "people": len(people)},
    )
    events.record(
        events.ReminderSent(round_id=round_.id, process_id=process.id, people=tuple(people))
    )
    db.session.flush()
    return len(people)


def mark_notices_read(user: User) -> int:
    notices = (
        db.session.execute(
            select(Notice).where(Notice.user_id == user.id, Notice.read_at.is_(None))
        )
        .scalars()
        .all()
    )
    now = utcnow()
    for notice in notices:
        notice.read_at = now
    if notices:
        audit.record(
            "notice.read",
            actor=user,
            object_type="user",
            object_id=user.id,
            payload={"count": len(notices)},
        )
    db.session.flush()
    return len(notices)


def reset_calendar_token(user: User) -> str:
    """A new secret feed address; the old one stops working at once."""
    user.calendar_token = secrets.token_urlsafe(32)
    audit.record("user.calendar_token_reset", actor=user, object_type="user", object_id=user.id)
    db.session.flush()
    return user.calendar_token
