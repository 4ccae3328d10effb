"""The demo world's standing bodies (issue 20, "done when"): the Thorbecke table with the four
organisations, two past meetings with decisions and minutes, the next with an agenda; the
secretary publishes it, members see the meeting on their dashboard and in their calendar, a
decision's follow-up action has an owner and a due date, and the public page shows the
letter's timeline up to the minister's reply."""

from __future__ import annotations

from sqlalchemy import select

from consensus.extensions import db
from consensus.models import (
    FollowUpAction,
    LetterDispatch,
    Meeting,
    MinutesState,
    StandingBody,
    User,
    utcnow,
)
from consensus.services import processes
from consensus.worlds import demo, demo_bodies
from tests.helpers import give_session


def _user(email: str) -> User:
    return db.session.execute(select(User).where(User.email == email)).scalar_one()


def test_the_thorbecke_table_in_the_demo_world(app, runner, client):
    assert runner.invoke(args=["demo"]).exit_code == 0
    bo = (
        db.session.execute(select(StandingBody).where(StandingBody.slug == demo_bodies.BO_SLUG))
        .unique()
        .scalar_one()
    )
    ao = (
        db.session.execute(select(StandingBody).where(StandingBody.slug == demo_bodies.AO_SLUG))
        .unique()
        .scalar_one()
    )
    assert ao.prepares_for_id == bo.id
    assert {s.organisation.slug for s in bo.seats} == {"vng", "ipo", "uvw", "bzk"}
    assert all(s.seat_holder_id and s.substitute_id for s in bo.seats)
    meetings = (
        db.session.execute(
            select(Meeting).where(Meeting.body_id == bo.id).order_by(Meeting.starts_at)
        )
        .scalars()
        .all()
    )
    now = utcnow()
    past = [m for m in meetings if m.starts_at < now]
    (upcoming,) = [m for m in meetings if m.starts_at > now]
    assert len(past) == 2
    assert past[0].minutes_state == MinutesState.APPROVED and past[0].decisions
    assert past[1].minutes_state == MinutesState.DRAFT and past[1].decisions and past[1].minutes
    assert upcoming.items and upcoming.agenda_published_at is None
    study = db.session.execute(
        select(FollowUpAction).where(FollowUpAction.title.like("%investeringsagenda%"))
    ).scalar_one()
    assert study.owner.slug == "bzk" and study.due_on and study.decision_id is not None

    # the secretary publishes the next meeting's agenda (the forwarded position is on it)
    secretary = give_session(app, app.test_client(), _user(demo_bodies.SECRETARY[0]))
    held = secretary.get(f"/bodies/{bo.slug}/meetings/{past[1].id}")
    assert held.status_code == 200  # the decisions form of an administrative body
    assert 'value="cleared"' not in held.get_data(as_text=True)
    url = f"/bodies/{bo.slug}/meetings/{upcoming.id}"
    assert "Antwoord van de staatssecretaris" in secretary.get(url).get_data(as_text=True)
    assert secretary.post(f"{url}/publish").status_code == 302
    # a member sees the meeting on the dashboard, the agenda, and the meeting in the calendar
    member = _user("representative.ipo@example.org")
    browser = give_session(app, app.test_client(), member)
    assert url in browser.get("/").get_data(as_text=True)
    assert "Antwoord van de staatssecretaris" in browser.get(url).get_data(as_text=True)
    # the reply is on the agenda as an uploaded document, and downloads as a PDF
    (document,) = [d for item in upcoming.items for d in item.documents]
    download = browser.get(f"{url}/documents/{document.id}")
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")
    assert f"/documents/{document.id}" in browser.get(url).get_data(as_text=True)
    token = processes.reset_calendar_token(member)
    db.session.commit()
    assert f"meeting-{upcoming.id}@consensus" in browser.get(f"/calendar/{token}.ics").get_data(
        as_text=True
    )
    # the chain on the process page: cleared at the official table, adopted at the Thorbecke table
    process_page = browser.get(f"/processes/{demo.STRATEGY_SLUG}").get_data(as_text=True)
    assert "Ambtelijk Overleg Digitalisering" in process_page
    assert "Doorgezet naar Bestuurlijk Overleg Digitalisering (Thorbecketafel)" in process_page
    assert "Vastgesteld" in process_page or "vastgesteld" in process_page
    # the public page: the letter's timeline up to the reply, and its PDF
    dispatch = db.session.execute(select(LetterDispatch)).scalar_one()
    page = client.get(f"/public/{demo.STRATEGY_SLUG}").get_data(as_text=True)
    assert "De brief is verzonden aan De staatssecretaris" in page
    assert "Antwoord ontvangen van De staatssecretaris" in page
    reply = client.get(f"/public/{demo.STRATEGY_SLUG}/letters/{dispatch.id}/reply.pdf")
    assert reply.status_code == 200 and reply.data.startswith(b"%PDF-")
