"""Consolidation (issue 21 item 3): overlapping amendments grouped, a group decided at
once (adopt one, reject all, or a compromise), every decision applied in one step with a
preview and a conflict check."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import AmendmentState, AuditEvent, Consolidation, MembershipRole
from consensus.services import drafting
from consensus.services import positions as service
from consensus.services.errors import Conflict, DomainError, Forbidden
from tests.web.test_positions import build_world, decide, propose, text_of


def _three_on_paragraph_3(w):
    """VNG and IPO both rewrite paragraph 3; IPO also rewrites 3–4 (overlapping); VNG
    proposes a change to paragraph 2 that overlaps nothing."""
    p = w.v1.paragraphs
    a1 = propose(w, paragraph_anchor=p[2].anchor, proposed_text="Als gelijken, VNG-tekst.")
    a2 = propose(w, "ipo", paragraph_anchor=p[2].anchor, proposed_text="Als gelijken, IPO-tekst.")
    a3 = propose(
        w,
        "ipo",
        paragraph_anchor=p[2].anchor,
        end_anchor=p[3].anchor,
        proposed_text="Als gelijken.\n\n- Samen aan de basis werken.",
    )
    lonely = propose(w, paragraph_anchor=p[1].anchor, proposed_text="Dank voor de uitnodiging.")
    return a1, a2, a3, lonely


def consolidate_url(w):
    return w.url("/consolidate")


def test_overlapping_amendments_are_grouped(app):
    w = build_world()
    a1, a2, a3, lonely = _three_on_paragraph_3(w)
    extra = propose(
        w,
        paragraph_anchor=w.v1.paragraphs[2].anchor,
        end_anchor=w.v1.paragraphs[3].anchor,
        proposed_text="Eén alinea in plaats van twee.",
    )
    groups = drafting.amendment_groups(w.position)
    assert [g.numbers for g in groups] == [
        [a1.number, a2.number, a3.number, extra.number],
        [lonely.number],
    ]
    assert groups[0].overlapping and not groups[1].overlapping
    p = w.v1.paragraphs
    assert (groups[0].first_anchor, groups[0].last_anchor) == (p[2].anchor, p[3].anchor)
    assert groups[0].original_text == f"{p[2].text}\n\n{p[3].text}"


def test_the_facilitator_adopts_one_and_rejects_the_others_with_one_reason(client, login_as, app):
    w = build_world()
    a1, a2, _, lonely = _three_on_paragraph_3(w)
    a3 = None
    login_as(w.facilitator)
    page = client.get(consolidate_url(w))
    assert page.status_code == 200
    text = text_of(page.text)
    assert "3 overlappende wijzigingsvoorstellen" in text
    assert "alinea 3, regel" in text
    group = next(g for g in drafting.amendment_groups(w.position) if g.overlapping)
    a3 = group.amendments[2]
    response = client.post(
        consolidate_url(w),
        data={
            "group": group.key,
            f"g{group.key}-numbers": ",".join(map(str, group.numbers)),
            f"g{group.key}-decision": f"adopt:{a2.number}",
            f"g{group.key}-reason": "De IPO-tekst is het helderst.",
            f"g{group.key}-shared_reason": "Opgegaan in voorstel van IPO.",
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert a2.state == AmendmentState.ACCEPTED
    assert a2.decision_reason == "De IPO-tekst is het helderst."
    for other in (a1, a3):
        assert other.state == AmendmentState.REJECTED
        assert other.decision_reason == "Opgegaan in voorstel van IPO."
    assert lonely.state == AmendmentState.PENDING
    events = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "amendment.decided")
    ).scalars()
    assert len(list(events)) == 3


def test_a_group_decision_needs_its_reasons_and_changes_nothing_without(client, login_as, app):
    w = build_world()
    _three_on_paragraph_3(w)
    group = next(g for g in drafting.amendment_groups(w.position) if g.overlapping)
    login_as(w.facilitator)
    response = client.post(
        consolidate_url(w),
        data={
            "group": group.key,
            f"g{group.key}-numbers": group.key,
            f"g{group.key}-decision": f"adopt:{group.numbers[0]}",
            f"g{group.key}-reason": "Prima.",
        },
    )
    assert response.status_code == 400
    assert "Geef de reden waarom de andere voorstellen niet worden overgenomen." in response.text
    db.session.expire_all()
    assert all(a.state == AmendmentState.PENDING for a in group.amendments)


def test_a_compromise_is_applied_in_one_step_with_the_other_decisions(client, login_as, app):
    w = build_world()
    a1, a2, a3, lonely = _three_on_paragraph_3(w)
    decide(w, lonely, AmendmentState.ACCEPTED, reason="Goed.")
    group = next(g for g in drafting.amendment_groups(w.position) if g.overlapping)
    compromise = "Gemeenten, provincies en waterschappen doen als gelijken mee.\n\n- Samen bouwen."
    login_as(w.facilitator)
    response = client.post(
        consolidate_url(w),
        data={
            "group": group.key,
            f"g{group.key}-numbers": group.key,
            f"g{group.key}-decision": "compromise",
            f"g{group.key}-reason": "Beide voorstellen samengevoegd.",
            f"g{group.key}-compromise_text": compromise,
        },
    )
    assert response.status_code == 302, text_of(response.text)
    db.session.expire_all()
    for member in (a1, a2, a3):
        assert member.state == AmendmentState.ACCEPTED_IN_PART
        assert member.adopted_text == compromise
    # The preview applies the compromise and the single amendment together.
    preview = client.get(w.url("/apply"))
    assert preview.status_code == 200
    text = text_of(preview.text)
    assert "4 wijzigingsvoorstellen worden verwerkt" in text
    sha = re.search(r'name="preview_sha256"[^>]*value="([0-9a-f]{64})"', preview.text)
    sha = sha or re.search(r'value="([0-9a-f]{64})"[^>]*name="preview_sha256"', preview.text)
    response = client.post(w.url("/apply"), data={"preview_sha256": sha.group(1)})
    assert response.status_code == 302
    db.session.expire_all()
    v2 = w.position.versions[-1]
    assert v2.number == 2
    texts = [p.text for p in v2.paragraphs]
    assert "Dank voor de uitnodiging." in texts
    assert "Gemeenten, provincies en waterschappen doen als gelijken mee." in texts
    assert "- Samen bouwen." in texts
    assert not any("Samen investeren" in t for t in texts)  # paragraph 4 was in the stretch
    # The compromise keeps the anchor of the first paragraph it replaces.
    assert v2.paragraphs[2].anchor == w.v1.paragraphs[2].anchor
    assert all(m.applied_in_version_id == v2.id for m in (a1, a2, a3, lonely))
    consolidation = db.session.execute(select(Consolidation)).scalar_one()
    assert consolidation.applied_in_version_id == v2.id
    # Any two versions can be compared.
    assert client.get(w.url("/diff?from=1&to=2")).status_code == 200


def test_a_compromise_on_a_changed_text_is_a_conflict(app):
    w = build_world()
    _three_on_paragraph_3(w)
    group = next(g for g in drafting.amendment_groups(w.position) if g.overlapping)
    drafting.decide_group(
        w.position,
        w.process,
        actor=w.facilitator,
        numbers=group.numbers,
        decision="compromise",
        reason="Samengevoegd.",
        compromise_text="Een compromis.",
    )
    db.session.commit()
    # Meanwhile the facilitator rewrites paragraph 3 by hand.
    service.create_version(
        w.position,
        w.process,
        actor=w.facilitator,
        body=w.v1.body.replace("als gelijkwaardige partners", "als partners"),
        change_summary="Handmatig.",
    )
    db.session.commit()
    plan = service.plan_application(w.position, service.load_amendments(w.position.id))
    assert not plan.ready
    assert {c.amendment.number for c in plan.conflicts} == set(group.numbers)
    assert "gewijzigd" in plan.conflicts[0].reason


def test_deciding_one_member_alone_takes_it_out_of_the_compromise(app):
    w = build_world()
    a1, a2, a3, _ = _three_on_paragraph_3(w)
    group = next(g for g in drafting.amendment_groups(w.position) if g.overlapping)
    drafting.decide_group(
        w.position,
        w.process,
        actor=w.facilitator,
        numbers=group.numbers,
        decision="compromise",
        reason="Samengevoegd.",
        compromise_text="Een compromis.",
    )
    db.session.commit()
    decide(w, a1, AmendmentState.REJECTED, reason="Toch niet.")
    consolidation = db.session.execute(select(Consolidation)).scalar_one()
    assert sorted(consolidation.amendment_ids) == sorted([a2.id, a3.id])


def test_a_group_must_be_exactly_one_open_group(app):
    w = build_world()
    a1, a2, _, lonely = _three_on_paragraph_3(w)
    with pytest.raises(Conflict):
        drafting.decide_group(
            w.position,
            w.process,
            actor=w.facilitator,
            numbers=[a1.number, a2.number],  # a3 left out
            decision="reject",
            reason="Nee.",
        )
    with pytest.raises(Forbidden):
        drafting.decide_group(
            w.position,
            w.process,
            actor=w.person("vng", MembershipRole.REPRESENTATIVE),
            numbers=[lonely.number],
            decision="reject",
            reason="Nee.",
        )
    with pytest.raises(DomainError):
        drafting.decide_group(
            w.position,
            w.process,
            actor=w.facilitator,
            numbers=[lonely.number],
            decision="compromise",
            reason="Zo.",
            compromise_text=lonely.original_text,
        )


def test_only_the_facilitator_consolidates(client, login_as, app):
    w = build_world()
    _three_on_paragraph_3(w)
    login_as(w.person("vng", MembershipRole.REPRESENTATIVE))
    assert client.get(consolidate_url(w)).status_code == 403
    login_as(w.person("x"))
    assert client.get(consolidate_url(w)).status_code == 404


def _field_error(html: str, field_id: str) -> str:
    """The text of the error message shown next to one field ('' when there is none)."""
    found = re.search(rf'id="{re.escape(field_id)}-error">(.*?)</div>\s*</div>', html, re.S)
    return text_of(found.group(1)) if found else ""


def test_the_reason_fields_say_when_they_are_required(client, login_as, app):
    """No reason field claims to be optional: a rejection needs a (shared) reason, an
    adoption or compromise its own. A missing reason is said next to its field, in Dutch,
    and changes nothing."""
    w = build_world()
    _, _, _, lonely = _three_on_paragraph_3(w)
    group, single = drafting.amendment_groups(w.position)
    login_as(w.facilitator)
    page = client.get(consolidate_url(w)).text
    assert "niet verplicht" not in text_of(page)
    text = " ".join(text_of(page).split())
    assert (
        "Gezamenlijke reden voor de niet overgenomen voorstellen Verplicht als een voorstel niet "
        "wordt overgenomen" in text
    )
    assert "Reden voor het besluit Verplicht bij elk besluit" in text
    # A single amendment not adopted without a reason: the message at its one reason field.
    response = client.post(
        consolidate_url(w),
        data={
            "group": single.key,
            f"g{single.key}-numbers": single.key,
            f"g{single.key}-decision": "reject",
        },
    )
    assert response.status_code == 400
    assert "Geef de reden voor dit besluit." in _field_error(response.text, f"g{single.key}-reason")
    # A group where all are rejected: the message at the shared reason.
    response = client.post(
        consolidate_url(w),
        data={
            "group": group.key,
            f"g{group.key}-numbers": group.key,
            f"g{group.key}-decision": "reject",
        },
    )
    assert response.status_code == 400
    assert "Geef de reden voor dit besluit." in _field_error(
        response.text, f"g{group.key}-shared_reason"
    )
    # One adopted, the others without the shared reason.
    response = client.post(
        consolidate_url(w),
        data={
            "group": group.key,
            f"g{group.key}-numbers": group.key,
            f"g{group.key}-decision": f"adopt:{group.numbers[0]}",
            f"g{group.key}-reason": "Prima.",
        },
    )
    assert response.status_code == 400
    assert "Geef de reden waarom de andere voorstellen niet worden overgenomen." in _field_error(
        response.text, f"g{group.key}-shared_reason"
    )
    db.session.expire_all()
    assert all(a.state == AmendmentState.PENDING for a in [*group.amendments, lonely])
