"""Processes and rounds through the app: set-up, visibility, the clock, status, calendar."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from consensus.domain.timeutil import to_local_input
from consensus.extensions import db
from consensus.models import (
    AuditEvent,
    MembershipRole,
    Notice,
    Participation,
    Process,
    ProcessState,
    Round,
    RoundState,
    RoundType,
    User,
    Visibility,
    utcnow,
)
from consensus.services import processes as service
from consensus.services.errors import DomainError
from tests.factories import make_membership, make_organisation, make_process, make_user


def local(moment) -> str:
    return to_local_input(moment).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def world(app):
    facilitator = make_user("facilitator@example.org", is_facilitator=True)
    vng, ipo, outsider = make_organisation("vng"), make_organisation("ipo"), make_organisation("x")
    people = {}
    for org in (vng, ipo, outsider):
        for role in MembershipRole:
            person = make_user(f"{role.value}.{org.slug}@example.org")
            make_membership(person, org, role)
            people[(org.slug, role)] = person
    return {
        "facilitator": facilitator,
        "vng": vng,
        "ipo": ipo,
        "outsider": outsider,
        "people": people,
    }


def open_process(world, round_type=RoundType.CONSULTATION, **settings):
    now = utcnow()
    process = make_process(
        world["facilitator"],
        [world["vng"], world["ipo"]],
        rounds=[(round_type, now - timedelta(minutes=5), now + timedelta(days=2))],
        **settings,
    )
    service.tick()
    db.session.commit()
    assert process.rounds[0].state == RoundState.OPEN
    return process


def test_facilitator_sets_up_a_process_from_nothing(client, login_as, world):
    login_as(world["facilitator"])
    response = client.post(
        "/processes/new",
        data={
            "title": "Gezamenlijke inbreng op de digitaliseringsstrategie",
            "purpose": "**Samen**",
            "themes": "Data, AI, data",
            "decision_rule": "consensus",
            "quorum": "3",
        },
    )
    assert response.status_code == 302
    process = db.session.execute(select(Process)).scalar_one()
    assert [t.name for t in process.themes] == ["AI", "Data"]
    slug = process.slug
    assert response.headers["Location"] == f"/processes/{slug}/manage"

    for org in (world["vng"], world["ipo"]):
        assert (
            client.post(
                f"/processes/{slug}/participants", data={"p-organisation_id": org.id}
            ).status_code
            == 302
        )
    now = utcnow()
    response = client.post(
        f"/processes/{slug}/rounds/new",
        data={
            "type": "consultation",
            "title": "Consultatie v1",
            "instructions": "Reageer per alinea",
            "opens_at": local(now + timedelta(hours=1)),
            "closes_at": local(now + timedelta(days=7)),
        },
    )
    assert response.status_code == 302
    # Overlapping rounds are refused with a clear message.
    response = client.post(
        f"/processes/{slug}/rounds/new",
        data={
            "type": "endorsement",
            "title": "Instemming",
            "opens_at": local(now + timedelta(days=3)),
            "closes_at": local(now + timedelta(days=9)),
        },
    )
    assert "Dit overlapt met de ronde" in response.get_data(as_text=True)
    assert client.post(f"/processes/{slug}/activate").status_code == 302
    db.session.expire_all()
    process = db.session.get(Process, process.id)
    assert process.state == ProcessState.ACTIVE
    assert len(process.current_participations) == 2
    assert client.post(f"/processes/{slug}/rounds/{process.rounds[0].id}/open").status_code == 302
    db.session.expire_all()
    assert db.session.get(Round, process.rounds[0].id).state == RoundState.OPEN
    page = client.get(f"/processes/{slug}").get_data(as_text=True)
    assert "Consultatie v1" in page and "<strong>Samen</strong>" in page
    actions = set(db.session.execute(select(AuditEvent.action)).scalars())
    assert {
        "process.created",
        "process.participant_added",
        "round.created",
        "process.activated",
        "round.opened",
    } <= actions


def test_non_participants_get_404_and_anonymous_login(client, login_as, world):
    process = open_process(world)
    round_id = process.rounds[0].id
    urls = [
        f"/processes/{process.slug}",
        f"/processes/{process.slug}/rounds/{round_id}",
        f"/processes/{process.slug}/manage",
    ]
    for url in urls:
        assert client.get(url).status_code == 302  # anonymous → login
    login_as(world["people"][("x", MembershipRole.REPRESENTATIVE)])
    for url in urls:
        assert client.get(url).status_code == 404
    assert process.title not in client.get("/processes/").get_data(as_text=True)
    login_as(world["people"][("vng", MembershipRole.OBSERVER)])
    assert client.get(urls[0]).status_code == 200
    assert client.get(urls[2]).status_code == 403  # visible, but not theirs to manage


def test_marking_input_complete_and_the_status_table(client, login_as, world):
    process = open_process(world)
    round_ = process.rounds[0]
    url = f"/processes/{process.slug}/rounds/{round_.id}"

    login_as(world["people"][("vng", MembershipRole.OBSERVER)])
    client.post(url + "/complete", data={"organisation_id": world["vng"].id})
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "round.input_completed")
        )
        == 0
    )

    login_as(world["people"][("vng", MembershipRole.OFFICIAL)])
    # Acting for another organisation is refused.
    response = client.post(
        url + "/complete", data={"organisation_id": world["ipo"].id}, follow_redirects=True
    )
    assert "U bent geen lid van deze organisatie." in response.get_data(as_text=True)
    response = client.post(
        url + "/complete", data={"organisation_id": world["vng"].id}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "Vastgelegd" in page
    assert f"In “{round_.title}” heeft 1 van de 2 organisaties gereageerd." in page
    statuses = {s.organisation.slug: s.acted for s in service.response_status(process, round_)}
    assert statuses == {"vng": True, "ipo": False}


def test_a_late_form_is_refused_after_the_deadline(client, login_as, world):
    process = open_process(world)
    round_ = process.rounds[0]
    login_as(world["people"][("vng", MembershipRole.OFFICIAL)])
    page = client.get(f"/processes/{process.slug}/rounds/{round_.id}").get_data(as_text=True)
    assert "Onze inbreng is compleet" in page  # the form was open…
    round_.closes_at = utcnow() - timedelta(seconds=1)  # …when the deadline passed
    db.session.commit()
    response = client.post(
        f"/processes/{process.slug}/rounds/{round_.id}/complete",
        data={"organisation_id": world["vng"].id},
        follow_redirects=True,
    )
    # Not a ban: what happened, on the round page, as a conflict (tests/web/test_refusals.py).
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert f"“{round_.title}” is gesloten op" in page
    assert "Uw inbreng is niet als compleet gemeld." in page
    db.session.expire_all()
    assert db.session.get(Round, round_.id).state == RoundState.CLOSED  # the clock ran


def test_the_clock_opens_and_closes_rounds(runner, world):
    now = utcnow()
    process = make_process(
        world["facilitator"],
        [world["vng"]],
        rounds=[
            (RoundType.CONSULTATION, now - timedelta(hours=2), now - timedelta(hours=1)),
            (RoundType.ENDORSEMENT, now - timedelta(minutes=30), now + timedelta(hours=1)),
            (RoundType.SIGNING, now + timedelta(hours=2), now + timedelta(hours=3)),
        ],
    )
    result = runner.invoke(args=["rounds", "tick"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    states = [r.state for r in db.session.get(Process, process.id).rounds]
    assert states == [RoundState.CLOSED, RoundState.OPEN, RoundState.SCHEDULED]
    assert service.tick(now + timedelta(hours=2, minutes=1)) == 2
    db.session.commit()
    states = [r.state for r in db.session.get(Process, process.id).rounds]
    assert states == [RoundState.CLOSED, RoundState.CLOSED, RoundState.OPEN]


def test_only_one_round_is_open_at_a_time(world):
    now = utcnow()
    process = make_process(
        world["facilitator"],
        [world["vng"]],
        rounds=[
            (RoundType.CONSULTATION, now - timedelta(hours=1), now + timedelta(hours=1)),
            (RoundType.ENDORSEMENT, now + timedelta(hours=1), now + timedelta(hours=2)),
        ],
    )
    service.tick()
    with pytest.raises(DomainError, match="andere ronde"):
        service.open_round(process.rounds[1], actor=world["facilitator"])
    db.session.rollback()


def test_deadline_extension_needs_a_later_time_and_a_reason(client, login_as, world):
    process = open_process(world)
    round_ = process.rounds[0]
    login_as(world["facilitator"])
    url = f"/processes/{process.slug}/rounds/{round_.id}/extend"
    response = client.post(
        url,
        data={"x-closes_at": local(round_.closes_at - timedelta(days=1)), "x-reason": "Meer tijd"},
    )
    assert response.status_code == 400
    assert "De nieuwe deadline moet later zijn dan de huidige." in response.get_data(as_text=True)
    response = client.post(
        url, data={"x-closes_at": local(round_.closes_at + timedelta(days=3)), "x-reason": ""}
    )
    assert "Geef een reden voor de verlenging." in response.get_data(as_text=True)
    new_deadline = round_.closes_at + timedelta(days=3)
    response = client.post(
        url,
        data={
            "x-closes_at": local(new_deadline),
            "x-reason": "Besluitvorming in de ledenvergadering",
        },
        follow_redirects=True,
    )
    assert "Besluitvorming in de ledenvergadering" in response.get_data(as_text=True)
    db.session.expire_all()
    extended = db.session.get(Round, round_.id)
    assert extended.closes_at > new_deadline - timedelta(minutes=1)
    assert extended.extensions[0].reason == "Besluitvorming in de ledenvergadering"


def test_reminder_reaches_only_those_who_still_have_to_act(client, login_as, world):
    process = open_process(world, RoundType.ENDORSEMENT)
    round_ = process.rounds[0]
    login_as(world["facilitator"])
    response = client.post(
        f"/processes/{process.slug}/rounds/{round_.id}/remind", follow_redirects=True
    )
    assert "herinnering" in response.get_data(as_text=True)
    reminded = set(
        db.session.execute(select(User.email).join(Notice, Notice.user_id == User.id)).scalars()
    )
    assert reminded == {"representative.vng@example.org", "representative.ipo@example.org"}

    login_as(world["people"][("vng", MembershipRole.REPRESENTATIVE)])
    page = client.get("/").get_data(as_text=True)
    assert "Herinnering van de procesbegeleider" in page
    assert "Wat uw actie vraagt" in page and process.title in page


def test_dashboard_lists_actions_per_organisation(client, login_as, world):
    process = open_process(world, RoundType.CONSULTATION)
    login_as(world["people"][("ipo", MembershipRole.OFFICIAL)])
    page = client.get("/").get_data(as_text=True)
    assert process.rounds[0].title in page
    assert world["ipo"].name in page
    login_as(world["people"][("ipo", MembershipRole.OBSERVER)])
    page = client.get("/").get_data(as_text=True)
    assert "Er wacht nu niets op u." in page


def test_participants_are_fixed_once_endorsement_opened(world):
    process = open_process(world, RoundType.ENDORSEMENT)
    with pytest.raises(DomainError):
        service.add_participant(
            process, actor=world["facilitator"], organisation=world["outsider"], reason="Laat"
        )
    with pytest.raises(DomainError):
        service.remove_participant(
            process, actor=world["facilitator"], organisation=world["ipo"], reason="Weg"
        )
    db.session.rollback()


def test_removing_a_participant_needs_a_reason(client, login_as, world):
    process = open_process(world)
    login_as(world["facilitator"])
    url = f"/processes/{process.slug}/participants/{world['ipo'].id}/remove"
    response = client.post(url, data={"r-reason": ""})
    assert response.status_code == 400
    assert "Geef een reden voor het verwijderen" in response.get_data(as_text=True)
    assert client.post(url, data={"r-reason": "Sluit later aan"}).status_code == 302
    db.session.expire_all()
    assert {
        p.organisation.slug for p in db.session.get(Process, process.id).current_participations
    } == {"vng"}


def test_scheduled_publication_happens_on_time(world):
    process = open_process(world)
    service.schedule_publication(
        process, actor=world["facilitator"], at=utcnow() + timedelta(hours=1)
    )
    db.session.commit()
    assert not process.is_published
    service.tick(utcnow() + timedelta(hours=1, seconds=1))
    db.session.commit()
    assert process.visibility == Visibility.PUBLISHED and process.is_published


def test_two_clocks_at_once_publish_a_process_once(app, world):
    """Every worker of every instance runs the clock; two ticks at the same moment (one
    waiting for the other's commit) must not publish the same process twice."""
    process = open_process(world)
    service.schedule_publication(
        process, actor=world["facilitator"], at=utcnow() + timedelta(hours=1)
    )
    db.session.commit()
    process_id, due = process.id, utcnow() + timedelta(hours=1, seconds=1)
    first_ticked, changes, errors = threading.Event(), {}, []

    def clock(name: str) -> None:
        # A request context of a POST: on SQLite its transaction begins IMMEDIATE, as a
        # changing request's does; PostgreSQL decides by its row locks.
        with app.test_request_context("/", method="POST"):
            try:
                if name == "second":
                    first_ticked.wait(10)
                changes[name] = service.tick(due)
                if name == "first":
                    first_ticked.set()
                    time.sleep(0.3)  # the second clock is running into us meanwhile
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
    assert changes == {"first": 1, "second": 0}
    db.session.rollback()
    published = db.session.execute(
        select(func.count(AuditEvent.seq)).where(
            AuditEvent.action == "process.published", AuditEvent.object_id == str(process_id)
        )
    ).scalar_one()
    assert published == 1


def test_calendar_feed_at_a_secret_resettable_address(client, login_as, world):
    process = open_process(world)
    user = world["people"][("vng", MembershipRole.OFFICIAL)]
    login_as(user)
    client.post("/account/calendar")
    db.session.expire_all()
    token = db.session.get(User, user.id).calendar_token
    client.post("/logout")
    response = client.get(f"/calendar/{token}.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = Calendar.from_ical(response.data)
    summaries = [str(e["summary"]) for e in calendar.walk("VEVENT")]
    assert summaries == [f"{process.rounds[0].title} — {process.title}"]

    login_as(user)
    client.post("/account/calendar")
    assert client.get(f"/calendar/{token}.ics").status_code == 404
    # Someone else's feed never shows processes they cannot see.
    stranger = world["people"][("x", MembershipRole.OFFICIAL)]
    login_as(stranger)
    client.post("/account/calendar")
    db.session.expire_all()
    other = db.session.get(User, stranger.id).calendar_token
    assert b"VEVENT" not in client.get(f"/calendar/{other}.ics").data


def test_process_page_query_count_is_constant(client, login_as, world, page_queries):
    facilitator = world["facilitator"]
    now = utcnow()

    def build(n_orgs: int, n_rounds: int) -> Process:
        orgs = [make_organisation() for _ in range(n_orgs)]
        rounds = [
            (RoundType.CONSULTATION, now + timedelta(days=i), now + timedelta(days=i, hours=1))
            for i in range(1, n_rounds)
        ]
        rounds.insert(
            0, (RoundType.CONSULTATION, now - timedelta(hours=1), now + timedelta(hours=1))
        )
        process = make_process(facilitator, orgs, rounds=rounds)
        service.tick()
        db.session.commit()
        return process

    small, large = build(2, 2), build(40, 12)
    login_as(facilitator)
    counts = []
    for process in (small, large):
        for url in (
            f"/processes/{process.slug}",
            f"/processes/{process.slug}/manage",
            f"/processes/{process.slug}/rounds/{process.rounds[0].id}",
        ):
            counts.append(page_queries(client, url).count)
    assert counts[:3] == counts[3:], counts


def test_participation_answers_follow_leaving_and_returning_in_one_session(world):
    """Process.participating asks only about the organisations it is given, and forgets
    what it learned as soon as a participation changes."""
    process_id = open_process(world).id
    vng, ipo, outsider = world["vng"], world["ipo"], world["outsider"]
    db.session.expire_all()
    process = db.session.get(Process, process_id)
    assert process.participating({vng.id, ipo.id, outsider.id}) == {vng.id, ipo.id}
    assert "participations" not in process.__dict__  # not all participations: one query
    participation = db.session.execute(
        select(Participation).where(
            Participation.process_id == process_id, Participation.organisation_id == ipo.id
        )
    ).scalar_one()
    participation.removed_at = utcnow()  # leaves, without loading the process's list
    assert not process.participates(ipo.id)
    assert process.participates(vng.id)
    participation.removed_at = None  # and returns in place
    assert process.participates(ipo.id)
    assert process.participating(()) == set()
    db.session.rollback()
