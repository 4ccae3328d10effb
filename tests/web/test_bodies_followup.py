"""Standing bodies, the follow-up (issue 20): the clock (`flask rounds tick`) publishes
agendas when their notice period begins and tells about overdue actions once, by e-mail
through the outbox (a real SMTP server) as each person chose; a meeting is cancelled with its
reason and stays visible; a body is archived and becomes read-only; files on agenda items
are downloaded only by who sees the agenda; the meeting page reads its time as people do."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from consensus.domain.timeutil import local_day
from consensus.extensions import db
from consensus.models import (
    ActionSource,
    AgendaDocument,
    AgendaItemKind,
    AuditEvent,
    Delivery,
    Meeting,
    NotificationKind,
    NotificationPreference,
    OutgoingMail,
    StandingBody,
    User,
    utcnow,
)
from consensus.services import bodies
from tests.bodies_support import PDF, BodiesWorld
from tests.notification_support import html_of, mail_server, text_of
from tests.web import test_bodies
from tests.web.test_bodies import _meeting_url

# The fixtures of the bodies tests: the people, the process and both bodies.
login_as = test_bodies.login_as
world = test_bodies.world


@pytest.fixture
def smtp(app):
    with mail_server(app) as server:
        yield server


def deliver(runner) -> str:
    db.session.commit()  # the test's own snapshot ends first (SQLite), as a request's does
    result = runner.invoke(args=["notifications", "deliver", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def tick(runner) -> str:
    db.session.commit()
    result = runner.invoke(args=["rounds", "tick"])
    assert result.exit_code == 0, result.output
    return result.output


def _events(action: str) -> list[AuditEvent]:
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        ).scalars()
    )


def _plan(world, *, days: float, items: int = 1, title: str = "Bestuurlijk overleg") -> Meeting:
    """A meeting of the administrative body `days` from now (its agenda is due 7 days
    before), with `items` agenda items."""
    b: BodiesWorld = world["bodies"]
    start = utcnow().replace(second=0, microsecond=0) + timedelta(days=days)
    meeting = bodies.plan_meeting(
        b.administrative,
        actor=world["secretary"],
        title=title,
        starts_at=start,
        ends_at=start + timedelta(hours=2),
        place="Den Haag",
    )
    for n in range(items):
        bodies.add_agenda_item(
            meeting, actor=world["secretary"], title=f"Punt {n + 1}", kind=AgendaItemKind.DECISION
        )
    db.session.commit()
    return meeting


def _mails(kind: str) -> int:
    return db.session.execute(
        select(func.count()).select_from(OutgoingMail).where(OutgoingMail.kind == kind)
    ).scalar_one()


def _seated(world) -> list[User]:
    w = world["w"]
    return [w.reps[o.id] for o in w.orgs] + [w.officials[o.id] for o in w.orgs]


# --- The clock publishes agendas ----------------------------------------------------------------


def test_the_clock_publishes_due_agendas_once_and_mails_the_seat_holders(
    app, runner, login_as, world, smtp
):
    w = world["w"]
    english = w.reps[w.orgs[1].id]
    english.locale = "en"
    due = _plan(world, days=5, title="Thorbeckeoverleg")  # due two days ago
    not_yet = _plan(world, days=10, title="Later overleg")  # due in three days
    empty = _plan(world, days=3, items=0, title="Leeg overleg")  # due, but nothing on it
    cancelled = _plan(world, days=4, title="Afgelast overleg")
    bodies.cancel_meeting(cancelled, actor=world["secretary"], reason="Geen quorum.")
    deliver(runner)
    smtp.clear()

    output = tick(runner)
    assert "1 agenda(s) published." in output
    db.session.expire_all()
    assert db.session.get(Meeting, due.id).agenda_published_at is not None
    assert db.session.get(Meeting, due.id).agenda_published_by_id is None  # the clock
    for other in (not_yet, empty, cancelled):
        assert db.session.get(Meeting, other.id).agenda_published_at is None
    (event,) = [e for e in _events("meeting.agenda_published") if e.object_id == str(due.id)]
    assert event.origin == "clock" and event.actor_id is None
    # planned inside its notice period, so later than agreed (and shown so)
    assert json.loads(event.payload)["late"] is True

    deliver(runner)
    # every seat holder and substitute, and the secretary (the clock published, not they)
    expected = sorted([u.email for u in _seated(world)] + [world["secretary"].email])
    assert smtp.recipients() == expected
    (dutch,) = smtp.to(w.reps[w.orgs[0].id].email)
    assert dutch["Subject"].startswith("Agenda: Thorbeckeoverleg (Bestuurlijk Overleg")
    body = text_of(dutch)
    assert "is gepubliceerd" in body and "1. Punt 1" in body and "Den Haag" in body
    assert f"/bodies/bo-digitalisering/meetings/{due.id}#agenda" in body
    assert f"/bodies/bo-digitalisering/meetings/{due.id}#agenda" in html_of(dutch)
    assert dutch["List-Unsubscribe"]
    (mail_en,) = smtp.to(english.email)
    assert "has been published" in text_of(mail_en)
    # the members see it now, in the inbox too
    page = login_as(w.officials[w.orgs[0].id]).get(_meeting_url(world["bodies"], due))
    assert "Punt 1" in page.get_data(as_text=True)

    # once: the next tick publishes nothing and sends nothing
    smtp.clear()
    assert "agenda(s) published" not in tick(runner)
    deliver(runner)
    assert smtp.messages == []
    assert len([e for e in _events("meeting.agenda_published") if e.object_id == str(due.id)]) == 1


def test_the_clock_publishing_at_the_agreed_moment_is_on_time(app, login_as, world):
    meeting = _plan(world, days=10)  # due in three days
    due = bodies.agenda_due_at(meeting)
    assert bodies.publish_due_agendas(due - timedelta(minutes=1)) == 0
    assert bodies.publish_due_agendas(due + timedelta(minutes=1)) == 1
    db.session.commit()
    (event,) = [e for e in _events("meeting.agenda_published") if e.object_id == str(meeting.id)]
    assert json.loads(event.payload)["late"] is False
    page = login_as(world["member"]).get(_meeting_url(world["bodies"], meeting))
    assert "Later dan afgesproken" not in page.get_data(as_text=True)
    assert "Punt 1" in page.get_data(as_text=True)


def test_the_secretary_publishing_by_hand_mails_the_members_not_themselves(
    app, runner, login_as, world, smtp
):
    meeting = _plan(world, days=20)
    response = login_as(world["secretary"]).post(
        f"/bodies/bo-digitalisering/meetings/{meeting.id}/publish"
    )
    assert response.status_code == 302
    deliver(runner)
    assert smtp.recipients() == sorted(u.email for u in _seated(world))
    # the clock finds it published already
    assert "agenda(s) published" not in tick(runner)


def test_a_person_who_turned_agendas_off_gets_no_mail_but_the_inbox_notice(
    app, runner, login_as, world, smtp
):
    w = world["w"]
    quiet = w.officials[w.orgs[0].id]
    db.session.add(
        NotificationPreference(
            user_id=quiet.id, kind=NotificationKind.AGENDA_PUBLISHED, delivery=Delivery.OFF
        )
    )
    _plan(world, days=2)
    tick(runner)
    deliver(runner)
    assert quiet.email not in smtp.recipients() and smtp.recipients()
    page = login_as(quiet).get("/messages").get_data(as_text=True)
    assert "is gepubliceerd" in page


def test_two_clocks_at_once_publish_an_agenda_once(app, world):
    """Every instance may run the clock; two ticks at the same moment (one waiting for the
    other's commit) must not publish the same agenda twice, nor mail twice."""
    meeting = _plan(world, days=3)
    mails_before = _mails("agenda_published")
    first_ticked, published, errors = threading.Event(), {}, []

    def clock(name: str) -> None:
        with app.test_request_context("/", method="POST"):
            try:
                if name == "second":
                    first_ticked.wait(10)
                published[name] = bodies.publish_due_agendas()
                if name == "first":
                    first_ticked.set()
                    time.sleep(0.3)  # the second clock runs into us meanwhile
                db.session.commit()
            except Exception as error:  # reported below, with its type
                errors.append(error)
                first_ticked.set()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=clock, args=(n,)) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert published == {"first": 1, "second": 0}
    db.session.rollback()
    events = [e for e in _events("meeting.agenda_published") if e.object_id == str(meeting.id)]
    assert len(events) == 1
    assert _mails("agenda_published") - mails_before == len(_seated(world)) + 1


# --- Overdue actions by e-mail ------------------------------------------------------------------


def test_overdue_actions_are_mailed_once_from_the_tick(app, runner, login_as, world, smtp):
    b: BodiesWorld = world["bodies"]
    action = bodies.create_action(
        actor=world["secretary"],
        title="Onafhankelijk onderzoek naar een investeringsagenda",
        owner=world["owner"],
        due_on=local_day(utcnow()) - timedelta(days=2),
        source=ActionSource.DECISION,
        decision=b.cleared,
    )
    db.session.commit()
    assert "3 overdue notice(s) written." in tick(runner)
    deliver(runner)
    owner = world["owner"]
    w = world["w"]
    assert smtp.recipients() == sorted(
        [w.reps[owner.id].email, w.officials[owner.id].email, world["secretary"].email]
    )
    mail = smtp.to(w.officials[owner.id].email)[0]
    assert "Onafhankelijk onderzoek naar een investeringsagenda" in mail["Subject"]
    assert f"/actions/{action.id}" in text_of(mail) and f"/actions/{action.id}" in html_of(mail)
    assert "is nog niet afgerond" in text_of(mail)
    # not every tick: once per action
    smtp.clear()
    assert "overdue notice" not in tick(runner)
    deliver(runner)
    assert smtp.messages == []


# --- Cancelling a meeting -----------------------------------------------------------------------


def test_a_meeting_is_cancelled_with_its_reason_and_stays_visible(
    app, runner, login_as, world, smtp
):
    b: BodiesWorld = world["bodies"]
    secretary = login_as(world["secretary"])
    url = _meeting_url(b, b.ahead)
    assert "Vergadering laten vervallen" in secretary.get(url).get_data(as_text=True)
    # no reason: refused, nothing changes
    response = secretary.post(f"{url}/cancel", data={"cancel-reason": "  "})
    assert response.status_code == 400
    assert "Zeg waarom de vergadering vervalt." in response.get_data(as_text=True)
    assert db.session.get(Meeting, b.ahead.id).cancelled_at is None
    # a member may not cancel
    member = login_as(world["member"])
    assert member.post(f"{url}/cancel", data={"cancel-reason": "Nee"}).status_code == 403
    deliver(runner)
    smtp.clear()
    response = secretary.post(f"{url}/cancel", data={"cancel-reason": "De minister is verhinderd."})
    assert response.status_code == 302
    db.session.expire_all()
    meeting = db.session.get(Meeting, b.ahead.id)
    assert (
        meeting.cancelled_at is not None and meeting.cancel_reason == "De minister is verhinderd."
    )
    (event,) = _events("meeting.cancelled")
    assert json.loads(event.payload)["reason"] == "De minister is verhinderd."
    deliver(runner)
    assert smtp.recipients() == sorted(u.email for u in _seated(world))
    mail = smtp.messages[0]
    assert mail["Subject"].startswith("Vervallen: Bestuurlijk overleg")
    assert "De minister is verhinderd." in text_of(mail)
    # it stays: on its page (with the reason) and on the body's page, marked
    page = member.get(url).get_data(as_text=True)
    assert "Vervallen" in page and "De minister is verhinderd." in page
    assert "Vervallen" in member.get("/bodies/bo-digitalisering").get_data(as_text=True)
    # nothing more happens there: no agenda, no second cancellation, no forwarding to it
    assert "Vergadering laten vervallen" not in secretary.get(url).get_data(as_text=True)
    secretary.post(f"{url}/cancel", data={"cancel-reason": "Nogmaals"})
    assert len(_events("meeting.cancelled")) == 1
    with pytest.raises(bodies.Conflict):
        bodies.add_agenda_item(meeting, actor=world["secretary"], title="Te laat")
    db.session.rollback()
    assert bodies.next_open_meeting(b.administrative) is None
    # the calendar feed strikes it out; the dashboard leaves it out
    client = login_as(world["member"])
    client.post("/account/calendar")
    db.session.expire_all()
    token = db.session.get(User, world["member"].id).calendar_token
    calendar = Calendar.from_ical(app.test_client().get(f"/calendar/{token}.ics").data)
    (vevent,) = [
        e for e in calendar.walk("VEVENT") if str(e["uid"]) == f"meeting-{meeting.id}@consensus"
    ]
    assert str(vevent["status"]) == "CANCELLED"
    dashboard = member.get("/").get_data(as_text=True)
    upcoming = dashboard.split('id="meetings"', 1)[-1].split("</section>", 1)[0]
    assert f"/meetings/{meeting.id}" not in upcoming


def test_a_meeting_that_has_begun_cannot_be_cancelled(app, login_as, world):
    b: BodiesWorld = world["bodies"]
    response = login_as(world["secretary"]).post(
        f"{_meeting_url(b, b.held)}/cancel", data={"cancel-reason": "Te laat"}
    )
    assert response.status_code == 400
    assert "kan niet meer vervallen" in response.get_data(as_text=True)
    assert not _events("meeting.cancelled")


# --- Archiving a body ---------------------------------------------------------------------------


def test_archiving_a_body_keeps_it_read_only(app, login_as, world):
    b: BodiesWorld = world["bodies"]
    admin = login_as(world["admin"])
    # its planned meeting first
    response = admin.post("/bodies/bo-digitalisering/archive", follow_redirects=True)
    assert "laat die eerst vervallen" in response.get_data(as_text=True)
    assert db.session.get(StandingBody, b.administrative.id).archived_at is None
    assert login_as(world["secretary"]).post("/bodies/bo-digitalisering/archive").status_code == 403
    bodies.cancel_meeting(b.ahead, actor=world["secretary"], reason="Het overleg stopt.")
    db.session.commit()
    response = admin.post("/bodies/bo-digitalisering/archive")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(StandingBody, b.administrative.id).archived_at is not None
    (event,) = _events("body.archived")
    assert event.object_id == str(b.administrative.id)
    # still readable by its members, marked
    member = login_as(world["member"])
    page = member.get("/bodies/bo-digitalisering")
    assert page.status_code == 200 and "Gearchiveerd" in page.get_data(as_text=True)
    assert member.get(_meeting_url(b, b.ahead)).status_code == 200
    # read-only: no new meetings, no composition changes, not for the administrator either
    secretary = login_as(world["secretary"])
    assert secretary.get("/bodies/bo-digitalisering/meetings/new").status_code == 403
    assert admin.get("/bodies/bo-digitalisering/edit").status_code == 403
    before = db.session.execute(select(func.count()).select_from(Meeting)).scalar_one()
    with pytest.raises(bodies.Conflict):
        bodies.plan_meeting(
            db.session.get(StandingBody, b.administrative.id),
            actor=world["admin"],
            title="Nog een",
            starts_at=utcnow() + timedelta(days=3),
            ends_at=utcnow() + timedelta(days=3, hours=1),
        )
    db.session.rollback()
    assert db.session.execute(select(func.count()).select_from(Meeting)).scalar_one() == before
    # the official body can no longer forward to it
    with pytest.raises(bodies.Conflict):
        bodies.forward_decision(b.cleared, actor=world["secretary"])
    db.session.rollback()


# --- Documents on agenda items ------------------------------------------------------------------


def _package(entries: dict[str, bytes], *, mimetype_first: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        if mimetype_first is not None:
            package.writestr("mimetype", mimetype_first)
        for name, content in entries.items():
            package.writestr(name, content)
    return buffer.getvalue()


DOCX = _package({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
ODT = _package(
    {"content.xml": b"<office:document-content/>"},
    mimetype_first=b"application/vnd.oasis.opendocument.text",
)


def _upload(client, url: str, item_id: int, content: bytes, filename: str, **extra):
    """The browser's multipart POST; the body is built in memory (werkzeug's test client
    would spool a large one to a temporary file it never closes)."""
    fields = {
        "document-item_id": str(item_id),
        "document-title": extra.get("title", ""),
        "document-document": FileStorage(
            io.BytesIO(content), filename=filename, content_type=extra.get("claimed", "text/html")
        ),
    }
    stream, length, boundary = stream_encode_multipart(fields, use_tempfile=False)
    return client.post(
        f"{url}/documents",
        input_stream=stream,
        content_length=length,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def test_documents_on_agenda_items(app, client, login_as, world):
    b: BodiesWorld = world["bodies"]
    meeting = _plan(world, days=20)
    item = meeting.items[0]
    url = _meeting_url(b, meeting)
    secretary = login_as(world["secretary"])
    # refused: a file that is not what its name says, a type we do not take, too large
    for content, name in [
        (b"MZ\x90\x00 not a pdf", "notitie.pdf"),
        (b"<script>alert(1)</script>", "notitie.html"),
        (_package({"word/document.xml": b"x"}), "notitie.docx"),  # no [Content_Types].xml
        (_package({"x": b"y"}, mimetype_first=b"text/html"), "notitie.odt"),
    ]:
        response = _upload(secretary, url, item.id, content, name)
        assert response.status_code == 400, name
        assert "Upload een PDF-, ODF- (odt, ods, odp) of Office-bestand" in response.get_data(
            as_text=True
        )
    big = b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024)
    response = _upload(secretary, url, item.id, big, "groot.pdf")
    assert response.status_code == 400
    assert "Het bestand is groter dan 10 MB." in response.get_data(as_text=True)
    assert not item.documents
    # accepted: PDF, DOCX, ODT; the type is ours, not the browser's claim
    for content, name in [(PDF, "Notitie inbreng.pdf"), (DOCX, "brief.docx"), (ODT, "verslag.odt")]:
        response = _upload(secretary, url, item.id, content, name, title="")
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
    documents = list(
        db.session.execute(
            select(AgendaDocument)
            .where(AgendaDocument.item_id == item.id)
            .order_by(AgendaDocument.id)
        ).scalars()
    )
    assert [(d.filename, d.content_type) for d in documents] == [
        ("Notitie-inbreng.pdf", "application/pdf"),
        ("brief.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("verslag.odt", "application/vnd.oasis.opendocument.text"),
    ]
    events = _events("meeting.document_added")
    assert len(events) == 4  # one more in the world (bodies_support)
    assert json.loads(events[-1].payload)["sha256"] == documents[-1].sha256
    page = secretary.get(url).get_data(as_text=True)
    assert "Notitie-inbreng.pdf" in page and "brief.docx" in page
    download = f"{url}/documents/{documents[0].id}"
    response = secretary.get(download)
    assert response.status_code == 200 and response.data == PDF
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="Notitie-inbreng.pdf"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    # members: not before the agenda is published (404, as the agenda), then yes
    member = login_as(world["member"])
    assert member.get(download).status_code == 404
    bodies.publish_agenda(db.session.get(Meeting, meeting.id), actor=world["secretary"])
    db.session.commit()
    assert member.get(download).status_code == 200
    # outsiders and anonymous visitors never
    assert login_as(world["outsider"]).get(download).status_code == 404
    assert client.get(download).status_code in (302, 303)
    # another meeting's address for the same document: 404
    assert (
        secretary.get(f"{_meeting_url(b, b.held)}/documents/{documents[0].id}").status_code == 404
    )
    # links stay possible next to files
    assert "Link naar het document" in secretary.get(url).get_data(as_text=True)


# --- The meeting page reads its time as people do ----------------------------------------------


def test_the_meeting_page_shows_its_time_without_seconds_or_zone_names(app, login_as, world):
    b: BodiesWorld = world["bodies"]
    start = utcnow().replace(hour=11, minute=0, second=40, microsecond=0) + timedelta(days=30)
    meeting = bodies.plan_meeting(
        b.administrative,
        actor=world["secretary"],
        title="Tijdstip",
        starts_at=start,
        ends_at=start.replace(second=0) + timedelta(hours=2),
    )
    db.session.commit()
    page = login_as(world["secretary"]).get(_meeting_url(b, meeting)).get_data(as_text=True)
    local = start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam"))
    hour = local.hour
    assert f"{hour:02d}:00–{hour + 2:02d}:00" in page
    assert "standaardtijd" not in page and "zomertijd" not in page
    assert f"{hour:02d}:00:40" not in page
