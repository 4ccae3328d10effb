"""Who may sign: the adopted outcome, the organisations whose endorsement counted, and
the signing rounds of a process (the rule itself is permissions.signing.may_sign)."""

from __future__ import annotations

from sqlalchemy import select

from consensus.extensions import db
from consensus.models import (
    Organisation,
    Outcome,
    Process,
    Round,
    RoundState,
    RoundType,
    Stance,
    StanceKind,
)
from consensus.permissions.signing import may_sign  # noqa: F401  (the rule book)

COUNTED_FOR_ADOPTION = (StanceKind.ENDORSE, StanceKind.ENDORSE_WITH_RESERVATIONS)


def adopted_outcome(process: Process, version_id: int | None) -> Outcome | None:
    """The latest adopted outcome of the process about this version, if any."""
    if version_id is None:
        return None
    return db.session.execute(
        select(Outcome)
        .where(
            Outcome.process_id == process.id,
            Outcome.version_id == version_id,
            Outcome.adopted.is_(True),
        )
        .order_by(Outcome.fixed_at.desc(), Outcome.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def counted_stances(process: Process, round_: Round) -> list[Stance]:
    """The stances that counted for adoption of the round's version (endorse, with or
    without reservations), in the order of the organisations' names."""
    outcome = adopted_outcome(process, round_.version_id)
    if outcome is None:
        return []
    stances = db.session.execute(
        select(Stance).where(
            Stance.round_id == outcome.round_id,
            Stance.superseded_at.is_(None),
            Stance.version_id == outcome.version_id,
            Stance.kind.in_(COUNTED_FOR_ADOPTION),
        )
    ).scalars()
    participants = process.participant_ids
    return sorted(
        (s for s in stances if s.organisation_id in participants),
        key=lambda s: s.organisation.name,
    )


def eligible_organisations(process: Process, round_: Round) -> list[Organisation]:
    return [s.organisation for s in counted_stances(process, round_)]


def signing_rounds(process: Process) -> list[Round]:
    return [r for r in process.rounds if r.type == RoundType.SIGNING]


def current_signing_round(process: Process) -> Round | None:
    """The open signing round, else the latest one that has opened."""
    rounds = [r for r in signing_rounds(process) if r.state != RoundState.SCHEDULED]
    open_ = [r for r in rounds if r.state == RoundState.OPEN]
    return (open_ or rounds[-1:] or [None])[0]
