"""Organisation contributions (issue 21 item 1): prepared in a space only the organisation
sees (others: 404), cleared by an officer of the organisation (not its writer), submitted
once as the organisation's; who drafted it is in the audit trail; a per-process setting
allows or refuses individual contributions."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import (
    Amendment,
    AuditEvent,
    Comment,
    Contribution,
    ContributionState,
    MembershipRole,
)
from consensus.services import drafting
from consensus.services import positions as service
from consensus.services.errors import Forbidden
from tests.factories import make_membership, make_user
from tests.web.test_positions import build_world, text_of


@pytest.fixture
def world(app):
    w = build_world()
    second = make_user("official2.vng@example.org", name="Tweede ambtenaar VNG")
    make_membership(second, w.vng, MembershipRole.OFFICIAL)
    db.session.commit()
    w.people[("vng", "second")] = second
    return w


def space_url(w, org):
    return w.url(f"/organisations/{org.id}/contributions")


def _draft_through_the_page(client, w):
    p = w.v1.paragraphs
    response = client.post(
        space_url(w, w.vng),
        data={
            "kind": "replace",
            "paragraph": p[2].anchor,
            "end_paragraph": "",
            "text": "Gemeenten, provincies en waterschappen doen als gelijken mee.",
            "rationale": "Korter.",
        },
    )
    assert response.status_code == 302, text_of(response.text)
    return db.session.execute(select(Contribution)).scalar_one()


def test_two_officials_draft_clear_and_submit_once_as_the_organisation(client, login_as, world):
    w = world
    first, second = w.person("vng"), w.people[("vng", "second")]
    login_as(first)
    contribution = _draft_through_the_page(client, w)
    url = w.url(f"/contributions/{contribution.id}")
    page = text_of(client.get(url).text)
    assert "Alleen VNG ziet deze pagina." in page
    # The writer cannot clear their own text; submitting before clearance is refused.
    assert client.post(url + "/clear").status_code == 302
    assert client.post(url + "/submit").status_code == 302
    db.session.expire_all()
    assert contribution.state == ContributionState.DRAFT
    assert db.session.execute(select(Amendment)).first() is None
    # The colleague adds an internal comment and clears it.
    login_as(second)
    assert client.post(url + "/notes", data={"body": "Prima zo."}).status_code == 302
    assert client.post(url + "/clear").status_code == 302
    db.session.expire_all()
    assert contribution.state == ContributionState.CLEARED
    assert contribution.cleared_by_id == second.id
    # Submitted once: one amendment, as the organisation's, no person as its author.
    assert client.post(url + "/submit").status_code == 302
    assert client.post(url + "/submit").status_code == 302  # a second time: refused
    db.session.expire_all()
    amendments = db.session.execute(select(Amendment)).scalars().all()
    assert len(amendments) == 1
    amendment = amendments[0]
    assert amendment.organisation_id == w.vng.id and amendment.author_id is None
    assert contribution.state == ContributionState.SUBMITTED
    assert contribution.amendment_id == amendment.id
    # Others see it as from VNG.
    login_as(w.person("ipo"))
    shown = text_of(client.get(w.url(f"/amendments/{amendment.number}")).text)
    assert "VNG (een vrijgegeven bijdrage van de organisatie)" in shown
    assert first.display_name not in shown and second.display_name not in shown
    # Who drafted and cleared it is in the audit trail.
    submitted = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "contribution.submitted")
    ).scalar_one()
    payload = json.loads(submitted.payload)
    assert payload["drafted_by"] == sorted([first.id, second.id])
    assert payload["cleared_by"] == second.id


def test_a_space_is_invisible_to_everyone_else(client, login_as, world):
    w = world
    login_as(w.person("vng"))
    contribution = _draft_through_the_page(client, w)
    for person in (
        w.person("ipo"),
        w.person("ipo", MembershipRole.REPRESENTATIVE),
        w.person("vng", MembershipRole.OBSERVER),
        w.facilitator,
        w.person("x"),
    ):
        login_as(person)
        for url in (
            space_url(w, w.vng),
            w.url(f"/contributions/{contribution.id}"),
        ):
            assert client.get(url).status_code == 404, (person.email, url)
        for step in ("clear", "submit", "discard", "notes", "edit"):
            response = client.post(w.url(f"/contributions/{contribution.id}/{step}"))
            assert response.status_code == 404, (person.email, step)
    db.session.expire_all()
    assert contribution.state == ContributionState.DRAFT
    assert not contribution.notes


def test_a_change_after_clearance_needs_clearing_again(client, login_as, world):
    w = world
    login_as(w.person("vng"))
    contribution = _draft_through_the_page(client, w)
    url = w.url(f"/contributions/{contribution.id}")
    login_as(w.people[("vng", "second")])
    client.post(url + "/clear")
    client.post(url + "/edit", data={"text": "Een andere tekst.", "rationale": "Beter."})
    db.session.expire_all()
    assert contribution.state == ContributionState.DRAFT and contribution.cleared_by_id is None
    # The one who changed it last cannot clear it either; the first writer can now.
    client.post(url + "/clear")
    db.session.expire_all()
    assert contribution.state == ContributionState.DRAFT
    login_as(w.person("vng", MembershipRole.REPRESENTATIVE))
    client.post(url + "/clear")
    db.session.expire_all()
    assert contribution.state == ContributionState.CLEARED


def test_a_comment_contribution_is_shown_as_the_organisations(client, login_as, world):
    w = world
    contribution = drafting.prepare_contribution(
        w.v1,
        w.process,
        actor=w.person("vng"),
        organisation=w.vng,
        kind="comment",
        text="Wij missen de regio's.",
        paragraph_anchor=w.v1.paragraphs[1].anchor,
    )
    drafting.clear_contribution(contribution, w.process, actor=w.people[("vng", "second")])
    comment = drafting.submit_contribution(contribution, w.process, actor=w.person("vng"))
    db.session.commit()
    assert isinstance(comment, Comment) and comment.author_id is None
    login_as(w.person("ipo"))
    page = text_of(client.get(w.url("/versions/1")).text)
    assert "Wij missen de regio's." in page
    assert "Bijdrage van de organisatie" in page


def test_the_process_can_refuse_individual_contributions(client, login_as, world):
    w = world
    login_as(w.facilitator)
    assert (
        client.post(f"/processes/{w.process.slug}/positions/settings", data={}).status_code == 302
    )
    db.session.expire_all()
    with pytest.raises(Forbidden):
        service.propose_amendment(
            w.v1,
            w.process,
            actor=w.person("vng"),
            organisation=w.vng,
            proposed_text="Iets anders.",
            rationale="Zomaar.",
            paragraph_anchor=w.v1.paragraphs[1].anchor,
        )
    db.session.rollback()
    login_as(w.person("vng"))
    page = client.get(w.url("/versions/1")).text
    assert "Wijziging voorstellen" not in text_of(page)
    assert "de ruimte van VNG" in text_of(page)
    # The organisation route still works.
    contribution = _draft_through_the_page(client, w)
    drafting.clear_contribution(contribution, w.process, actor=w.people[("vng", "second")])
    drafting.submit_contribution(contribution, w.process, actor=w.person("vng"))
    db.session.commit()
    assert db.session.execute(select(Amendment)).scalar_one().organisation_id == w.vng.id
    # The facilitator can allow individual input again.
    login_as(w.facilitator)
    client.post(
        f"/processes/{w.process.slug}/positions/settings",
        data={"individual_contributions": "y"},
    )
    from consensus.permissions.drafting import individual_contributions_allowed

    assert individual_contributions_allowed(w.process)


def test_bad_input_is_refused_with_a_message(client, login_as, world):
    w = world
    login_as(w.person("vng"))
    response = client.post(
        space_url(w, w.vng),
        data={"kind": "replace", "paragraph": w.v1.paragraphs[1].anchor, "text": "X"},
    )
    assert response.status_code == 400
    assert "Licht toe waarom u deze wijziging voorstelt." in response.text
    assert db.session.execute(select(Contribution)).first() is None
