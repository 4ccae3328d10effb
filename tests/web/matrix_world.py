"""The world the authorization matrix runs in: one of every kind of user, and one of every
kind of object a URL can point at. Not a fixture module, so other tests can build it too."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from consensus.audit import checkpoints
from consensus.domain.timeutil import local_day
from consensus.extensions import db
from consensus.models import (
    ActionSource,
    Amendment,
    AuditEvent,
    Comment,
    DispatchChannel,
    Membership,
    MembershipRole,
    Organisation,
    Position,
    Process,
    Round,
    RoundState,
    RoundType,
    User,
    utcnow,
)
from consensus.services import accounts, bodies, processes
from consensus.services import drafting as drafting_service
from consensus.services import positions as position_service
from tests.bodies_support import build_bodies
from tests.factories import make_membership, make_organisation, make_process, make_user
from tests.helpers import give_session

ROLES = (
    "anonymous",
    "observer",
    "official",
    "representative",
    "other_representative",
    "facilitator",
    "admin",
)

BODY = """# Gezamenlijke inbreng

Wij danken u voor de gelegenheid om te reageren.

Gemeenten en provincies willen als gelijkwaardige partners meedoen.
"""


@dataclass
class MatrixWorld:
    """VNG and IPO take part in the process; "Buiten" does not."""

    users: dict[str, User]
    participant: Organisation
    other_participant: Organisation
    outsider: Organisation
    process: Process
    round: Round
    position: Position
    comment: Comment
    amendment: Amendment
    membership: Membership
    calendar_token: str
    reset_token: str
    extra: dict[str, object] = field(default_factory=dict)

    def client_for(self, app: Flask, role: str) -> FlaskClient:
        client = app.test_client()
        if role != "anonymous":
            give_session(app, client, self.users[role])
        return client

    def url_values(self) -> dict[str, object]:
        """Default values for the URL variables of every rule, by variable name."""
        return {
            "slug": self.process.slug,
            "round_id": self.round.id,
            "position_id": self.position.id,
            "number": 1,
            "comment_id": self.comment.id,
            "anchor": self.position.versions[0].paragraphs[-1].anchor,
            "organisation_id": self.participant.id,
            "user_id": self.users["official"].id,
            "membership_id": self.membership.id,
            "token": self.calendar_token,
            "seq": 1,
            "checkpoint_id": 1,
            "delegation_id": 1,
            "filename": "css/consensus.css",
            "org_id": self.participant.id,
            "org_slug": self.participant.slug,
            "key_id": 1,
            "signature_id": 1,
            "bundle_slug": self.participant.slug,
            "token_id": 1,
            "contribution_id": self.extra.get("contribution_id", 1),
            "step": "clear",
            # standing bodies (tests/bodies_support.py): the official body's held meeting
            "meeting_id": self.extra["bodies"].held.id,  # type: ignore[attr-defined]
            "seat_id": self.extra["bodies"].official.seats[0].id,  # type: ignore[attr-defined]
            "item_id": self.extra["bodies"].cleared.agenda_item_id,  # type: ignore[attr-defined]
            "decision_id": self.extra["bodies"].cleared.id,  # type: ignore[attr-defined]
            "document_id": self.extra["bodies"].document.id,  # type: ignore[attr-defined]
            "action_id": self.extra["action_id"],
            "dispatch_id": self.extra["dispatch_id"],
        }


def build_matrix_world() -> MatrixWorld:
    facilitator = make_user("facilitator@example.org", is_facilitator=True)
    admin = make_user("admin@example.org", is_admin=True)
    vng = make_organisation("vng", name="VNG")
    ipo = make_organisation("ipo", name="IPO")
    outsider = make_organisation("buiten", name="Buiten")
    users = {"facilitator": facilitator, "admin": admin}
    memberships = {}
    for role, org, kind in [
        ("observer", vng, MembershipRole.OBSERVER),
        ("official", vng, MembershipRole.OFFICIAL),
        ("representative", vng, MembershipRole.REPRESENTATIVE),
        ("other_representative", outsider, MembershipRole.REPRESENTATIVE),
        ("ipo_representative", ipo, MembershipRole.REPRESENTATIVE),
        ("ipo_official", ipo, MembershipRole.OFFICIAL),
    ]:
        users[role] = make_user(f"{role}@example.org", name=role)
        memberships[role] = make_membership(users[role], org, kind)
    now = utcnow()
    process = make_process(
        facilitator,
        [vng, ipo],
        title="Gezamenlijke inbreng",
        rounds=[
            (RoundType.CONSULTATION, now - timedelta(minutes=5), now + timedelta(days=2)),
            (RoundType.ENDORSEMENT, now + timedelta(days=3), now + timedelta(days=5)),
        ],
    )
    position = position_service.create_position(
        process, actor=facilitator, title="Brief", subject="Reactie", body=BODY
    )
    processes.tick()
    db.session.commit()
    round_, endorsement_round = process.rounds[0], process.rounds[1]
    assert round_.state == RoundState.OPEN
    version = position.versions[0]
    comment = position_service.add_comment(
        version, process, actor=users["official"], body="Eens.", organisation=vng
    )
    amendment = position_service.propose_amendment(
        version,
        process,
        actor=users["official"],
        organisation=vng,
        proposed_text="Gemeenten, provincies en waterschappen willen meedoen.",
        rationale="Waterschappen horen erbij.",
        paragraph_anchor=version.paragraphs[-1].anchor,
    )
    # An organisation contribution in preparation (issue 21), drafted by VNG's official:
    # only VNG's officials and representatives see it.
    contribution = drafting_service.prepare_contribution(
        version,
        process,
        actor=users["official"],
        organisation=vng,
        kind="amendment",
        text="Wij doen mee als gelijken.",
        rationale="Korter.",
        paragraph_anchor=version.paragraphs[-1].anchor,
    )
    # Standing bodies: VNG (its representative holds the seat, its official substitutes) and
    # IPO sit at both tables; "Buiten" does not. Administrators run the meetings here (the
    # secretary is a kind of user of its own: test_authorization_matrix_bodies.py).
    secretary = make_user("secretary@example.org", name="secretary")
    users["secretary"] = secretary
    bodies_world = build_bodies(
        admin=admin,
        secretary=secretary,
        seats=[
            (vng, users["representative"], users["official"]),
            (ipo, users["ipo_representative"], None),
        ],
        process=process,
        position=position,
    )
    action = bodies.create_action(
        actor=secretary,
        title="Onafhankelijk onderzoek naar een investeringsagenda",
        owner=vng,
        due_on=local_day(now) - timedelta(days=1),
        source=ActionSource.DECISION,
        decision=bodies_world.cleared,
    )
    dispatch = bodies.record_dispatch(
        process,
        actor=facilitator,
        addressee="De minister van BZK",
        sent_on=local_day(now),
        channel=DispatchChannel.EMAIL,
        reference="2026-0001",
    )
    bodies.record_reply(
        dispatch,
        actor=facilitator,
        received_on=local_day(now),
        summary="De minister dankt voor de brief.",
        document=b"%PDF-1.4\n% reply\n",
        filename="antwoord.pdf",
    )
    db.session.commit()
    checkpoints.init_key()
    checkpoints.make_checkpoint()
    calendar_token = processes.reset_calendar_token(users["official"])
    issued = accounts.request_password_reset("official@example.org", minutes=30)
    assert issued is not None
    db.session.commit()
    return MatrixWorld(
        users=users,
        participant=vng,
        other_participant=ipo,
        outsider=outsider,
        process=process,
        round=round_,
        position=position,
        comment=comment,
        amendment=amendment,
        membership=memberships["official"],
        calendar_token=calendar_token,
        reset_token=issued[1],
        extra={
            "contribution_id": contribution.id,
            "endorsement_round": endorsement_round,
            "bodies": bodies_world,
            "action_id": action.id,
            "dispatch_id": dispatch.id,
            "participant_event_seq": db.session.execute(
                select(func.min(AuditEvent.seq)).where(AuditEvent.organisation_id == vng.id)
            ).scalar_one(),
        },
    )


# Least privileged first: a request that changes state (when allowed) is made by the
# roles that may, after those that may not have had their try.
ORDER = (
    "anonymous",
    "observer",
    "other_representative",
    "official",
    "representative",
    "admin",
    "facilitator",
)
