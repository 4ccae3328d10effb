"""Feedback before publication (issue 21 item 4): the proposed disposition goes to each
contributing organisation, which agrees or contests within the period; contested items are
visible to the facilitator; the report is published at the set time and records the
feedback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import AmendmentState, DispositionFeedback, MembershipRole, utcnow
from consensus.services import drafting, processes
from consensus.services.errors import Conflict, DomainError, Forbidden
from tests.api_support import TokenClient, make_token
from tests.web.test_positions import build_world, decide, propose, text_of


def _closed_round_with_decisions(w):
    p = w.v1.paragraphs
    a1 = propose(w, paragraph_anchor=p[2].anchor, proposed_text="Als gelijken.")
    a2 = propose(w, "ipo", paragraph_anchor=p[1].anchor, proposed_text="Dank.")
    decide(w, a1, AmendmentState.ACCEPTED, reason="Helder.")
    decide(w, a2, AmendmentState.REJECTED, reason="Past niet in deze brief.")
    processes.close_round(w.process.rounds[0], actor=w.facilitator)
    db.session.commit()
    return a1, a2


def _local(moment):
    from consensus.domain.timeutil import to_local_input

    return to_local_input(moment).strftime("%Y-%m-%dT%H:%M")


def report_url(w, suffix=""):
    return (
        f"/processes/{w.process.slug}/positions/rounds/{w.process.rounds[0].id}/disposition{suffix}"
    )


def test_organisations_answer_before_publication_and_the_report_records_it(
    client, login_as, app, monkeypatch
):
    w = build_world()
    a1, a2 = _closed_round_with_decisions(w)
    login_as(w.facilitator)
    now = utcnow()
    response = client.post(
        report_url(w, "/send"),
        data={
            "respond_by": _local(now + timedelta(days=2)),
            "publish_at": _local(now + timedelta(days=3)),
        },
    )
    assert response.status_code == 302
    review = drafting.review_of(w.process.rounds[0].id)
    assert review is not None and len(review.items) == 2
    # Participants do not see the report yet, only when it comes.
    login_as(w.person("ipo", MembershipRole.OBSERVER))
    page = text_of(client.get(report_url(w)).text)
    assert "Nog niet gepubliceerd" in page and "Past niet in deze brief." not in page
    assert client.get(report_url(w, ".csv")).status_code == 404
    assert client.get(report_url(w, ".pdf")).status_code == 404
    # The API asks the same rule: a token of the observer is refused, the facilitator's reads.
    api_path = f"/processes/{w.process.slug}/rounds/{w.process.rounds[0].id}/disposition"
    observer_api = TokenClient(
        app.test_client(), make_token(w.person("ipo", MembershipRole.OBSERVER))
    )
    facilitator_api = TokenClient(app.test_client(), make_token(w.facilitator))
    assert facilitator_api.get(api_path).status_code == 200  # fills the kept answer first
    assert observer_api.get(api_path).status_code == 404
    # Each organisation sees only its own proposed decisions (others: 404).
    ipo_url = report_url(w, f"/organisations/{w.ipo.id}")
    login_as(w.person("vng"))
    assert client.get(ipo_url).status_code == 404
    login_as(w.person("ipo"))
    page = text_of(client.get(ipo_url).text)
    assert "Past niet in deze brief." in page and "Helder." not in page
    item = next(i for i in review.items if i.amendment_id == a2.id)
    # Contesting needs a comment.
    response = client.post(ipo_url, data={"item": item.id, f"f{item.id}-response": "contest"})
    assert response.status_code == 400
    assert "Zeg waarom u dit besluit betwist." in text_of(response.text)
    response = client.post(
        ipo_url,
        data={
            "item": item.id,
            f"f{item.id}-response": "contest",
            f"f{item.id}-comment": "De bedragen zijn juist de kern.",
        },
    )
    assert response.status_code == 302
    login_as(w.person("vng", MembershipRole.REPRESENTATIVE))
    vng_item = next(i for i in review.items if i.amendment_id == a1.id)
    client.post(
        report_url(w, f"/organisations/{w.vng.id}"),
        data={"item": vng_item.id, f"f{vng_item.id}-response": "agree"},
    )
    # The facilitator sees the contested item.
    login_as(w.facilitator)
    page = text_of(client.get(report_url(w)).text)
    assert "Betwist: De bedragen zijn juist de kern." in page
    # After the publication time everyone sees the report, with the feedback recorded.
    later = utcnow() + timedelta(days=4)
    monkeypatch.setattr(drafting, "utcnow", lambda: later)
    login_as(w.person("ipo", MembershipRole.OBSERVER))
    page = text_of(client.get(report_url(w)).text)
    assert "Past niet in deze brief." in page
    assert "Betwist: De bedragen zijn juist de kern." in page
    assert "Eens" in page
    assert client.get(report_url(w, ".pdf")).status_code == 200
    assert observer_api.get(api_path).status_code == 200


def test_answers_close_with_the_period(app, monkeypatch):
    w = build_world()
    _, a2 = _closed_round_with_decisions(w)
    now = utcnow()
    review = drafting.send_disposition(
        w.process,
        w.process.rounds[0],
        actor=w.facilitator,
        respond_by=now + timedelta(hours=1),
        publish_at=now + timedelta(hours=2),
    )
    db.session.commit()
    item = next(i for i in review.items if i.amendment_id == a2.id)
    with pytest.raises(Forbidden):
        drafting.respond_to_disposition(item, w.process, actor=w.person("vng"), response="agree")
    monkeypatch.setattr(drafting, "utcnow", lambda: now + timedelta(hours=1, minutes=1))
    with pytest.raises(DomainError):
        drafting.respond_to_disposition(item, w.process, actor=w.person("ipo"), response="agree")
    assert db.session.execute(select(DispositionFeedback.response)).scalars().all() == [None, None]


def test_sending_needs_a_closed_round_every_decision_and_sensible_times(app):
    w = build_world()
    p = w.v1.paragraphs
    a1 = propose(w, paragraph_anchor=p[2].anchor, proposed_text="Als gelijken.")
    now = utcnow()
    times = {"respond_by": now + timedelta(days=1), "publish_at": now + timedelta(days=2)}
    round_ = w.process.rounds[0]
    with pytest.raises(DomainError):  # the round is still open
        drafting.send_disposition(w.process, round_, actor=w.facilitator, **times)
    processes.close_round(round_, actor=w.facilitator)
    db.session.commit()
    with pytest.raises(DomainError):  # amendment 1 is not decided
        drafting.send_disposition(w.process, round_, actor=w.facilitator, **times)
    decide(w, a1, AmendmentState.REJECTED, reason="Nee.")
    with pytest.raises(DomainError):  # publication before the end of the answers
        drafting.send_disposition(
            w.process,
            round_,
            actor=w.facilitator,
            respond_by=now + timedelta(days=2),
            publish_at=now + timedelta(days=1),
        )
    with pytest.raises(Forbidden):
        drafting.send_disposition(w.process, round_, actor=w.person("vng"), **times)
    drafting.send_disposition(w.process, round_, actor=w.facilitator, **times)
    db.session.commit()
    with pytest.raises(Conflict):
        drafting.send_disposition(w.process, round_, actor=w.facilitator, **times)
