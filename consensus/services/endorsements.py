"""Clearance, delegation, stances and outcomes: one organisation, one voice.

Every use case flushes and never commits, and records an audit event in the same
transaction. Who may act is decided by `permissions.gate` / `permissions.mandate_for`
alone; the functions here ask it again so no caller can skip it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer, joinedload, lazyload

from consensus import audit, permissions, transactions
from consensus.domain import decision_rules
from consensus.domain.visible import visible_line
from consensus.extensions import db
from consensus.models import (
    Clearance,
    ClearanceDecision,
    Delegation,
    Notice,
    Organisation,
    Outcome,
    Position,
    Process,
    Round,
    RoundState,
    RoundType,
    Stance,
    StanceKind,
    User,
    Version,
    utcnow,
)
from consensus.permissions import Action
from consensus.permissions.delegations import can_revoke  # noqa: F401  (the rule book)
from consensus.services import positions, processes
from consensus.services.errors import Conflict, DomainError, Forbidden

TEXT_REQUIRED = {StanceKind.ENDORSE_WITH_RESERVATIONS, StanceKind.OBJECT}
MAX_TEXT = 5000

STANCE_LABELS = {
    StanceKind.ENDORSE: _l("Endorse"),
    StanceKind.ENDORSE_WITH_RESERVATIONS: _l("Endorse with reservations"),
    StanceKind.ABSTAIN: _l("Abstain"),
    StanceKind.OBJECT: _l("Object"),
}
CLEARANCE_LABELS = {
    ClearanceDecision.CLEARED: _l("Cleared"),
    ClearanceDecision.NOT_CLEARED: _l("Not cleared"),
}


# --- Rule settings ---------------------------------------------------------------------------


def rule_settings(process: Process) -> decision_rules.RuleSettings:
    return decision_rules.RuleSettings(
        rule=decision_rules.Rule(process.decision_rule.value),
        quorum=process.quorum,
        share_percent=process.qualified_share_percent,
    )


def outcome_settings(outcome: Outcome) -> decision_rules.RuleSettings:
    """The rule as it was copied into the outcome when it was fixed."""
    return decision_rules.RuleSettings(
        rule=decision_rules.Rule(outcome.decision_rule),
        quorum=outcome.quorum,
        share_percent=outcome.qualified_share_percent,
    )


def outcome_result(outcome: Outcome) -> decision_rules.Result:
    counts = decision_rules.Tally(
        participants=outcome.participants,
        endorsed=outcome.endorsed,
        with_reservations=outcome.with_reservations,
        abstained=outcome.abstained,
        objected=outcome.objected,
        no_response=outcome.no_response,
    )
    reasons = tuple(decision_rules.Reason(r) for r in outcome.reasons.split(",") if r)
    return decision_rules.Result(outcome.adopted, counts, reasons)


# --- Stances ----------------------------------------------------------------------------------


def _check_text(kind: StanceKind, text: str) -> str:
    text = visible_line(text, field="text")
    if kind in TEXT_REQUIRED and not text:
        message = (
            _l("Give the reservation.")
            if kind == StanceKind.ENDORSE_WITH_RESERVATIONS
            else _l("Give the reason for the objection.")
        )
        raise DomainError(str(message), field="text")
    if len(text) > MAX_TEXT:
        raise DomainError(str(_l("Use at most %(n)d characters.", n=MAX_TEXT)), field="text")
    return text


# Built once (every stance runs it; a reused statement keeps its cache key).
_SUPERSEDE = (
    update(Stance)
    .where(
        Stance.round_id == bindparam("b_round_id"),
        Stance.organisation_id == bindparam("b_organisation_id"),
        Stance.superseded_at.is_(None),
    )
    .values(superseded_at=bindparam("b_moment"))
    .returning(Stance.id)
)


def cast_stance(
    round_: Round,
    *,
    actor: User,
    organisation: Organisation,
    kind: StanceKind,
    text: str = "",
    at: datetime | None = None,
) -> Stance:
    """Register an organisation's stance on the round's version.

    Only someone holding the organisation's mandate at this moment may (the gate). A
    change supersedes the current stance, never overwrites it. Two people of one
    organisation submitting at once: the database keeps one current stance; the loser
    either supersedes the winner (it came later) or is refused with a Conflict.
    """
    moment = at or utcnow()
    process = round_.process
    decision = permissions.gate(
        actor, Action.ENDORSE, process, organisation, round_=round_, at=moment
    )
    if not decision:
        raise Forbidden(decision.reason)
    mandate = permissions.mandate_for(actor, organisation, moment)
    if mandate is None:  # pragma: no cover - the gate said yes
        raise Forbidden(
            str(_l("Only a representative with the organisation's mandate may do this."))
        )
    if round_.version_id is None:
        raise DomainError(str(_l("This round has no version to take a stance on yet.")))
    kind = StanceKind(kind)
    text = _check_text(kind, text)
    delegation = mandate.delegation
    # Requests for the same organisation and round take turns (a double click supersedes,
    # on PostgreSQL as on SQLite), so the unique index below is only a last line of defence.
    transactions.one_writer_at_a_time("stance", round_.id, organisation.id)
    # No savepoint on purpose: with SQLite a savepoint outside a transaction would commit
    # on release. A unique-index violation spoils the transaction; the caller rolls back.
    superseded = list(
        db.session.execute(
            _SUPERSEDE,
            {"b_round_id": round_.id, "b_organisation_id": organisation.id, "b_moment": moment},
        ).scalars()
    )
    stance = Stance(
        round_id=round_.id,
        organisation_id=organisation.id,
        version_id=round_.version_id,
        kind=kind,
        text=text,
        cast_by_id=actor.id,
        cast_by_name=actor.display_name,
        cast_by_title=mandate.membership.title,
        delegation_id=delegation.id if delegation else None,
        substitute_for_name=delegation.delegator.display_name if delegation else None,
        cast_at=moment,
    )
    db.session.add(stance)
    # Worded now: after a failed flush nothing (not even the locale) can be loaded.
    refused = str(
        _l(
            "Someone else registered a stance for %(org)s at the same moment. "
            "Look at the current stance and try again if needed.",
            org=organisation.name,
        )
    )
    try:
        db.session.flush()
    except IntegrityError as error:
        raise Conflict(refused) from error
    audit.record(
        "stance.cast",
        actor=actor,
        object_type="stance",
        object_id=stance.id,
        organisation_id=organisation.id,
        payload={
            "round": round_.id,
            "version": round_.version_id,
            "kind": kind.value,
            "text": text,
            "delegation": delegation.id if delegation else None,
            "supersedes": superseded,
        },
    )
    return stance


# Hundreds of stances share a handful of versions: join each version without its text, its
# author or its paragraphs (all loaded on access if a caller needs them), so a listing does
# not copy the whole text once per stance.
_STANCE_LISTING = (
    joinedload(Stance.version).options(
        defer(Version.body), lazyload(Version.created_by), lazyload(Version.paragraphs)
    ),
)


def current_stances(round_: Round) -> dict[int, Stance]:
    """The current stance of each organisation in a round (one query)."""
    rows = db.session.execute(
        select(Stance)
        .where(Stance.round_id == round_.id, Stance.superseded_at.is_(None))
        .options(*_STANCE_LISTING)
    ).scalars()
    return {s.organisation_id: s for s in rows}


def stance_history(
    round_: Round, *, organisation_ids: Iterable[int] | None = None, latest: int | None = None
) -> tuple[list[Stance], int]:
    """The stances cast in a round, in the order they were recorded, and how many there are.

    organisation_ids: only those organisations' stances (a hidden tally); latest: only the
    last so many (the round page; the history page shows them all).
    """
    where = [Stance.round_id == round_.id]
    if organisation_ids is not None:
        where.append(Stance.organisation_id.in_(list(organisation_ids)))
    statement = select(Stance).where(*where).options(*_STANCE_LISTING)
    if latest is None:
        stances = list(db.session.execute(statement.order_by(Stance.id)).scalars())
        return stances, len(stances)
    stances = list(db.session.execute(statement.order_by(Stance.id.desc()).limit(latest)).scalars())
    stances.reverse()
    total = len(stances)
    if total == latest:
        total = db.session.execute(
            select(func.count()).select_from(Stance).where(*where)
        ).scalar_one()
    return stances, total


@dataclass(frozen=True)
class TallyRow:
    organisation: Organisation
    stance: Stance | None  # the current stance, counted or not
    counts: bool  # on the round's version

    @property
    def stale(self) -> bool:
        """A stance on an earlier version: kept, shown, but no longer counted."""
        return self.stance is not None and not self.counts


@dataclass(frozen=True)
class RoundTally:
    rows: list[TallyRow]
    result: decision_rules.Result
    settings: decision_rules.RuleSettings
    needed: int


def round_tally(process: Process, round_: Round) -> RoundTally:
    """Each participating organisation's stance and whether the rule is met so far.

    Two queries whatever the number of organisations: the process (with its participants)
    is already loaded, and current stances come in one select.
    """
    stances = current_stances(round_)
    rows = []
    counted: dict[int, StanceKind] = {}
    for participation in process.current_participations:
        stance = stances.get(participation.organisation_id)
        counts = stance is not None and stance.version_id == round_.version_id
        if counts:
            assert stance is not None
            counted[participation.organisation_id] = stance.kind
        rows.append(TallyRow(participation.organisation, stance, counts))
    settings = rule_settings(process)
    result = decision_rules.evaluate(
        settings,
        process.participant_ids,
        {k: decision_rules.Kind(v.value) for k, v in counted.items()},
    )
    return RoundTally(
        rows,
        result,
        settings,
        decision_rules.minimum_endorsements(settings, len(process.participant_ids)),
    )


def minimum_needed(process: Process) -> int:
    """How many endorsing organisations the process's rule needs at its current size."""
    return decision_rules.minimum_endorsements(rule_settings(process), len(process.participant_ids))


# --- Outcomes ---------------------------------------------------------------------------------


def outcome_for(round_: Round) -> Outcome | None:
    return db.session.execute(
        select(Outcome).where(Outcome.round_id == round_.id)
    ).scalar_one_or_none()


def fix_outcome(round_: Round, actor: User | None) -> Outcome | None:
    """When an endorsement round closes its outcome is computed once and kept.

    The rule is copied in, the event is audited, and a signed checkpoint of the audit
    log is made so the outcome cannot later be rewritten without it showing.
    """
    if round_.type != RoundType.ENDORSEMENT or outcome_for(round_) is not None:
        return None
    process = round_.process
    tally_ = round_tally(process, round_)
    result = tally_.result
    counts = result.tally
    outcome = Outcome(
        process_id=process.id,
        round_id=round_.id,
        version_id=round_.version_id,
        decision_rule=process.decision_rule.value,
        quorum=process.quorum,
        qualified_share_percent=process.qualified_share_percent,
        participants=counts.participants,
        endorsed=counts.endorsed,
        with_reservations=counts.with_reservations,
        abstained=counts.abstained,
        objected=counts.objected,
        no_response=counts.no_response,
        adopted=result.adopted,
        reasons=",".join(r.value for r in result.reasons),
        fixed_at=round_.closed_at or utcnow(),
    )
    db.session.add(outcome)
    db.session.flush()
    audit.record(
        "outcome.fixed",
        actor=actor,
        object_type="outcome",
        object_id=outcome.id,
        payload={
            "process": process.id,
            "round": round_.id,
            "version": round_.version_id,
            "rule": outcome.decision_rule,
            "quorum": outcome.quorum,
            "share": outcome.qualified_share_percent,
            "adopted": outcome.adopted,
            "tally": {
                "participants": counts.participants,
                "endorsed": counts.endorsed,
                "with_reservations": counts.with_reservations,
                "abstained": counts.abstained,
                "objected": counts.objected,
                "no_response": counts.no_response,
            },
            "stances": sorted(r.stance.id for r in tally_.rows if r.counts and r.stance),
            "reasons": outcome.reasons,
        },
        origin=None if actor else "clock",
    )
    from consensus.audit import checkpoints

    outcome.checkpoint_id = checkpoints.make_checkpoint(actor).id
    db.session.flush()
    return outcome


def set_outcome_statement(
    outcome: Outcome, *, actor: User, statement: str, review_on: date | None
) -> None:
    """The facilitator's statement and optional review date; the numbers stay as fixed.
    Once the process is published the statement is part of the public record and stays."""
    process = db.session.get(Process, outcome.process_id)
    assert process is not None
    if not permissions.is_facilitator_of(actor, process):
        raise Forbidden(str(_l("Only a facilitator of this process may do this.")))
    if process.is_published:
        raise DomainError(str(_l("The process is published; its outcome statement is final.")))
    statement = visible_line(statement, field="statement")
    if not statement:
        raise DomainError(str(_l("Write the outcome statement.")), field="statement")
    if len(statement) > 20000:
        raise DomainError(str(_l("Use at most %(n)d characters.", n=20000)), field="statement")
    if review_on is not None and review_on <= utcnow().date():
        raise DomainError(str(_l("Choose a review date in the future.")), field="review_on")
    before = {"statement": outcome.statement, "review_on": outcome.review_on}
    outcome.statement = statement
    outcome.review_on = review_on
    outcome.statement_by_id = actor.id
    outcome.statement_at = utcnow()
    audit.record(
        "outcome.statement_set",
        actor=actor,
        object_type="outcome",
        object_id=outcome.id,
        payload={"before": before, "statement": statement, "review_on": review_on},
    )
    db.session.flush()


def outcomes_of(process: Process) -> list[Outcome]:
    return list(
        db.session.execute(
            select(Outcome)
            .join(Round, Round.id == Outcome.round_id)
            .where(Outcome.process_id == process.id)
            .order_by(Round.sequence)
        ).scalars()
    )


# --- Clearance --------------------------------------------------------------------------------


def record_clearance(
    round_: Round,
    *,
    actor: User,
    organisation: Organisation,
    decision: ClearanceDecision,
    remarks: str = "",
    at: datetime | None = None,
) -> Clearance:
    """An official clears the round's version for their organisation, or does not (with
    remarks). A change supersedes the previous decision; history is kept."""
    moment = at or utcnow()
    gate = permissions.gate(
        actor, Action.CLEAR, round_.process, organisation, round_=round_, at=moment
    )
    if not gate:
        raise Forbidden(gate.reason)
    if round_.version_id is None:
        raise DomainError(str(_l("This round has no version to clear yet.")))
    decision = ClearanceDecision(decision)
    remarks = visible_line(remarks, field="remarks")
    if decision == ClearanceDecision.NOT_CLEARED and not remarks:
        raise DomainError(str(_l("Say what stands in the way of clearance.")), field="remarks")
    if len(remarks) > MAX_TEXT:
        raise DomainError(str(_l("Use at most %(n)d characters.", n=MAX_TEXT)), field="remarks")
    transactions.one_writer_at_a_time("clearance", round_.id, organisation.id)
    db.session.execute(
        update(Clearance)
        .where(
            Clearance.round_id == round_.id,
            Clearance.organisation_id == organisation.id,
            Clearance.superseded_at.is_(None),
        )
        .values(superseded_at=moment)
    )
    clearance = Clearance(
        round_id=round_.id,
        organisation_id=organisation.id,
        version_id=round_.version_id,
        decision=decision,
        remarks=remarks,
        cleared_by_id=actor.id,
        cleared_by_name=actor.display_name,
        created_at=moment,
    )
    db.session.add(clearance)
    refused = str(
        _l("Someone else recorded clearance for %(org)s at the same moment.", org=organisation.name)
    )
    try:
        db.session.flush()
    except IntegrityError as error:
        raise Conflict(refused) from error
    audit.record(
        "clearance.recorded",
        actor=actor,
        object_type="clearance",
        object_id=clearance.id,
        organisation_id=organisation.id,
        payload={
            "round": round_.id,
            "version": round_.version_id,
            "decision": decision.value,
            "remarks": remarks,
        },
    )
    return clearance


def current_clearances(round_: Round) -> dict[int, Clearance]:
    rows = db.session.execute(
        select(Clearance).where(Clearance.round_id == round_.id, Clearance.superseded_at.is_(None))
    ).scalars()
    return {c.organisation_id: c for c in rows}


def clearance_history(round_: Round) -> list[Clearance]:
    return list(
        db.session.execute(
            select(Clearance).where(Clearance.round_id == round_.id).order_by(Clearance.id)
        ).scalars()
    )


def require_clearance_before_endorsement(round_: Round) -> None:
    """A process that requires clearance opens its endorsement round only when every
    participating organisation has cleared the version in an earlier clearance round,
    and no newer version has appeared since."""
    process = round_.process
    if round_.type != RoundType.ENDORSEMENT or not process.require_clearance:
        return
    earlier = [
        r
        for r in process.rounds
        if r.type == RoundType.CLEARANCE
        and r.state == RoundState.CLOSED
        and r.sequence < round_.sequence
    ]
    if not earlier:
        return  # the basic check in processes._check_can_open explains this case
    clearance_round = earlier[-1]
    target_id = round_.version_id or clearance_round.version_id
    if target_id is None:
        raise DomainError(str(_l("The clearance round had no version to clear.")))
    target = db.session.get(Version, target_id)
    assert target is not None
    latest = target.position.latest
    if round_.version_id is None and latest is not None and latest.id != target.id:
        raise DomainError(
            str(_l("A newer version appeared after clearance; clear it before endorsing."))
        )
    cleared = {
        org_id
        for org_id, c in current_clearances(clearance_round).items()
        if c.decision == ClearanceDecision.CLEARED and c.version_id == target.id
    }
    missing = process.participant_ids - cleared
    if missing:
        names = sorted(
            p.organisation.name
            for p in process.current_participations
            if p.organisation_id in missing
        )
        raise DomainError(
            str(
                _l(
                    "Not every organisation cleared version %(number)d: %(names)s.",
                    number=target.number,
                    names=", ".join(names),
                )
            )
        )


# --- Version changes during a round -----------------------------------------------------------


def on_version_created(version: Version, actor: User | None) -> None:
    """A new version during an open clearance or endorsement round moves the round to it.

    Stances and clearances on the old version stay in the history but stop counting; the
    people who can act for each participating organisation are told.
    """
    position = version.position
    rounds = (
        db.session.execute(
            select(Round)
            .join(Version, Version.id == Round.version_id)
            .where(
                Round.process_id == position.process_id,
                Round.state == RoundState.OPEN,
                Round.type.in_([RoundType.CLEARANCE, RoundType.ENDORSEMENT]),
                Version.position_id == position.id,
                Round.version_id != version.id,
            )
        )
        .scalars()
        .all()
    )
    for round_ in rounds:
        old = db.session.get(Version, round_.version_id)
        round_.version_id = version.id
        if round_.type == RoundType.ENDORSEMENT:
            acted = {s.organisation_id for s in current_stances(round_).values()}
        else:
            acted = {c.organisation_id for c in current_clearances(round_).values()}
        audit.record(
            "round.version_changed",
            actor=actor,
            object_type="round",
            object_id=round_.id,
            payload={
                "from": old.id if old else None,
                "to": version.id,
                "lapsed": sorted(acted),
            },
        )
        _tell_organisations(round_, version, old, acted)
    db.session.flush()


def _tell_organisations(
    round_: Round,
    version: Version,
    old: Version | None,
    acted: set[int],
) -> None:
    """Everyone who can act for a participating organisation in this round (the rule
    book: holders of the mandate and active substitutes, or officials for clearance)."""
    process = round_.process
    acting = permissions.who_can_act_many((round_, org_id) for org_id in process.participant_ids)
    people = {(user_id, org_id) for (_, org_id), ids in acting.items() for user_id in ids}
    for user_id, org_id in sorted(people):
        if org_id in acted:
            message = _l(
                "Version %(new)d of \u201c%(title)s\u201d was made during \u201c%(round)s\u201d. "
                "Your organisation's response on version %(old)d no longer counts: please "
                "respond again.",
                new=version.number,
                old=old.number if old else 0,
                title=version.position.title,
                round=round_.title,
            )
        else:
            message = _l(
                "Version %(new)d of \u201c%(title)s\u201d was made during \u201c%(round)s\u201d; "
                "the round is now about version %(new)d.",
                new=version.number,
                title=version.position.title,
                round=round_.title,
            )
        db.session.add(
            Notice(
                user_id=user_id,
                process_id=process.id,
                round_id=round_.id,
                organisation_id=org_id,
                message=str(message),
            )
        )


# --- Delegation -------------------------------------------------------------------------------


def create_delegation(
    *,
    actor: User,
    organisation: Organisation,
    delegate: User,
    valid_from: datetime,
    valid_until: datetime,
    note: str = "",
) -> Delegation:
    """A representative lends the mandate to another member of the same organisation for
    a period. Only a representative in their own right may (no chains of substitutes)."""
    now = utcnow()
    if not permissions.may_delegate(actor, organisation, now):
        raise Forbidden(
            str(_l("Only a representative of this organisation can delegate its mandate."))
        )
    if delegate.id == actor.id:
        raise DomainError(str(_l("Choose someone else.")), field="delegate_id")
    if not delegate.active or permissions.membership_in(delegate, organisation, now) is None:
        raise DomainError(
            str(_l("The substitute must be a member of %(org)s.", org=organisation.name)),
            field="delegate_id",
        )
    if valid_until <= valid_from:
        raise DomainError(str(_l("The period must end after it starts.")), field="valid_until")
    if valid_until <= now:
        raise DomainError(str(_l("The period must end in the future.")), field="valid_until")
    delegation = Delegation(
        organisation_id=organisation.id,
        delegator_id=actor.id,
        delegate_id=delegate.id,
        valid_from=valid_from,
        valid_until=valid_until,
        note=visible_line(note, field="note")[:2000],
    )
    db.session.add(delegation)
    db.session.flush()
    audit.record(
        "delegation.created",
        actor=actor,
        object_type="delegation",
        object_id=delegation.id,
        organisation_id=organisation.id,
        payload={
            "delegate": delegate.id,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "note": delegation.note,
        },
    )
    db.session.add(
        Notice(
            user_id=delegate.id,
            organisation_id=organisation.id,
            message=str(
                _l(
                    "%(name)s has made you substitute for the mandate of %(org)s until %(until)s.",
                    name=actor.display_name,
                    org=organisation.name,
                    until=valid_until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                )
            ),
        )
    )
    db.session.flush()
    return delegation


def revoke_delegation(delegation: Delegation, *, actor: User) -> None:
    if delegation.revoked_at is not None:
        raise DomainError(str(_l("This delegation was already revoked.")))
    if not can_revoke(actor, delegation):
        raise Forbidden(str(_l("You cannot revoke this delegation.")))
    delegation.revoked_at = utcnow()
    delegation.revoked_by_id = actor.id
    audit.record(
        "delegation.revoked",
        actor=actor,
        object_type="delegation",
        object_id=delegation.id,
        organisation_id=delegation.organisation_id,
    )
    db.session.flush()


def delegations_of(user: User) -> list[Delegation]:
    """Delegations this person gave or received, or that concern an organisation they
    represent (newest first)."""
    represented = [o.id for o in permissions.represented_organisations(user)]
    return list(
        db.session.execute(
            select(Delegation)
            .where(
                (Delegation.delegator_id == user.id)
                | (Delegation.delegate_id == user.id)
                | Delegation.organisation_id.in_(represented or [0])
            )
            .order_by(Delegation.created_at.desc(), Delegation.id.desc())
        ).scalars()
    )


# --- Who has acted (the process page's status table and the dashboard) ---------------------


def _stance_status(
    round_ids: list[int], organisation_ids: list[int] | None = None
) -> dict[tuple[int, int], tuple[datetime, str]]:
    """Counted stances only (on the round's current version). The detail names the stance
    unless the process hides the tally until the round closes."""
    statement = (
        select(
            Stance.round_id,
            Stance.organisation_id,
            Stance.cast_at,
            Stance.kind,
            Process.hide_tally_until_closed,
            Round.state,
        )
        .join(Round, Round.id == Stance.round_id)
        .join(Process, Process.id == Round.process_id)
        .where(
            Stance.round_id.in_(round_ids),
            Stance.superseded_at.is_(None),
            Stance.version_id == Round.version_id,
        )
    )
    if organisation_ids is not None:
        statement = statement.where(Stance.organisation_id.in_(organisation_ids))
    rows = db.session.execute(statement).all()
    labels = {kind: str(label) for kind, label in STANCE_LABELS.items()}  # once, not per row
    return {
        (round_id, org_id): (
            at,
            "" if hidden and state != RoundState.CLOSED else labels[StanceKind(kind)],
        )
        for round_id, org_id, at, kind, hidden, state in rows
    }


def _clearance_status(
    round_ids: list[int], organisation_ids: list[int] | None = None
) -> dict[tuple[int, int], tuple[datetime, str]]:
    statement = (
        select(
            Clearance.round_id, Clearance.organisation_id, Clearance.created_at, Clearance.decision
        )
        .join(Round, Round.id == Clearance.round_id)
        .where(
            Clearance.round_id.in_(round_ids),
            Clearance.superseded_at.is_(None),
            Clearance.version_id == Round.version_id,
        )
    )
    if organisation_ids is not None:
        statement = statement.where(Clearance.organisation_id.in_(organisation_ids))
    rows = db.session.execute(statement).all()
    labels = {decision: str(label) for decision, label in CLEARANCE_LABELS.items()}
    return {
        (round_id, org_id): (at, labels[ClearanceDecision(decision)])
        for round_id, org_id, at, decision in rows
    }


# --- The public board -------------------------------------------------------------------------

BOARD_FORMAT = "consensus-board/1"
RULE_FORMAT = "consensus-rule/1"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


def board_lines(process: Process) -> Iterator[dict[str, Any]]:
    """Every stance ever cast in the process's endorsement rounds, in recorded order,
    superseded ones included: one query, streamed.

    Columns, not Stance objects: a Stance loads its organisation and its version (with the
    version's whole text) eagerly, which made each batch of 500 rows several megabytes, and
    the ORM would keep an identity for every row (issue 23: lean workers).
    """
    rows = db.session.execute(
        select(
            Stance.id,
            Stance.kind,
            Stance.text,
            Stance.delegation_id,
            Stance.substitute_for_name,
            Stance.cast_by_title,
            Stance.cast_at,
            Stance.cast_by_name,
            Stance.superseded_at,
            Round.sequence,
            Round.title,
            Organisation.slug,
            Organisation.name,
            Version.number,
            Version.sha256,
        )
        .join(Round, Round.id == Stance.round_id)
        .join(Organisation, Organisation.id == Stance.organisation_id)
        .join(Version, Version.id == Stance.version_id)
        .where(Round.process_id == process.id)
        .order_by(Stance.id)
        .execution_options(yield_per=500)
    )
    for (
        stance_id,
        kind,
        text,
        delegation_id,
        substitute_for_name,
        cast_by_title,
        cast_at,
        cast_by_name,
        superseded_at,
        seq,
        round_title,
        org_slug,
        org_name,
        number,
        sha,
    ) in rows:
        mandate: dict[str, Any] = (
            {
                "type": "substitute",
                "delegation": delegation_id,
                "substitute_for": substitute_for_name,
            }
            if delegation_id
            else {"type": "representative"}
        )
        mandate["title"] = cast_by_title
        yield {
            "id": stance_id,
            "round": seq,
            "round_title": round_title,
            "organisation": org_slug,
            "organisation_name": org_name,
            "stance": kind.value,
            "text": text,
            "version": {"number": number, "sha256": sha},
            "cast_at": _iso(cast_at),
            "cast_by": cast_by_name,
            "mandate": mandate,
            "superseded_at": _iso(superseded_at),
        }


def rule_document(process: Process) -> dict[str, Any]:
    """What the re-tally script needs besides the board: the rule, the participants
    (non-responders count) and the outcomes the platform fixed, to compare against."""
    outcomes = []
    for outcome in outcomes_of(process):
        round_ = db.session.get(Round, outcome.round_id)
        assert round_ is not None
        outcomes.append(
            {
                "round": round_.sequence,
                "round_title": round_.title,
                "version": (
                    {"number": outcome.version.number, "sha256": outcome.version.sha256}
                    if outcome.version
                    else None
                ),
                "decision_rule": outcome.decision_rule,
                "quorum": outcome.quorum,
                "qualified_share_percent": outcome.qualified_share_percent,
                "adopted": outcome.adopted,
                "tally": {
                    "participants": outcome.participants,
                    "endorsed": outcome.endorsed,
                    "with_reservations": outcome.with_reservations,
                    "abstained": outcome.abstained,
                    "objected": outcome.objected,
                    "no_response": outcome.no_response,
                },
                "reasons": [r for r in outcome.reasons.split(",") if r],
                "fixed_at": _iso(outcome.fixed_at),
            }
        )
    return {
        "format": RULE_FORMAT,
        "process": process.slug,
        "title": process.title,
        "decision_rule": process.decision_rule.value,
        "quorum": process.quorum,
        "qualified_share_percent": process.qualified_share_percent,
        "participants": [
            {"organisation": p.organisation.slug, "name": p.organisation.name}
            for p in process.current_participations
        ],
        "outcomes": outcomes,
    }


def position_of(round_: Round) -> Position | None:
    if round_.version_id is None:
        return None
    version = db.session.get(Version, round_.version_id)
    return version.position if version else None


# --- Registration with the processes service --------------------------------------------------


def _on_round_closed(round_: Round, actor: User | None) -> None:
    fix_outcome(round_, actor)


def register() -> None:
    """Hook into processes and positions. Called once by consensus.hooks.register
    (create_app); idempotent."""
    if _on_round_closed not in processes.ROUND_CLOSED_HOOKS:
        processes.ROUND_CLOSED_HOOKS.append(_on_round_closed)
    if require_clearance_before_endorsement not in processes.ROUND_OPEN_CHECKS:
        processes.ROUND_OPEN_CHECKS.append(require_clearance_before_endorsement)
    processes.STATUS_PROVIDERS[RoundType.ENDORSEMENT] = _stance_status
    processes.STATUS_PROVIDERS[RoundType.CLEARANCE] = _clearance_status
    # RoundType.SIGNING: the signing feature registers its own provider the same way.
    if on_version_created not in positions.VERSION_CREATED_HOOKS:
        positions.VERSION_CREATED_HOOKS.append(on_version_created)
