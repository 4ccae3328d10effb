"""Standing bodies for tests: an official table that prepares for an administrative one,
a meeting of each (the official one held, with a cleared position; the administrative one
ahead), built through the use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from consensus.extensions import db
from consensus.models import (
    AgendaDocument,
    AgendaItemKind,
    BodyLevel,
    DecisionOutcome,
    Meeting,
    MeetingDecision,
    Organisation,
    Position,
    Process,
    StandingBody,
    User,
    utcnow,
)
from consensus.services import bodies

PDF = b"%PDF-1.4\n% a note for the agenda\n%%EOF\n"


@dataclass
class BodiesWorld:
    official: StandingBody
    administrative: StandingBody
    held: Meeting  # the official body's meeting, begun two days ago
    cleared: MeetingDecision  # its decision: the position is cleared
    ahead: Meeting  # the administrative body's next meeting
    secretary: User
    document: AgendaDocument  # a PDF on the held meeting's item


def build_bodies(
    *,
    admin: User,
    secretary: User,
    seats: list[tuple[Organisation, User | None, User | None]],
    process: Process | None = None,
    position: Position | None = None,
) -> BodiesWorld:
    now = utcnow()
    administrative = bodies.create_body(
        actor=admin,
        name="Bestuurlijk Overleg Digitalisering",
        slug="bo-digitalisering",
        level=BodyLevel.ADMINISTRATIVE,
        secretary=secretary,
    )
    official = bodies.create_body(
        actor=admin,
        name="Ambtelijk Overleg Digitalisering",
        slug="ao-digitalisering",
        level=BodyLevel.OFFICIAL,
        prepares_for=administrative,
        secretary=secretary,
    )
    for body in (official, administrative):
        for organisation, holder, substitute in seats:
            bodies.set_seat(
                body,
                actor=admin,
                organisation=organisation,
                seat_holder=holder,
                substitute=substitute,
            )
    held = bodies.plan_meeting(
        official,
        actor=secretary,
        title="Ambtelijk overleg",
        starts_at=now - timedelta(days=2),
        ends_at=now - timedelta(days=2) + timedelta(hours=2),
        place="Den Haag",
    )
    item = bodies.add_agenda_item(
        held,
        actor=secretary,
        title="Gezamenlijke inbreng",
        kind=AgendaItemKind.DECISION,
        process=process,
        position=position,
    )
    document = bodies.add_agenda_document(
        item,
        actor=secretary,
        content=PDF,
        filename="notitie.pdf",
        title="Notitie bij de inbreng",
    )
    bodies.publish_agenda(held, actor=secretary)
    cleared = bodies.record_decision(
        held,
        actor=secretary,
        text="Ambtelijk akkoord op de gezamenlijke inbreng.",
        outcome=DecisionOutcome.CLEARED,
        item=item,
    )
    ahead = bodies.plan_meeting(
        administrative,
        actor=secretary,
        title="Bestuurlijk overleg",
        starts_at=now + timedelta(days=10),
        ends_at=now + timedelta(days=10, hours=2),
        video_url="https://video.example.org/bo",
    )
    db.session.commit()
    return BodiesWorld(official, administrative, held, cleared, ahead, secretary, document)
