"""Insecure direct object references (ASVS 4.2.1): changing an id in a URL or a form never
lets anyone act on another organisation's or another process's objects. Each test checks
the effect in the database, not just the status code."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from consensus.extensions import db
from consensus.models import (
    Amendment,
    AmendmentState,
    Comment,
    Membership,
    MembershipRole,
    RoundCompletion,
    RoundType,
    utcnow,
)
from tests.factories import make_organisation, make_process, make_user
from tests.helpers import give_session
from tests.web.matrix_world import build_matrix_world


def completions() -> list[tuple[int, int]]:
    return list(
        db.session.execute(select(RoundCompletion.round_id, RoundCompletion.organisation_id))
    )


def test_marking_input_complete_for_another_organisation_is_refused(app):
    w = build_matrix_world()
    official = give_session(app, app.test_client(), w.users["official"])
    url = f"/processes/{w.process.slug}/rounds/{w.round.id}/complete"
    for organisation in (w.other_participant, w.outsider):
        official.post(url, data={"organisation_id": organisation.id})
    assert completions() == []
    official.post(url, data={"organisation_id": w.participant.id})
    assert completions() == [(w.round.id, w.participant.id)]


def test_an_observer_cannot_mark_input_complete(app):
    w = build_matrix_world()
    observer = give_session(app, app.test_client(), w.users["observer"])
    observer.post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/complete",
        data={"organisation_id": w.participant.id},
    )
    assert completions() == []


def test_a_round_of_another_process_is_not_reachable_through_this_process(app):
    w = build_matrix_world()
    other_org = make_organisation("elders")
    now = utcnow()
    hidden = make_process(
        w.users["facilitator"],
        [other_org],
        title="Verborgen",
        rounds=[(RoundType.CONSULTATION, now - timedelta(minutes=1), now + timedelta(days=1))],
    )
    hidden_round = hidden.rounds[0]
    official = give_session(app, app.test_client(), w.users["official"])
    base = f"/processes/{w.process.slug}/rounds/{hidden_round.id}"
    assert official.get(base).status_code == 404
    official.post(f"{base}/complete", data={"organisation_id": w.participant.id})
    assert completions() == []
    assert official.get(f"/processes/{hidden.slug}").status_code == 404


def test_another_organisations_comment_cannot_be_edited_or_removed(app):
    w = build_matrix_world()
    ipo_official = give_session(app, app.test_client(), w.users["ipo_official"])
    base = f"/processes/{w.process.slug}/positions/{w.position.id}/comments/{w.comment.id}"
    assert ipo_official.post(f"{base}/edit", data={"body": "Overgenomen."}).status_code == 403
    assert ipo_official.post(f"{base}/remove").status_code == 403
    db.session.expire_all()
    comment = db.session.get(Comment, w.comment.id)
    assert comment.body == "Eens." and comment.deleted_at is None


def test_another_organisations_amendment_cannot_be_withdrawn_or_decided(app):
    w = build_matrix_world()
    ipo_official = give_session(app, app.test_client(), w.users["ipo_official"])
    base = f"/processes/{w.process.slug}/positions/{w.position.id}/amendments/1"
    assert ipo_official.post(f"{base}/withdraw").status_code == 403
    response = ipo_official.post(f"{base}/decide", data={"decision": "accepted", "reason": "x"})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Amendment, w.amendment.id).state == AmendmentState.PENDING


def test_memberships_are_managed_by_administrators_only(app):
    w = build_matrix_world()
    for role in ("representative", "facilitator", "official"):
        client = give_session(app, app.test_client(), w.users[role])
        client.post(
            f"/admin/users/{w.users[role].id}/memberships",
            data={"organisation_id": w.other_participant.id, "role": "representative"},
        )
        client.post(f"/admin/memberships/{w.membership.id}", data={"role": "representative"})
        client.post(f"/admin/memberships/{w.membership.id}/end")
    db.session.expire_all()
    membership = db.session.get(Membership, w.membership.id)
    assert membership.role == MembershipRole.OFFICIAL and membership.valid_until is None
    count = db.session.scalar(
        select(func.count()).where(Membership.organisation_id == w.other_participant.id)
    )
    assert count == 2  # ipo_representative and ipo_official, nobody added


def test_calendar_tokens(app):
    """The feed is reachable only by its unguessable token; a reset kills the old one; it
    lists only processes the token's owner may see."""
    w = build_matrix_world()
    client = app.test_client()
    feed = client.get(f"/calendar/{w.calendar_token}.ics")
    assert feed.status_code == 200
    assert w.process.title in feed.get_data(as_text=True)
    assert client.get("/calendar/" + "A" * 43 + ".ics").status_code == 404
    assert client.get("/calendar/short.ics").status_code == 404

    outsider = make_user()
    outsider_client = give_session(app, app.test_client(), outsider)
    outsider_client.post("/account/calendar")
    db.session.expire_all()
    outsider_feed = client.get(f"/calendar/{outsider.calendar_token}.ics")
    assert w.process.title not in outsider_feed.get_data(as_text=True)

    official = give_session(app, app.test_client(), w.users["official"])
    official.post("/account/calendar")
    assert client.get(f"/calendar/{w.calendar_token}.ics").status_code == 404


def test_a_process_of_other_organisations_does_not_leak(app):
    w = build_matrix_world()
    other = give_session(app, app.test_client(), w.users["other_representative"])
    assert other.get(f"/processes/{w.process.slug}").status_code == 404
    listing = other.get("/processes/").get_data(as_text=True)
    assert w.process.title not in listing
