"""The standing bodies of the demo world (issue 20): the official table (Ambtelijk Overleg
Digitalisering) that prepares for the Thorbecke table (Bestuurlijk Overleg Digitalisering),
with the four organisations; two past meetings of the Thorbecke table with decisions and
minutes, the next one with an agenda in preparation; the strategy's letter sent to the
ministry with the reply recorded; the study into an investment agenda as a follow-up action.

Idempotent like the rest of the demo world: every object is looked up by its natural key
(a body's slug, a meeting's title within its body, an action's title, a letter's addressee)
and only created when missing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from consensus.domain.timeutil import local_day, start_of_day
from consensus.extensions import db
from consensus.models import (
    ActionSource,
    ActionStatus,
    AgendaItemKind,
    BodyLevel,
    DecisionOutcome,
    DispatchChannel,
    FollowUpAction,
    LetterDispatch,
    MailState,
    Meeting,
    MeetingDecision,
    MembershipRole,
    Organisation,
    OutgoingMail,
    Position,
    Process,
    StandingBody,
    User,
    utcnow,
)
from consensus.services import accounts, bodies

SECRETARY = ("secretaris@example.org", "Noor Willems")
AO_SLUG = "ao-digitalisering"
BO_SLUG = "bo-digitalisering"
REPLY_SUMMARY = (
    "De staatssecretaris dankt de koepels voor de gezamenlijke inbreng en neemt de zes "
    "prioriteiten over in de strategie. Over de investeringsagenda volgt een gesprek in het "
    "BO Digitalisering zodra het onafhankelijke onderzoek klaar is."
)


def _ensure_body(slug: str, **values: object) -> StandingBody:
    body = (
        db.session.execute(select(StandingBody).where(StandingBody.slug == slug))
        .unique()
        .scalar_one_or_none()
    )
    if body is None:
        body = bodies.create_body(slug=slug, **values)  # type: ignore[arg-type]
    return body


def _find_meeting(body: StandingBody, title: str) -> Meeting | None:
    return db.session.execute(
        select(Meeting).where(Meeting.body_id == body.id, Meeting.title == title)
    ).scalar_one_or_none()


def _held(
    body: StandingBody,
    title: str,
    starts_at: datetime,
    *,
    secretary: User,
    place: str,
    items: list[tuple[str, AgendaItemKind, Process | None, Position | None]],
    decisions: list[tuple[int | None, DecisionOutcome, str]],
    minutes: str,
) -> Meeting:
    """A meeting that took place: its agenda published on time, its decisions and minutes."""
    meeting = bodies.plan_meeting(
        body,
        actor=secretary,
        title=title,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=2),
        place=place,
    )
    added = [
        bodies.add_agenda_item(
            meeting, actor=secretary, title=t, kind=kind, process=process, position=position
        )
        for t, kind, process, position in items
    ]
    bodies.publish_agenda(meeting, actor=secretary)
    # The agenda went out in time: record it as published when it was due.
    meeting.agenda_published_at = bodies.agenda_due_at(meeting)
    for index, outcome, text in decisions:
        bodies.record_decision(
            meeting,
            actor=secretary,
            text=text,
            outcome=outcome,
            item=added[index] if index is not None else None,
        )
    bodies.save_minutes(meeting, actor=secretary, minutes=minutes)
    return meeting


def build_bodies_chapter(
    *,
    admin: User,
    organisations: dict[str, Organisation],
    people: dict[tuple[str, MembershipRole], User],
    password: str,
) -> None:
    """The official and the Thorbecke table with their meetings, the letter and the actions.
    Their history is made up, like the rest of the demo's: the agendas it publishes are not
    e-mailed (the notices stay in the inbox)."""
    outbox_before = db.session.execute(select(func.max(OutgoingMail.id))).scalar() or 0
    _build_bodies_chapter(
        admin=admin, organisations=organisations, people=people, password=password
    )
    db.session.execute(
        delete(OutgoingMail).where(
            OutgoingMail.id > outbox_before, OutgoingMail.state == MailState.QUEUED
        )
    )
    db.session.flush()


def _build_bodies_chapter(
    *,
    admin: User,
    organisations: dict[str, Organisation],
    people: dict[tuple[str, MembershipRole], User],
    password: str,
) -> None:
    secretary = accounts.find_user_by_email(SECRETARY[0])
    if secretary is None:
        secretary = accounts.create_user(
            actor=None, email=SECRETARY[0], display_name=SECRETARY[1], password=password
        )
    bo = _ensure_body(
        BO_SLUG,
        actor=admin,
        name="Bestuurlijk Overleg Digitalisering (Thorbecketafel)",
        level=BodyLevel.ADMINISTRATIVE,
        description="Het bestuurlijk overleg over digitalisering van Rijk, provincies, "
        "gemeenten en waterschappen: **breed, gelijkwaardig en gezamenlijk**.",
        secretary=secretary,
        agenda_notice_days=10,
    )
    ao = _ensure_body(
        AO_SLUG,
        actor=admin,
        name="Ambtelijk Overleg Digitalisering",
        level=BodyLevel.OFFICIAL,
        description="Ambtenaren van de vier koepels bereiden de standpunten voor het "
        "Bestuurlijk Overleg Digitalisering voor.",
        prepares_for=bo,
        secretary=secretary,
        agenda_notice_days=5,
    )
    for slug in ("vng", "ipo", "uvw", "bzk"):
        organisation = organisations[slug]
        representative = people[(slug, MembershipRole.REPRESENTATIVE)]
        official = people[(slug, MembershipRole.OFFICIAL)]
        if organisation.id not in bo.organisation_ids:
            bodies.set_seat(
                bo,
                actor=admin,
                organisation=organisation,
                seat_holder=representative,
                substitute=official,
            )
        if organisation.id not in ao.organisation_ids:
            bodies.set_seat(
                ao, actor=admin, organisation=organisation, seat_holder=official, substitute=None
            )
    if _find_meeting(bo, "BO Digitalisering — voorjaar") is not None:
        return  # the meetings, the letter and the actions were made before
    from consensus.worlds.demo import STRATEGY_SLUG

    process = db.session.execute(
        select(Process).where(Process.slug == STRATEGY_SLUG)
    ).scalar_one_or_none()
    position = (
        db.session.execute(
            select(Position).where(Position.process_id == process.id).order_by(Position.id)
        )
        .scalars()
        .first()
        if process is not None
        else None
    )
    # Meetings begin on the hour: 10:00 today (Amsterdam), counted from there.
    now = start_of_day(local_day(utcnow())) + timedelta(hours=10)
    day = timedelta(days=1)
    # The official table clears the joint input and forwards it to the Thorbecke table.
    ao_meeting = _held(
        ao,
        "AO Digitalisering — voorbereiding",
        now - 49 * day,
        secretary=secretary,
        place="Den Haag, Nassaulaan 12",
        items=[
            (
                "Gezamenlijke inbreng op de digitaliseringsstrategie",
                AgendaItemKind.DECISION,
                process,
                position,
            ),
        ],
        decisions=[
            (
                0,
                DecisionOutcome.CLEARED,
                "Ambtelijk akkoord op de gezamenlijke inbreng; door "
                "naar het BO Digitalisering ter vaststelling.",
            ),
        ],
        minutes="Aanwezig: de ambtenaren van VNG, IPO, UvW en BZK.\n\nDe inbreng is "
        "ambtelijk afgestemd. De zes prioriteiten blijven de indeling.",
    )
    cleared = db.session.execute(
        select(MeetingDecision).where(MeetingDecision.meeting_id == ao_meeting.id)
    ).scalar_one()
    # The Thorbecke table's first meeting: planned ahead, the position forwarded to it, and
    # (a demo compressing time) then moved to when it took place.
    first = bodies.plan_meeting(
        bo,
        actor=secretary,
        title="BO Digitalisering — voorjaar",
        starts_at=now + day,
        ends_at=now + day + timedelta(hours=2),
        place="Den Haag, ministerie van BZK",
    )
    forwarded = bodies.forward_decision(cleared, actor=secretary)
    bodies.update_meeting(
        first,
        actor=secretary,
        title=first.title,
        starts_at=now - 42 * day,
        ends_at=now - 42 * day + timedelta(hours=2),
        place=first.place,
        video_url="",
    )
    study_item = bodies.add_agenda_item(
        first,
        actor=secretary,
        title="Investeringsagenda digitale overheid",
        kind=AgendaItemKind.DISCUSSION,
        process=process,
    )
    bodies.publish_agenda(first, actor=secretary)
    first.agenda_published_at = bodies.agenda_due_at(first)
    bodies.record_decision(
        first,
        actor=secretary,
        outcome=DecisionOutcome.ADOPTED,
        item=forwarded,
        text="Het BO Digitalisering stelt de gezamenlijke inbreng vast en vraagt de vier "
        "bestuurders om die namens hun organisatie te ondertekenen.",
    )
    study = bodies.record_decision(
        first,
        actor=secretary,
        outcome=DecisionOutcome.NOTED,
        item=study_item,
        text="Er komt een onafhankelijk onderzoek naar een investeringsagenda voor de "
        "digitale overheid; BZK geeft de opdracht, de koepels denken mee.",
    )
    bodies.save_minutes(
        first,
        actor=secretary,
        minutes="Aanwezig: de bestuurders van VNG, IPO, UvW en BZK.\n\nDe inbreng wordt "
        "vastgesteld. Over de financiering is het overleg het eens dat eerst een "
        "onafhankelijk onderzoek nodig is.",
    )
    second = _held(
        bo,
        "BO Digitalisering — zomer",
        now - 21 * day,
        secretary=secretary,
        place="Utrecht, Huis van de Provincie",
        items=[
            ("Vaststelling verslag vorige vergadering", AgendaItemKind.DECISION, None, None),
            ("Voortgang onderzoek investeringsagenda", AgendaItemKind.INFORMATION, process, None),
        ],
        decisions=[
            (0, DecisionOutcome.ADOPTED, "Het verslag van de vorige vergadering is vastgesteld."),
            (1, DecisionOutcome.NOTED, "Het BO neemt kennis van de opdracht voor het onderzoek."),
        ],
        minutes="Aanwezig: de bestuurders van VNG, IPO en BZK; UvW laat zich vervangen.\n\n"
        "Het verslag van de vorige vergadering is vastgesteld.",
    )
    bodies.approve_minutes(first, actor=secretary)
    ao_second = _held(
        ao,
        "AO Digitalisering — zomer",
        now - 28 * day,
        secretary=secretary,
        place="Den Haag, Nassaulaan 12",
        items=[("Vaststelling verslag vorige vergadering", AgendaItemKind.DECISION, None, None)],
        decisions=[(0, DecisionOutcome.NOTED, "Het verslag is vastgesteld.")],
        minutes="Het verslag van de vorige vergadering is vastgesteld.",
    )
    bodies.approve_minutes(ao_meeting, actor=secretary)
    assert ao_second is not None and second is not None
    # The next meeting: its agenda in preparation by the secretary.
    following = bodies.plan_meeting(
        bo,
        actor=secretary,
        title="BO Digitalisering — najaar",
        starts_at=now + 14 * day,
        ends_at=now + 14 * day + timedelta(hours=2),
        place="Den Haag, ministerie van BZK",
        video_url="https://video.example.org/bo-digitalisering",
    )
    bodies.add_agenda_item(
        following,
        actor=secretary,
        title="Vaststelling verslag vorige vergadering",
        kind=AgendaItemKind.DECISION,
    )
    reply_item = bodies.add_agenda_item(
        following,
        actor=secretary,
        title="Antwoord van de staatssecretaris op de gezamenlijke inbreng",
        kind=AgendaItemKind.DISCUSSION,
        process=process,
        position=position,
    )
    reply_pdf = _reply_pdf()
    # The reply itself as the item's document (uploaded, not a link).
    bodies.add_agenda_document(
        reply_item,
        actor=secretary,
        content=reply_pdf,
        filename="antwoord-staatssecretaris.pdf",
        title="Antwoord van de staatssecretaris",
    )
    # The follow-up: the study (from the decision), an overdue action with progress, and
    # one from the letter.
    bzk, uvw, vng = organisations["bzk"], organisations["uvw"], organisations["vng"]
    today = local_day(now)
    bodies.create_action(
        actor=secretary,
        source=ActionSource.DECISION,
        decision=study,
        owner=bzk,
        title="Onafhankelijk onderzoek naar een investeringsagenda",
        description="Opdracht, begeleidingscommissie met de koepels en oplevering aan het BO.",
        due_on=today + 90 * day,
        theme="",
    )
    weerbaarheid = bodies.create_action(
        actor=secretary,
        source=ActionSource.DECISION,
        decision=study,
        owner=uvw,
        title="Uitwerking digitale weerbaarheid voor waterschappen",
        due_on=today - 3 * day,
        theme="Digitale weerbaarheid",
    )
    bodies.report_progress(
        weerbaarheid,
        actor=people[("uvw", MembershipRole.OFFICIAL)],
        status=ActionStatus.IN_PROGRESS,
        note="Eerste versie besproken met twee waterschappen.",
    )
    if process is not None:
        exists = db.session.execute(
            select(LetterDispatch.id).where(LetterDispatch.process_id == process.id)
        ).first()
        if exists is None:
            facilitator = process.facilitators[0].user if process.facilitators else admin
            dispatch = bodies.record_dispatch(
                process,
                actor=facilitator,
                position=position,
                addressee="De staatssecretaris van Binnenlandse Zaken en Koninkrijksrelaties",
                sent_on=today,
                channel=DispatchChannel.EMAIL,
                reference="VNG/IPO/UvW/BZK-2026-01",
            )
            bodies.record_reply(
                dispatch,
                actor=facilitator,
                received_on=today,
                summary=REPLY_SUMMARY,
                reference="2026-0000123456",
                document=reply_pdf,
                filename="antwoord-staatssecretaris.pdf",
            )
            bodies.create_action(
                actor=facilitator,
                source=ActionSource.LETTER,
                process=process,
                owner=vng,
                title="Reactie op het antwoord van de staatssecretaris voorbereiden",
                due_on=today + 10 * day,
                theme="Data",
            )
    db.session.flush()
    assert db.session.execute(select(FollowUpAction.id)).first() is not None


def _reply_pdf() -> bytes:
    """The minister's reply as a small PDF (laid out by WeasyPrint, as the letters are)."""
    from weasyprint import HTML

    html = (
        "<html lang='nl'><head><title>Antwoord van de staatssecretaris</title></head><body>"
        "<h1>Antwoord op de gezamenlijke inbreng</h1>"
        f"<p>{REPLY_SUMMARY}</p><p>De staatssecretaris van Binnenlandse Zaken en "
        "Koninkrijksrelaties</p></body></html>"
    )
    return HTML(string=html).write_pdf()  # type: ignore[no-any-return]
