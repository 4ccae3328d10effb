"""A small world for endorsement tests: organisations with a representative and an official
each, a process with a position (version 1) and one open endorsement or clearance round."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from consensus.extensions import db
from consensus.models import (
    MembershipRole,
    Organisation,
    Process,
    Round,
    RoundType,
    User,
    utcnow,
)
from consensus.services import positions, processes
from tests.factories import make_membership, make_organisation, make_process, make_user


@dataclass
class World:
    facilitator: User
    process: Process
    round: Round
    orgs: list[Organisation]
    reps: dict[int, User] = field(default_factory=dict)
    officials: dict[int, User] = field(default_factory=dict)


def make_world(
    n: int = 4,
    *,
    round_types: tuple[RoundType, ...] = (RoundType.ENDORSEMENT,),
    open_first: bool = True,
    **settings: object,
) -> World:
    facilitator = make_user(is_facilitator=True, name="Facilitator")
    orgs = [make_organisation(name=f"Organisatie {chr(65 + i)}") for i in range(n)]
    reps, officials = {}, {}
    for org in orgs:
        reps[org.id] = make_user(name=f"Bestuurder {org.name[-1]}")
        make_membership(reps[org.id], org, MembershipRole.REPRESENTATIVE, title="Bestuurder")
        officials[org.id] = make_user(name=f"Ambtenaar {org.name[-1]}")
        make_membership(officials[org.id], org, MembershipRole.OFFICIAL)
    now = utcnow()
    rounds = [
        (t, now + timedelta(days=2 * i + 1), now + timedelta(days=2 * i + 2))
        for i, t in enumerate(round_types)
    ]
    process = make_process(facilitator, orgs, rounds=rounds, **settings)
    positions.create_position(
        process, actor=facilitator, title="Standpunt", body="Eerste alinea.\n\nTweede alinea.\n"
    )
    first = process.rounds[0]
    if open_first:
        open_now(first, facilitator)
    db.session.commit()
    return World(facilitator, process, first, orgs, reps, officials)


def open_now(round_: Round, actor: User) -> None:
    """Pull a planned round forward and open it (as a facilitator would)."""
    now = utcnow()
    processes.update_round(
        round_,
        actor=actor,
        title=round_.title,
        instructions=round_.instructions,
        opens_at=now - timedelta(minutes=1),
        closes_at=round_.closes_at,
    )
    processes.open_round(round_, actor=actor)
    db.session.commit()
