"""A form that arrives just after its round closed is not a ban: the answer says what
happened ("“Ronde 1” is gesloten op …; uw standpunt is niet vastgelegd"), on the round
page or with a link back to it, with 409 Conflict, and nothing is recorded."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from consensus.extensions import db
from consensus.models import (
    AuditEvent,
    Comment,
    MembershipRole,
    RoundType,
    Stance,
    utcnow,
)
from consensus.services import processes
from tests.endorsement_support import make_world
from tests.factories import make_membership, make_organisation, make_user
from tests.web.test_positions import build_world

BAN = ("U hebt geen toegang", "Uw account heeft geen toegang")


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _close(round_, facilitator) -> None:
    processes.close_round(round_, actor=facilitator)
    db.session.commit()


def _assert_says_closed(response, round_title: str, not_done: str) -> str:
    page = response.get_data(as_text=True)
    assert response.status_code == 409, response.status_code
    assert f"“{round_title}” is gesloten op" in page
    assert not_done in page
    assert not any(text in page for text in BAN)
    return page


def test_a_stance_sent_after_the_round_closed_says_so_on_the_round_page(app, login_as):
    w = make_world(2)
    org = w.orgs[0]
    client = login_as(w.reps[org.id])
    form_page = client.get(f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement")
    assert 'name="kind"' in form_page.text  # the form was there when the page was opened
    _close(w.round, w.facilitator)
    response = client.post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/stances",
        data={"organisation_id": org.id, "kind": "endorse", "text": ""},
    )
    page = _assert_says_closed(response, w.round.title, "Uw standpunt is niet vastgelegd.")
    assert "<h1" in page and w.round.title in page  # the round page itself, not an error page
    assert _count(Stance) == 0
    # English too.
    client.post("/language", data={"locale": "en", "next": "/"})
    response = client.post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/stances",
        data={"organisation_id": org.id, "kind": "endorse", "text": ""},
    )
    assert response.status_code == 409
    assert f"“{w.round.title}” closed at" in response.text
    assert "Your stance was not recorded." in response.text


def test_a_stance_after_the_deadline_passed_says_so_too(app, login_as):
    w = make_world(2)
    org = w.orgs[0]
    client = login_as(w.reps[org.id])
    w.round.closes_at = utcnow() - timedelta(seconds=1)  # the clock has not closed it yet
    db.session.commit()
    response = client.post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/stances",
        data={"organisation_id": org.id, "kind": "endorse", "text": ""},
    )
    _assert_says_closed(response, w.round.title, "Uw standpunt is niet vastgelegd.")
    assert _count(Stance) == 0


def test_without_the_mandate_an_open_round_still_refuses_with_403(app, login_as):
    w = make_world(2)
    org = w.orgs[0]
    client = login_as(w.officials[org.id])
    response = client.post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/stances",
        data={"organisation_id": org.id, "kind": "endorse", "text": ""},
    )
    assert response.status_code == 403
    assert _count(Stance) == 0


def test_a_late_clearance_says_so_on_the_clearance_page(app, login_as):
    w = make_world(2, round_types=(RoundType.CLEARANCE,))
    org = w.orgs[0]
    client = login_as(w.officials[org.id])
    _close(w.round, w.facilitator)
    response = client.post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/clearances",
        data={"organisation_id": org.id, "decision": "cleared", "remarks": ""},
    )
    _assert_says_closed(response, w.round.title, "Uw ambtelijk akkoord is niet vastgelegd.")


def test_late_comments_amendments_and_input_complete_say_so_with_a_link_back(app, login_as):
    w = build_world()
    round_ = w.process.rounds[0]
    client = login_as(w.person("vng"))
    version_url = w.url(f"/versions/{w.v1.number}")
    assert client.get(version_url).status_code == 200
    _close(round_, w.facilitator)
    comments = _count(Comment)

    response = client.post(
        w.url(f"/versions/{w.v1.number}/comments"),
        data={"organisation_id": w.vng.id, "body": "Te laat?", "paragraph_anchor": ""},
    )
    page = _assert_says_closed(response, round_.title, "Uw reactie is niet geplaatst.")
    assert f'href="{version_url}' in page
    assert _count(Comment) == comments

    anchor = w.v1.paragraphs[1].anchor
    response = client.post(
        w.url(f"/versions/{w.v1.number}/amendments/new"),
        data={
            "organisation_id": w.vng.id,
            "kind": "replace",
            "paragraph": anchor,
            "proposed_text": "Nieuw.",
            "rationale": "Beter.",
        },
    )
    page = _assert_says_closed(response, round_.title, "Uw wijzigingsvoorstel is niet ingediend.")
    assert f'href="{version_url}' in page

    response = client.post(
        f"/processes/{w.process.slug}/rounds/{round_.id}/complete",
        data={"organisation_id": w.vng.id},
    )
    _assert_says_closed(response, round_.title, "Uw inbreng is niet als compleet gemeld.")
    completed = (
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "round.input_completed")
    )
    assert db.session.scalar(completed) == 0


def test_an_outsider_still_gets_no_glimpse(app, login_as):
    w = make_world(2)
    stranger = make_user()
    make_membership(stranger, make_organisation(), MembershipRole.REPRESENTATIVE)
    client = login_as(stranger)
    _close(w.round, w.facilitator)
    response = client.post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/stances",
        data={"organisation_id": w.orgs[0].id, "kind": "endorse", "text": ""},
    )
    assert response.status_code == 404


def test_an_edit_after_the_edit_window_says_so_and_keeps_the_text(app, login_as):
    from consensus.services import positions as position_service

    w = build_world()
    author = w.person("vng")
    comment = position_service.add_comment(
        w.v1, w.process, actor=author, organisation=w.vng, body="Eerst."
    )
    db.session.commit()
    client = login_as(author)
    edit_url = w.url(f"/comments/{comment.id}/edit")
    assert client.get(edit_url).status_code == 200  # the form opens in time…
    comment.created_at = utcnow() - timedelta(hours=1)  # …and the window passes
    db.session.commit()
    response = client.post(edit_url, data={"body": "Later."})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Uw wijziging is niet opgeslagen." in page
    assert f"#comment-{comment.id}" in page  # the way back to the comment
    assert not any(text in page for text in BAN)
    db.session.refresh(comment)
    assert comment.body == "Eerst."
    # Someone else's comment is still simply not theirs to edit.
    other = login_as(w.person("ipo"))
    assert other.post(edit_url, data={"body": "x"}).status_code == 403


def test_a_real_refusal_offers_the_way_back_it_came_from(app, login_as):
    w = make_world(2)
    client = login_as(w.officials[w.orgs[0].id])
    round_page = f"http://localhost/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"
    response = client.post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/stances",
        data={"organisation_id": w.orgs[0].id, "kind": "endorse"},
        headers={"Referer": round_page},
    )
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    back = f'href="/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"'
    assert back in page and "Terug naar de vorige pagina" in page
    response = client.post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/stances",
        data={"organisation_id": w.orgs[0].id, "kind": "endorse"},
        headers={"Referer": "https://evil.example/phish"},
    )
    assert "evil.example" not in response.get_data(as_text=True)
