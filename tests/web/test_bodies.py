"""Standing bodies (issue 20) through the app: setting a body up, the agenda reaching the
members, forwarding a cleared position, approving minutes at the next meeting, follow-up
actions (overdue on the dashboard), the letter sent and its reply, the public timeline and
its Atom feed, meetings in the calendar feed, and the query budgets of the new list pages."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # noqa: S405 - parsing our own feed in a test
from datetime import timedelta
from io import BytesIO

import pytest
from sqlalchemy import func, select

from consensus.domain.timeutil import local_day
from consensus.extensions import db
from consensus.models import (
    ActionSource,
    ActionStatus,
    AgendaItem,
    AuditEvent,
    DispatchChannel,
    FollowUpAction,
    LetterDispatch,
    Meeting,
    MeetingDecision,
    MembershipRole,
    MinutesState,
    Position,
    StandingBody,
    utcnow,
)
from consensus.services import bodies, processes
from tests.bodies_support import BodiesWorld, build_bodies
from tests.endorsement_support import make_world
from tests.factories import make_membership, make_organisation, make_user
from tests.helpers import give_session

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def login_as(app):
    """Each person their own client (a test here has several people at once)."""

    def _login(user):
        return give_session(app, app.test_client(), user)

    return _login


def _events(action: str) -> list[dict]:
    rows = db.session.execute(
        select(AuditEvent.payload).where(AuditEvent.action == action).order_by(AuditEvent.seq)
    ).scalars()
    return [json.loads(p) for p in rows]


def _count(model: type) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def world(app):
    """Four organisations in a process with a position; both bodies; people by kind."""
    w = make_world(4, open_first=False)
    admin = make_user("admin@example.org", is_admin=True, name="Beheerder")
    secretary = make_user("secretaris@example.org", name="Secretaris")
    first, second = w.orgs[0], w.orgs[1]
    outsider_org = make_organisation("buiten", name="Buiten")
    outsider = make_user("buiten@example.org", name="Buitenstaander")
    make_membership(outsider, outsider_org, MembershipRole.REPRESENTATIVE)
    position = db.session.execute(
        select(Position).where(Position.process_id == w.process.id)
    ).scalar_one()
    built = build_bodies(
        admin=admin,
        secretary=secretary,
        seats=[(o, w.reps[o.id], w.officials[o.id]) for o in w.orgs],
        process=w.process,
        position=position,
    )
    return {
        "w": w,
        "admin": admin,
        "secretary": secretary,
        "member": w.officials[first.id],
        "rep": w.reps[first.id],
        "owner": first,
        "other": second,
        "outsider": outsider,
        "bodies": built,
    }


def _meeting_url(b: BodiesWorld, meeting: Meeting) -> str:
    body = db.session.get(StandingBody, meeting.body_id)
    return f"/bodies/{body.slug}/meetings/{meeting.id}"


def test_an_administrator_sets_a_body_up(app, login_as, world):
    client = login_as(world["admin"])
    before = _count(StandingBody)
    # bad input: a slug with capitals and spaces, and an official body "preparing" for an
    # official one: clear messages, nothing created
    response = client.post(
        "/bodies/new",
        data={"name": "Tafel", "slug": "Niet Goed", "level": "official", "agenda_notice_days": "7"},
    )
    assert response.status_code == 200
    assert "kleine letters" in response.get_data(as_text=True)
    official_id = world["bodies"].official.id
    response = client.post(
        "/bodies/new",
        data={
            "name": "Tafel",
            "slug": "tafel",
            "level": "official",
            "prepares_for": str(official_id),
            "agenda_notice_days": "7",
        },
    )
    assert response.status_code == 200
    assert _count(StandingBody) == before
    response = client.post(
        "/bodies/new",
        data={
            "name": "Thorbecketafel",
            "slug": "thorbecketafel",
            "level": "administrative",
            "secretary": str(world["secretary"].id),
            "agenda_notice_days": "10",
        },
    )
    assert response.status_code == 302
    body = db.session.execute(
        select(StandingBody).where(StandingBody.slug == "thorbecketafel")
    ).scalar_one()
    response = client.post(
        "/bodies/thorbecketafel/seats",
        data={
            "seat-organisation_id": str(world["owner"].id),
            "seat-seat_holder_id": str(world["rep"].id),
            "seat-substitute_id": str(world["rep"].id),
        },
    )
    assert response.status_code == 400  # the substitute must be someone else
    assert not body.seats
    response = client.post(
        "/bodies/thorbecketafel/seats",
        data={
            "seat-organisation_id": str(world["owner"].id),
            "seat-seat_holder_id": str(world["rep"].id),
            "seat-substitute_id": str(world["member"].id),
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert [(s.seat_holder_id, s.substitute_id) for s in body.seats] == [
        (world["rep"].id, world["member"].id)
    ]
    assert _events("body.created")[-1]["slug"] == "thorbecketafel"
    assert _events("body.seat_added")[-1]["substitute"] == world["member"].id
    # the member of a seated organisation sees it; the outsider gets 404
    assert login_as(world["member"]).get("/bodies/thorbecketafel").status_code == 200
    assert login_as(world["outsider"]).get("/bodies/thorbecketafel").status_code == 404
    assert "Thorbecketafel" not in login_as(world["outsider"]).get("/bodies").get_data(as_text=True)


def test_the_agenda_reaches_the_members_when_published(app, login_as, world):
    b: BodiesWorld = world["bodies"]
    url = _meeting_url(b, b.ahead)
    secretary = login_as(world["secretary"])
    response = secretary.post(
        f"{url}/items",
        data={
            "item-title": "Investeringsagenda",
            "item-kind": "discussion",
            "item-document_url": "ftp://elders",
        },
    )
    assert response.status_code == 400
    assert "https://" in response.get_data(as_text=True)
    response = secretary.post(
        f"{url}/items",
        data={
            "item-title": "Investeringsagenda",
            "item-kind": "discussion",
            "item-process_id": str(world["w"].process.id),
        },
    )
    assert response.status_code == 302
    member = login_as(world["member"])
    page = member.get(url).get_data(as_text=True)
    assert "Investeringsagenda" not in page  # not published yet
    assert secretary.post(f"{url}/publish").status_code == 302
    db.session.expire_all()
    assert b.ahead.agenda_published_at is not None
    page = member.get(url).get_data(as_text=True)
    assert "Investeringsagenda" in page
    # the member's dashboard and calendar feed show the meeting
    dashboard = member.get("/").get_data(as_text=True)
    assert "Bestuurlijk overleg" in dashboard and url in dashboard
    token = processes.reset_calendar_token(world["member"])
    db.session.commit()
    feed = member.get(f"/calendar/{token}.ics").get_data(as_text=True)
    assert f"meeting-{b.ahead.id}@consensus" in feed
    assert "Bestuurlijk Overleg Digitalisering: Bestuurlijk overleg" in feed
    outsider_token = processes.reset_calendar_token(world["outsider"])
    db.session.commit()
    assert "meeting-" not in member.get(f"/calendar/{outsider_token}.ics").get_data(as_text=True)
    assert _events("meeting.agenda_published")[-1]["items"] == 1


def test_forwarding_a_cleared_position(app, login_as, world):
    b: BodiesWorld = world["bodies"]
    secretary = login_as(world["secretary"])
    url = _meeting_url(b, b.held)
    response = secretary.post(f"{url}/decisions/{b.cleared.id}/forward")
    assert response.status_code == 302
    db.session.expire_all()
    decision = db.session.get(MeetingDecision, b.cleared.id)
    item = db.session.get(AgendaItem, decision.forwarded_to_item_id)
    assert item.meeting_id == b.ahead.id
    assert item.process_id == world["w"].process.id and item.position_id is not None
    assert item.kind.value == "decision"
    event = _events("meeting.decision_forwarded")[-1]
    assert event["to_meeting"] == b.ahead.id and event["item"] == item.id
    # once only: a second press changes nothing
    secretary.post(f"{url}/decisions/{b.cleared.id}/forward")
    assert len(_events("meeting.decision_forwarded")) == 1
    assert _count(AgendaItem) == 2
    # the administrative body adopts it; the chain is on the process page
    page = login_as(world["member"]).get(f"/processes/{world['w'].process.slug}")
    text = page.get_data(as_text=True)
    assert (
        "Ambtelijk Overleg Digitalisering" in text and "Bestuurlijk Overleg Digitalisering" in text
    )
    assert f"/bodies/bo-digitalisering/meetings/{b.ahead.id}" in text


def test_forwarding_needs_a_planned_meeting(app, login_as, world):
    b: BodiesWorld = world["bodies"]
    db.session.delete(db.session.get(Meeting, b.ahead.id))
    db.session.commit()
    response = login_as(world["secretary"]).post(
        f"{_meeting_url(b, b.held)}/decisions/{b.cleared.id}/forward", follow_redirects=True
    )
    assert "plant er eerst een" in response.get_data(as_text=True)
    assert db.session.get(MeetingDecision, b.cleared.id).forwarded_to_item_id is None


def test_minutes_are_approved_at_the_next_meeting(app, login_as, world):
    b: BodiesWorld = world["bodies"]
    secretary = login_as(world["secretary"])
    url = _meeting_url(b, b.held)
    assert (
        secretary.post(
            f"{url}/minutes", data={"minutes-minutes": "# Verslag\n\nAkkoord."}
        ).status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(Meeting, b.held.id).minutes.startswith("# Verslag")
    # no next meeting of the official body yet: refused
    response = secretary.post(f"{url}/minutes/approve", follow_redirects=True)
    assert "volgende vergadering" in response.get_data(as_text=True)
    assert db.session.get(Meeting, b.held.id).minutes_state == MinutesState.DRAFT
    # the next meeting is planned, but has not begun: still refused
    following = bodies.plan_meeting(
        b.official,
        actor=world["secretary"],
        title="Volgend overleg",
        starts_at=utcnow() + timedelta(hours=1),
        ends_at=utcnow() + timedelta(hours=2),
    )
    db.session.commit()
    secretary.post(f"{url}/minutes/approve")
    db.session.expire_all()
    assert db.session.get(Meeting, b.held.id).minutes_state == MinutesState.DRAFT
    # it has begun: approved, recorded with the meeting that approved them
    following.starts_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    assert secretary.post(f"{url}/minutes/approve").status_code == 302
    db.session.expire_all()
    held = db.session.get(Meeting, b.held.id)
    assert held.minutes_state == MinutesState.APPROVED
    assert held.minutes_approved_in_id == following.id
    assert _events("meeting.minutes_approved")[-1]["approved_in"] == following.id
    # final: no more changes to the minutes or the decisions list
    secretary.post(f"{url}/minutes", data={"minutes-minutes": "Anders."})
    secretary.post(
        f"{url}/decisions", data={"decision-text": "Nog iets.", "decision-outcome": "noted"}
    )
    db.session.expire_all()
    assert db.session.get(Meeting, b.held.id).minutes.startswith("# Verslag")
    assert _count(MeetingDecision) == 1
    # a member may not approve (403), an outsider does not see the meeting (404)
    assert login_as(world["member"]).post(f"{url}/minutes/approve").status_code == 403
    assert login_as(world["outsider"]).get(url).status_code == 404


def test_overdue_actions_on_the_dashboard(app, login_as, world):
    b: BodiesWorld = world["bodies"]
    secretary = login_as(world["secretary"])
    url = f"{_meeting_url(b, b.held)}/decisions/{b.cleared.id}/actions/new"
    yesterday = local_day(utcnow()) - timedelta(days=1)
    response = secretary.post(
        url, data={"title": "", "owner_id": str(world["owner"].id), "due_on": yesterday.isoformat()}
    )
    assert response.status_code == 200 and _count(FollowUpAction) == 0
    response = secretary.post(
        url,
        data={
            "title": "Onafhankelijk onderzoek naar een investeringsagenda",
            "owner_id": str(world["owner"].id),
            "due_on": yesterday.isoformat(),
            "theme": "",
        },
    )
    assert response.status_code == 302
    action = db.session.execute(select(FollowUpAction)).scalar_one()
    assert action.source == ActionSource.DECISION and action.body_id == b.official.id
    assert action.process_id == world["w"].process.id
    member = login_as(world["member"])
    dashboard = member.get("/").get_data(as_text=True)
    assert 'id="overdue"' in dashboard and "investeringsagenda" in dashboard
    # the process page lists it; the outsider sees nothing of it
    assert "investeringsagenda" in member.get(f"/processes/{world['w'].process.slug}").get_data(
        as_text=True
    )
    assert "investeringsagenda" not in login_as(world["outsider"]).get("/").get_data(as_text=True)
    assert login_as(world["outsider"]).get(f"/actions/{action.id}").status_code == 404
    # the owner reports progress; done, it is no longer overdue
    response = member.post(f"/actions/{action.id}", data={"status": "done", "note": "Opgeleverd."})
    assert response.status_code == 302
    db.session.expire_all()
    assert action.status == ActionStatus.DONE and action.finished_at is not None
    assert _events("action.progress")[-1] == {"from": "open", "to": "done", "note": "Opgeleverd."}
    assert 'id="overdue"' not in member.get("/").get_data(as_text=True)
    # someone of another organisation sees it (a member of the body) but may not report
    other = login_as(world["w"].officials[world["other"].id])
    assert other.get(f"/actions/{action.id}").status_code == 200
    assert (
        other.post(f"/actions/{action.id}", data={"status": "open", "note": "x"}).status_code == 403
    )


def _published(world) -> object:
    w = world["w"]
    processes.schedule_publication(w.process, actor=w.facilitator, at=None)
    db.session.commit()
    return w


def test_the_letter_the_reply_the_timeline_and_the_feed(app, client, login_as, world):
    w = _published(world)
    facilitator = login_as(w.facilitator)
    base = f"/processes/{w.process.slug}/follow-up"
    today = local_day(utcnow())
    response = facilitator.post(
        f"{base}/letter",
        data={
            "dispatch-addressee": "",
            "dispatch-sent_on": today.isoformat(),
            "dispatch-channel": "email",
        },
    )
    assert response.status_code == 400 and _count(LetterDispatch) == 0
    response = facilitator.post(
        f"{base}/letter",
        data={
            "dispatch-addressee": "De minister van BZK",
            "dispatch-sent_on": (today + timedelta(days=3)).isoformat(),
            "dispatch-channel": "email",
        },
    )
    assert response.status_code == 400 and _count(LetterDispatch) == 0  # not in the future
    response = facilitator.post(
        f"{base}/letter",
        data={
            "dispatch-addressee": "De minister van BZK",
            "dispatch-sent_on": today.isoformat(),
            "dispatch-channel": "email",
            "dispatch-reference": "VNG-2026-17",
        },
    )
    assert response.status_code == 302
    dispatch = db.session.execute(select(LetterDispatch)).scalar_one()
    assert dispatch.channel == DispatchChannel.EMAIL
    # the reply: not a PDF is refused, a PDF is kept
    reply = {
        "reply-received_on": today.isoformat(),
        "reply-summary": "De minister neemt de inbreng over.",
        "reply-reference": "BZK-2026-99",
    }
    response = facilitator.post(
        f"{base}/letter/{dispatch.id}/reply",
        data={**reply, "reply-document": (BytesIO(b"MZ not a pdf"), "antwoord.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "als pdf-bestand" in response.get_data(as_text=True)
    db.session.expire_all()
    assert dispatch.reply_received_on is None
    pdf = b"%PDF-1.4\n% het antwoord van de minister\n"
    response = facilitator.post(
        f"{base}/letter/{dispatch.id}/reply",
        data={**reply, "reply-document": (BytesIO(pdf), "Antwoord minister.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert dispatch.reply_received_on == today
    assert _events("letter.sent")[-1]["reference"] == "VNG-2026-17"
    assert _events("letter.reply_recorded")[-1]["document"] == "Antwoord-minister.pdf"
    # the public page shows the timeline up to the reply, which anyone can download
    page = client.get(f"/public/{w.process.slug}").get_data(as_text=True)
    assert 'id="timeline"' in page
    assert "De minister van BZK" in page and "De minister neemt de inbreng over." in page
    assert page.index("De minister van BZK") < page.index("De minister neemt de inbreng over.")
    download = client.get(f"/public/{w.process.slug}/letters/{dispatch.id}/reply.pdf")
    assert download.status_code == 200 and download.data == pdf
    # the Atom feed: parsed, newest first, stable ids, the reply with its summary
    response = client.get(f"/public/{w.process.slug}/feed.atom")
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    feed = ET.fromstring(response.data)  # noqa: S314 - our own feed
    assert feed.tag == f"{ATOM}feed"
    assert feed.find(f"{ATOM}title").text == w.process.title
    assert feed.find(f"{ATOM}link[@rel='self']").get("href").endswith("/feed.atom")
    entries = feed.findall(f"{ATOM}entry")
    ids = [e.find(f"{ATOM}id").text for e in entries]
    assert len(ids) == len(set(ids)) >= 4
    kinds = [e.find(f"{ATOM}category").get("term") for e in entries]
    assert kinds[0] == "reply_received" and "letter_sent" in kinds and kinds[-1] == "started"
    assert entries[0].find(f"{ATOM}summary").text == "De minister neemt de inbreng over."
    updated = [e.find(f"{ATOM}updated").text for e in entries]
    assert updated == sorted(updated, reverse=True)
    assert feed.find(f"{ATOM}updated").text == updated[0]
    # a second reply to the same letter is refused
    facilitator.post(f"{base}/letter/{dispatch.id}/reply", data=reply)
    assert len(_events("letter.reply_recorded")) == 1


def test_unpublished_processes_have_no_public_timeline(app, client, world):
    w = world["w"]
    assert client.get(f"/public/{w.process.slug}/feed.atom").status_code == 404


def test_hidden_characters_are_refused_in_minutes(app, login_as, world):
    b: BodiesWorld = world["bodies"]
    response = login_as(world["secretary"]).post(
        f"{_meeting_url(b, b.held)}/minutes", data={"minutes-minutes": "Akkoord\u202e."}
    )
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Meeting, b.held.id).minutes == ""


# --- Query budgets of the new list pages ------------------------------------------------------

# The most statements each page runs (warm), the same with 2 or 6 more of everything. The
# secretary's meeting page is the largest: its forms offer the processes, positions and
# rounds an item may point at, and the decisions list's forwarding and actions.
BUDGETS = {"bodies": 8, "actions": 4, "body": 13, "meeting": 24}


def _grow(world, n: int) -> None:
    """n more bodies with a meeting each, n more actions: the pages must not query per row."""
    admin, secretary = world["admin"], world["secretary"]
    for i in range(n):
        body = bodies.create_body(
            actor=admin,
            name=f"Tafel {i}",
            slug=f"tafel-{world['size']}-{i}",
            level="official",
            secretary=secretary,
        )
        for organisation in world["w"].orgs:
            bodies.set_seat(
                body,
                actor=admin,
                organisation=organisation,
                seat_holder=world["w"].reps[organisation.id],
                substitute=None,
            )
        bodies.plan_meeting(
            body,
            actor=secretary,
            title=f"Overleg {i}",
            starts_at=utcnow() + timedelta(days=i + 1),
            ends_at=utcnow() + timedelta(days=i + 1, hours=1),
        )
        bodies.plan_meeting(
            world["bodies"].official,
            actor=secretary,
            title=f"Overleg {i}",
            starts_at=utcnow() - timedelta(days=30 + i),
            ends_at=utcnow() - timedelta(days=30 + i) + timedelta(hours=1),
        )
        item = bodies.add_agenda_item(
            world["bodies"].ahead, actor=secretary, title=f"Punt {i}", process=world["w"].process
        )
        bodies.create_action(
            actor=secretary,
            title=f"Actie {i}",
            owner=world["owner"],
            due_on=local_day(utcnow()) - timedelta(days=i),
            source=ActionSource.DECISION,
            decision=world["bodies"].cleared,
        )
        assert item
    db.session.commit()


def test_query_budgets_of_the_new_pages(app, login_as, world, page_queries):
    b: BodiesWorld = world["bodies"]
    pages = {
        "bodies": "/bodies",
        "actions": "/actions",
        "body": f"/bodies/{b.official.slug}",
        "meeting": _meeting_url(b, b.ahead),
    }
    counts = {}
    for size in (2, 6):
        world["size"] = size
        _grow(world, size)
        for viewer in (world["secretary"], world["member"]):
            client = login_as(viewer)
            for name, url in pages.items():
                counts.setdefault((name, viewer.id), []).append(page_queries(client, url).count)
    for (name, _viewer), found in counts.items():
        assert found[0] == found[1], (name, found)
        assert found[0] <= BUDGETS[name], (name, found)


def test_overdue_actions_are_notified_once(app, runner, login_as, world):
    b: BodiesWorld = world["bodies"]
    overdue = bodies.create_action(
        actor=world["secretary"],
        title="Onafhankelijk onderzoek naar een investeringsagenda",
        owner=world["owner"],
        due_on=local_day(utcnow()) - timedelta(days=2),
        source=ActionSource.DECISION,
        decision=b.cleared,
    )
    bodies.create_action(  # not due yet: no notice
        actor=world["secretary"],
        title="Nog niet verlopen",
        owner=world["owner"],
        due_on=local_day(utcnow()) + timedelta(days=2),
        source=ActionSource.DECISION,
        decision=b.cleared,
    )
    db.session.commit()
    result = runner.invoke(args=["actions", "notify-overdue"])
    assert result.exit_code == 0, result.output
    # the owner's official and representative, and the body's secretary
    assert "3 notice(s)" in result.output
    page = login_as(world["member"]).get("/").get_data(as_text=True)
    assert "Onafhankelijk onderzoek naar een investeringsagenda" in page and 'id="notices"' in page
    assert "Nog niet verlopen" not in page
    assert "Onafhankelijk onderzoek" not in login_as(world["outsider"]).get("/").get_data(
        as_text=True
    )
    assert _events("action.overdue_notified")[-1]["people"] == 3
    # once: a second run tells nobody again
    assert "0 notice(s)" in runner.invoke(args=["actions", "notify-overdue"]).output
    db.session.expire_all()
    assert db.session.get(FollowUpAction, overdue.id).overdue_notice_at is not None
