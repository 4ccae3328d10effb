"""Positions through the app: versions and hashes, comments, amendments, diffs."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from consensus.extensions import db
from consensus.models import (
    Amendment,
    AmendmentState,
    AuditEvent,
    Comment,
    CommentRevision,
    MembershipRole,
    Organisation,
    Position,
    Process,
    RoundState,
    RoundType,
    User,
    Version,
    utcnow,
)
from consensus.services import positions as service
from consensus.services import processes
from consensus.services.errors import DomainError
from tests.factories import make_membership, make_organisation, make_process, make_user

V1 = """# Gezamenlijke inbreng

Wij danken u voor de gelegenheid om te reageren op de strategie.

Gemeenten, provincies en waterschappen willen als gelijkwaardige partners meedoen.

- Samen werken aan basisvoorzieningen.
- Samen investeren in digitale vaardigheden.

Wij zien uit naar een vervolg.
"""


@dataclass
class World:
    facilitator: User
    process: Process
    position: Position
    vng: Organisation
    ipo: Organisation
    outsider: Organisation
    people: dict[tuple[str, MembershipRole], User]

    def person(self, slug: str, role: MembershipRole = MembershipRole.OFFICIAL) -> User:
        return self.people[(slug, role)]

    @property
    def v1(self) -> Version:
        return self.position.versions[0]

    def url(self, suffix: str = "") -> str:
        return f"/processes/{self.process.slug}/positions/{self.position.id}{suffix}"


def build_world(round_type: RoundType = RoundType.CONSULTATION, body: str = V1) -> World:
    """A process with VNG and IPO, a position with version 1, and an open round about it."""
    facilitator = make_user("facilitator@example.org", name="Anouk", is_facilitator=True)
    vng = make_organisation("vng", name="VNG")
    ipo = make_organisation("ipo", name="IPO")
    outsider = make_organisation("x", name="Buiten")
    people = {}
    for org in (vng, ipo, outsider):
        for role in MembershipRole:
            person = make_user(
                f"{role.value}.{org.slug}@example.org", name=f"{role.value} {org.slug}"
            )
            make_membership(person, org, role)
            people[(org.slug, role)] = person
    now = utcnow()
    process = make_process(
        facilitator,
        [vng, ipo],
        rounds=[(round_type, now - timedelta(minutes=5), now + timedelta(days=2))],
    )
    position = service.create_position(
        process,
        actor=facilitator,
        title="Gezamenlijke brief",
        subject="Reactie op de strategie",
        addressee="Staatssecretaris Digitalisering\nPostbus 20011\n2500 EA Den Haag",
        place="Den Haag",
        reference="BOD-2026-014",
        body=body,
    )
    processes.tick()
    db.session.commit()
    assert process.rounds[0].state == RoundState.OPEN
    return World(facilitator, process, position, vng, ipo, outsider, people)


@pytest.fixture
def world(app) -> World:
    return build_world()


def text_of(html: str) -> str:
    """What a screen reader reads: the text without tags."""
    return re.sub(r"<[^>]+>", "", html)


def anchors_of(version: Version) -> list[str]:
    return [p.anchor for p in version.paragraphs]


def propose(w: World, org: str = "vng", **kwargs) -> Amendment:
    organisation = w.vng if org == "vng" else w.ipo
    amendment = service.propose_amendment(
        w.v1,
        w.process,
        actor=w.person(org),
        organisation=organisation,
        rationale=kwargs.pop("rationale", "Omdat het beter is."),
        **kwargs,
    )
    db.session.commit()
    return amendment


def decide(w: World, amendment: Amendment, state: AmendmentState, **kwargs) -> None:
    service.decide_amendment(
        amendment,
        w.process,
        actor=w.facilitator,
        decision=state,
        reason=kwargs.pop("reason", "Zo besloten."),
        **kwargs,
    )
    db.session.commit()


# --- Positions and versions -------------------------------------------------------------------


def test_facilitator_creates_a_position_with_version_1(client, login_as, app):
    facilitator = make_user(is_facilitator=True)
    process = make_process(facilitator, [make_organisation()], active=False)
    login_as(facilitator)
    response = client.post(
        f"/processes/{process.slug}/positions/new",
        data={
            "title": "Brief",
            "subject": "Onderwerp",
            "addressee": "De staatssecretaris",
            "place": "Utrecht",
            "letter_date": "2026-12-01",
            "reference": "KN-1",
            "body": "Eerste alinea.  \r\n\r\n\r\nTweede alinea.\r\n\r\n",
        },
    )
    assert response.status_code == 302
    position = db.session.execute(select(Position)).scalar_one()
    version = position.latest
    assert version.number == 1
    assert version.body == "Eerste alinea.\n\nTweede alinea.\n"
    assert version.sha256 == hashlib.sha256(version.body.encode()).hexdigest()
    assert [p.text for p in version.paragraphs] == ["Eerste alinea.", "Tweede alinea."]
    page = client.get(response.headers["Location"]).text
    assert "Eerste alinea." in page and "Den Haag" not in page and "Utrecht" in page
    assert "1 december 2026" in page
    assert version.short_hash in page and version.sha256 in page
    events = db.session.execute(select(AuditEvent.action)).scalars().all()
    assert "position.created" in events and "version.created" in events


def test_only_facilitators_create_positions(client, login_as, world):
    login_as(world.person("vng"))
    assert client.get(f"/processes/{world.process.slug}/positions/new").status_code == 403
    assert client.post(f"/processes/{world.process.slug}/positions/new", data={}).status_code == 403


def test_outsiders_get_404_and_bad_numbers_404(client, login_as, world):
    login_as(world.person("x"))
    assert client.get(world.url("/versions/1")).status_code == 404
    login_as(world.person("vng"))
    assert client.get(world.url("/versions/1")).status_code == 200
    assert client.get(world.url("/versions/9")).status_code == 404
    assert client.get(f"/processes/{world.process.slug}/positions/999").status_code == 404


def test_download_is_the_exact_canonical_bytes(client, login_as, world):
    login_as(world.person("ipo", MembershipRole.OBSERVER))
    response = client.get(world.url("/versions/1.md"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    assert hashlib.sha256(response.data).hexdigest() == world.v1.sha256
    assert response.data == world.v1.body.encode("utf-8")


def test_the_version_page_shows_letter_anchors_and_hash(client, login_as, world):
    login_as(world.person("vng"))
    page = client.get(world.url("/versions/1")).text
    for paragraph in world.v1.paragraphs:
        assert f'id="{paragraph.anchor}"' in page
    assert "Postbus 20011" in page and "BOD-2026-014" in page
    assert world.v1.sha256 in page
    assert "Wijziging voorstellen" in page  # consultation is open and VNG may propose


def test_round_opening_pins_the_latest_version(world):
    assert world.process.rounds[0].version_id == world.v1.id


def test_new_version_keeps_anchors_of_untouched_paragraphs(client, login_as, world):
    login_as(world.facilitator)
    body = world.v1.body.replace("gelijkwaardige", "volwaardige").replace(
        "Wij zien uit", "Wij kijken uit"
    )
    body += "\nEen nieuwe slotalinea.\n"
    preview = client.post(
        world.url("/versions/new"),
        data={"organisation_id": "0", "body": body, "change_summary": "x", "action": "preview"},
    )
    assert preview.status_code == 200
    assert "[toegevoegd: " in preview.text and "[verwijderd: " in preview.text
    assert db.session.execute(select(func.count(Version.id))).scalar_one() == 1
    response = client.post(
        world.url("/versions/new"),
        data={
            "organisation_id": "0",
            "body": body,
            "change_summary": "Scherper",
            "action": "create",
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    v1, v2 = world.position.versions
    assert v2.number == 2 and v2.based_on_id == v1.id
    assert anchors_of(v2)[: len(anchors_of(v1))] == anchors_of(v1)
    assert len(anchors_of(v2)) == len(anchors_of(v1)) + 1


def test_same_text_is_not_a_new_version(world):
    with pytest.raises(DomainError):
        service.create_version(
            world.position,
            world.process,
            actor=world.facilitator,
            body=world.v1.body.replace("\n", "\r\n"),
            change_summary="niets",
        )


def test_officials_write_versions_only_in_drafting(client, login_as, app):
    w = build_world(RoundType.DRAFTING)
    login_as(w.person("vng"))
    assert client.get(w.url("/versions/new")).status_code == 200
    response = client.post(
        w.url("/versions/new"),
        data={
            "organisation_id": str(w.vng.id),
            "body": w.v1.body + "\nAanvulling.\n",
            "change_summary": "Aanvulling",
            "action": "create",
        },
    )
    assert response.status_code == 302
    login_as(w.person("vng", MembershipRole.OBSERVER))
    assert client.get(w.url("/versions/new")).status_code == 403


def test_officials_cannot_write_versions_in_consultation(client, login_as, world):
    login_as(world.person("vng"))
    assert client.get(world.url("/versions/new")).status_code == 403


def test_versions_are_immutable(world):
    world.v1.body = "Iets anders.\n"
    with pytest.raises(ValueError, match="immutable"):
        db.session.flush()
    db.session.rollback()


def test_version_created_hooks_are_called(world):
    seen = []
    service.VERSION_CREATED_HOOKS.append(
        lambda version, actor: seen.append((version.number, actor))
    )
    try:
        service.create_version(
            world.position,
            world.process,
            actor=world.facilitator,
            body="Nieuw.\n",
            change_summary="x",
        )
    finally:
        service.VERSION_CREATED_HOOKS.pop()
    assert seen == [(2, world.facilitator)]


def test_letter_details_are_frozen_after_endorsement_opens(app):
    w = build_world(RoundType.ENDORSEMENT)
    with pytest.raises(DomainError):
        service.update_position(
            w.position,
            w.process,
            actor=w.facilitator,
            title="Ander",
            subject="",
            addressee="",
            place="",
            letter_date=None,
            reference="",
        )


# --- Comments ---------------------------------------------------------------------------------


def test_comment_on_a_paragraph_without_javascript(client, login_as, world):
    anchor = world.v1.paragraphs[2].anchor
    login_as(world.person("vng"))
    response = client.post(
        world.url("/versions/1/comments"),
        data={
            "organisation_id": world.vng.id,
            "paragraph_anchor": anchor,
            "body": "Eens, **sterk**.",
        },
    )
    assert response.status_code == 302
    assert (
        f"open={anchor}" in response.headers["Location"]
        or "#comment-" in response.headers["Location"]
    )
    comment = db.session.execute(select(Comment)).scalar_one()
    assert comment.paragraph_anchor == anchor and comment.author_role == "official"
    page = client.get(world.url("/versions/1")).text
    assert "<strong>sterk</strong>" in page and "VNG" in page and "Ambtenaar" in page


def test_comment_with_htmx_returns_the_thread(client, login_as, world):
    anchor = world.v1.paragraphs[1].anchor
    login_as(world.person("ipo", MembershipRole.REPRESENTATIVE))
    response = client.post(
        world.url("/versions/1/comments"),
        data={"organisation_id": world.ipo.id, "paragraph_anchor": anchor, "body": "Goed punt."},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "<html" not in response.text and 'class="c-thread"' in response.text
    assert "Goed punt." in response.text and "Bestuurder" in response.text
    empty = client.post(
        world.url("/versions/1/comments"),
        data={"organisation_id": world.ipo.id, "paragraph_anchor": anchor, "body": " "},
        headers={"HX-Request": "true"},
    )
    assert empty.status_code == 422 and "Schrijf een reactie." in empty.text


def test_observers_and_outsiders_cannot_comment(client, login_as, world):
    login_as(world.person("vng", MembershipRole.OBSERVER))
    assert client.post(world.url("/versions/1/comments"), data={"body": "x"}).status_code == 403
    login_as(world.person("vng"))
    response = client.post(
        world.url("/versions/1/comments"), data={"organisation_id": world.outsider.id, "body": "x"}
    )
    assert response.status_code == 400
    assert db.session.execute(select(func.count(Comment.id))).scalar_one() == 0


def test_no_comments_after_the_round_closes(client, login_as, world):
    processes.close_round(world.process.rounds[0], actor=world.facilitator)
    db.session.commit()
    login_as(world.person("vng"))
    response = client.post(
        world.url("/versions/1/comments"), data={"organisation_id": world.vng.id, "body": "Te laat"}
    )
    assert response.status_code == 409  # the round closed: said so (tests/web/test_refusals.py)
    assert "Uw reactie is niet geplaatst." in response.get_data(as_text=True)


def test_replies_edits_and_tombstones(client, login_as, world):
    first = service.add_comment(
        world.v1, world.process, actor=world.person("vng"), organisation=world.vng, body="Vraag?"
    )
    db.session.commit()
    login_as(world.facilitator)
    reply_form = client.get(world.url(f"/comments/{first.id}/reply"))
    assert reply_form.status_code == 200
    response = client.post(
        world.url("/versions/1/comments"),
        data={"organisation_id": "0", "parent_id": str(first.id), "body": "Antwoord."},
    )
    assert response.status_code == 302
    reply = db.session.execute(select(Comment).where(Comment.parent_id == first.id)).scalar_one()
    assert reply.author_role == "facilitator" and reply.organisation_id is None
    # The author edits within the window; the old text is kept.
    login_as(world.person("vng"))
    response = client.post(
        world.url(f"/comments/{first.id}/edit"), data={"body": "Vraag, scherper?"}
    )
    assert response.status_code == 302
    revision = db.session.execute(select(CommentRevision)).scalar_one()
    assert revision.body == "Vraag?"
    history = client.get(world.url(f"/comments/{first.id}/history")).text
    assert "Vraag?" in history and "Vraag, scherper?" in history
    # Someone else may not edit or remove it.
    login_as(world.person("ipo"))
    assert (
        client.post(world.url(f"/comments/{first.id}/edit"), data={"body": "x"}).status_code == 403
    )
    assert client.post(world.url(f"/comments/{first.id}/remove")).status_code == 403
    # Removal leaves a tombstone; the reply stays.
    login_as(world.person("vng"))
    response = client.post(
        world.url(f"/comments/{first.id}/remove"), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "verwijderd" in response.text
    assert "Antwoord." in response.text
    page = client.get(world.url("/versions/1")).text
    assert "Vraag, scherper?" not in page and "Deze reactie is verwijderd" in page


def test_edit_window_closes(client, login_as, world, app):
    comment = service.add_comment(
        world.v1, world.process, actor=world.person("vng"), organisation=world.vng, body="Eerst."
    )
    comment.created_at = utcnow() - timedelta(minutes=16)
    db.session.commit()
    login_as(world.person("vng"))
    response = client.get(world.url(f"/comments/{comment.id}/edit"))
    assert response.status_code == 409  # too late, said so (tests/web/test_refusals.py)
    assert "De tijd om deze reactie te wijzigen is voorbij." in response.text
    app.config["COMMENT_EDIT_MINUTES"] = 30
    assert client.get(world.url(f"/comments/{comment.id}/edit")).status_code == 200


# --- Amendments -------------------------------------------------------------------------------


def test_official_proposes_an_amendment_through_the_form(client, login_as, world):
    target = world.v1.paragraphs[2]
    login_as(world.person("vng"))
    form = client.get(world.url(f"/versions/1/amendments/new?anchor={target.anchor}"))
    assert form.status_code == 200 and target.text in form.text
    response = client.post(
        world.url("/versions/1/amendments/new"),
        data={
            "organisation_id": world.vng.id,
            "kind": "replace",
            "paragraph": target.anchor,
            "end_paragraph": "",
            "proposed_text": target.text.replace("gelijkwaardige", "volwaardige"),
            "rationale": "Volwaardig is sterker.",
        },
    )
    assert response.status_code == 302
    amendment = db.session.execute(select(Amendment)).scalar_one()
    assert amendment.number == 1 and amendment.original_text == target.text
    assert amendment.state == AmendmentState.PENDING and amendment.round_id
    page = client.get(response.headers["Location"]).text
    assert "[toegevoegd: volwaardige]" in text_of(page)
    assert "[verwijderd: gelijkwaardige]" in text_of(page)


def test_amendment_form_errors(client, login_as, world):
    target = world.v1.paragraphs[2]
    login_as(world.person("vng"))
    data = {
        "organisation_id": world.vng.id,
        "kind": "replace",
        "paragraph": target.anchor,
        "proposed_text": target.text,
        "rationale": "",
    }
    response = client.post(world.url("/versions/1/amendments/new"), data=data)
    assert response.status_code == 400 and "Licht toe waarom" in response.text
    data["rationale"] = "Waarom niet"
    response = client.post(world.url("/versions/1/amendments/new"), data=data)
    assert response.status_code == 400 and "hetzelfde als de huidige tekst" in response.text
    assert db.session.execute(select(func.count(Amendment.id))).scalar_one() == 0


@pytest.mark.parametrize(
    ("slug", "role"),
    [("vng", MembershipRole.OBSERVER), ("x", MembershipRole.OFFICIAL)],
)
def test_who_may_not_propose(client, login_as, world, slug, role):
    login_as(world.person(slug, role))
    response = client.get(world.url("/versions/1/amendments/new"))
    assert response.status_code in {302, 404}


def test_no_amendments_in_drafting_rounds(app):
    w = build_world(RoundType.DRAFTING)
    with pytest.raises(DomainError):
        propose(w, paragraph_anchor=w.v1.paragraphs[1].anchor, proposed_text="Anders.")


def test_amendments_only_on_the_rounds_version(world):
    v2 = service.create_version(
        world.position,
        world.process,
        actor=world.facilitator,
        body="Alles anders.\n",
        change_summary="x",
    )
    with pytest.raises(DomainError):
        service.propose_amendment(
            v2,
            world.process,
            actor=world.person("vng"),
            organisation=world.vng,
            proposed_text="Anders.",
            rationale="x",
            paragraph_anchor=v2.paragraphs[0].anchor,
        )


def test_amendment_state_machine(client, login_as, world):
    anchor = world.v1.paragraphs[1].anchor
    a = propose(world, paragraph_anchor=anchor, proposed_text="Dank.")
    # Only facilitators decide.
    login_as(world.person("vng", MembershipRole.REPRESENTATIVE))
    url = world.url(f"/amendments/{a.number}/decide")
    assert client.post(url, data={"decision": "accepted", "reason": "x"}).status_code == 403
    # Always with a reason.
    login_as(world.facilitator)
    response = client.post(url, data={"decision": "rejected", "reason": ""})
    assert response.status_code == 400 and "Geef de reden" in response.text
    # Accepted in part needs the adopted text, different from proposal and original.
    response = client.post(
        url, data={"decision": "accepted_in_part", "reason": "x", "adopted_text": "Dank."}
    )
    assert response.status_code == 400
    response = client.post(
        url, data={"decision": "accepted_in_part", "reason": "Deels", "adopted_text": "Veel dank."}
    )
    assert response.status_code == 302
    db.session.refresh(a)
    assert a.state == AmendmentState.ACCEPTED_IN_PART and a.adopted_text == "Veel dank."
    # The proposer cannot withdraw a decided amendment.
    login_as(world.person("vng"))
    assert client.post(world.url(f"/amendments/{a.number}/withdraw")).status_code == 403
    # A pending one: the colleague of the same organisation can withdraw; others cannot.
    b = propose(world, paragraph_anchor=world.v1.paragraphs[2].anchor, proposed_text="Anders.")
    login_as(world.person("ipo"))
    assert client.post(world.url(f"/amendments/{b.number}/withdraw")).status_code == 403
    login_as(world.person("vng", MembershipRole.REPRESENTATIVE))
    assert client.post(world.url(f"/amendments/{b.number}/withdraw")).status_code == 302
    db.session.refresh(b)
    assert b.state == AmendmentState.WITHDRAWN
    with pytest.raises(DomainError):
        decide(world, b, AmendmentState.ACCEPTED)
    db.session.rollback()
    actions = db.session.execute(select(AuditEvent.action)).scalars().all()
    assert {"amendment.proposed", "amendment.decided", "amendment.withdrawn"} <= set(actions)


def test_the_database_insists_on_a_reason(world):
    a = propose(world, paragraph_anchor=world.v1.paragraphs[1].anchor, proposed_text="Dank.")
    a.state = AmendmentState.REJECTED
    with pytest.raises(Exception, match="(?i)constraint"):
        db.session.flush()
    db.session.rollback()


def test_apply_accepted_amendments_with_preview(client, login_as, world):
    p = world.v1.paragraphs
    a1 = propose(world, paragraph_anchor=p[1].anchor, proposed_text="Wij danken u hartelijk.")
    a2 = propose(world, "ipo", insert_after_anchor=p[2].anchor, proposed_text="Een nieuwe alinea.")
    a3 = propose(world, "ipo", paragraph_anchor=p[4].anchor, proposed_text="")
    a4 = propose(world, paragraph_anchor=p[0].anchor, proposed_text="# Andere titel")
    decide(world, a1, AmendmentState.ACCEPTED)
    decide(world, a2, AmendmentState.ACCEPTED)
    decide(world, a3, AmendmentState.ACCEPTED)
    decide(world, a4, AmendmentState.REJECTED, reason="De titel blijft.")
    login_as(world.facilitator)
    preview = client.get(world.url("/apply"))
    assert preview.status_code == 200
    assert "[toegevoegd: Een nieuwe alinea.]" in text_of(preview.text)
    assert db.session.execute(select(func.count(Version.id))).scalar_one() == 1
    sha = re.search(r'name="preview_sha256"[^>]*value="([0-9a-f]{64})"', preview.text).group(1)
    stale = client.post(
        world.url("/apply"), data={"preview_sha256": "0" * 64, "change_summary": ""}
    )
    assert stale.status_code == 400
    response = client.post(world.url("/apply"), data={"preview_sha256": sha, "change_summary": ""})
    assert response.status_code == 302
    db.session.expire_all()
    v1, v2 = world.position.versions
    assert v2.sha256 == sha
    texts = [q.text for q in v2.paragraphs]
    assert texts == [
        "# Gezamenlijke inbreng",
        "Wij danken u hartelijk.",
        p[2].text,
        "Een nieuwe alinea.",
        p[3].text,
    ]
    assert anchors_of(v2)[0:3] == anchors_of(v1)[0:3] and anchors_of(v2)[4] == p[3].anchor
    assert "1, 2, 3" in v2.change_summary
    for a in (a1, a2, a3):
        db.session.refresh(a)
        assert a.applied_in_version_id == v2.id
    db.session.refresh(a4)
    assert a4.applied_in_version_id is None
    with pytest.raises(DomainError):
        decide(world, a1, AmendmentState.REJECTED)


def test_conflicts_are_shown_and_rebased(client, login_as, world):
    p = world.v1.paragraphs
    a1 = propose(world, paragraph_anchor=p[2].anchor, proposed_text="Eerste voorstel.")
    a2 = propose(world, "ipo", paragraph_anchor=p[2].anchor, proposed_text="Tweede voorstel.")
    decide(world, a1, AmendmentState.ACCEPTED)
    decide(world, a2, AmendmentState.ACCEPTED)
    plan = service.plan_application(world.position, service.load_amendments(world.position.id))
    assert [a.number for a in plan.ready] == [1]
    assert [c.amendment.number for c in plan.conflicts] == [2]
    assert (
        "wijzigingsvoorstel 1" in plan.conflicts[0].reason.lower()
        or "1" in plan.conflicts[0].reason
    )
    service.apply_amendments(
        world.position,
        world.process,
        actor=world.facilitator,
        change_summary="",
        expected_sha256=plan.sha256,
    )
    db.session.commit()
    # Against version 2 the paragraph changed: still a conflict, shown on its page.
    login_as(world.facilitator)
    page = client.get(world.url(f"/amendments/{a2.number}")).text
    assert "Conflict" in page and "gewijzigd" in page
    response = client.post(
        world.url(f"/amendments/{a2.number}/rebase"),
        data={"paragraph": p[2].anchor, "adopted_text": "Eerste voorstel, met het tweede erbij."},
    )
    assert response.status_code == 302
    plan = service.plan_application(world.position, service.load_amendments(world.position.id))
    assert [a.number for a in plan.ready] == [2] and not plan.conflicts


def test_an_unrelated_edit_is_no_conflict(world):
    p = world.v1.paragraphs
    a = propose(world, paragraph_anchor=p[2].anchor, proposed_text="Anders.")
    decide(world, a, AmendmentState.ACCEPTED)
    service.create_version(
        world.position,
        world.process,
        actor=world.facilitator,
        body=world.v1.body.replace("Wij zien uit", "Wij kijken uit"),
        change_summary="slot",
    )
    plan = service.plan_application(world.position, service.load_amendments(world.position.id))
    assert [x.number for x in plan.ready] == [1] and not plan.conflicts


# --- Diffs ------------------------------------------------------------------------------------


def test_diff_inline_and_side_by_side(client, login_as, world):
    service.create_version(
        world.position,
        world.process,
        actor=world.facilitator,
        body=world.v1.body.replace("gelijkwaardige", "volwaardige"),
        change_summary="x",
    )
    db.session.commit()
    login_as(world.person("ipo", MembershipRole.OBSERVER))
    inline = client.get(world.url("/diff?from=1&to=2"))
    assert inline.status_code == 200
    assert (
        '<del class="c-diff-del"><span class="c-visually-hidden">[verwijderd: </span>gelijkwaardige'
        in inline.text
    )
    assert "[toegevoegd: </span>volwaardige" in inline.text
    side = client.get(world.url("/diff?from=1&to=2&view=side"))
    assert side.status_code == 200 and "<table" in side.text and "gewijzigd" in side.text
    assert client.get(world.url("/diff?from=1&to=7")).status_code == 404
    history = client.get(world.url("/versions")).text
    assert "/diff?from=1&amp;to=2" in history or "from=1" in history


def test_the_diff_page_follows_a_new_title_and_keeps_to_its_process(client, login_as, world):
    """The page names the versions from an outline kept by the audit head: a renamed
    position shows its new title at once, and a position is only found in its own process."""
    service.create_version(
        world.position,
        world.process,
        actor=world.facilitator,
        body=world.v1.body + "\n\nX.",
        change_summary="x",
    )
    db.session.commit()
    login_as(world.facilitator)
    url = world.url("/diff?from=1&to=2")
    assert world.position.title in client.get(url).text
    service.update_position(
        world.position,
        world.process,
        actor=world.facilitator,
        title="Een nieuwe titel",
        subject=world.position.subject,
        addressee=world.position.addressee,
        place=world.position.place,
        letter_date=world.position.letter_date,
        reference=world.position.reference,
    )
    db.session.commit()
    assert "Een nieuwe titel" in client.get(url).text
    other = make_process(world.facilitator, [world.vng], title="Een ander traject", active=False)
    db.session.commit()
    elsewhere = f"/processes/{other.slug}/positions/{world.position.id}/diff?from=1&to=2"
    assert client.get(elsewhere).status_code == 404


# --- Safety and speed -------------------------------------------------------------------------

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[klik](javascript:alert(1))",
    "[klik](JaVaScRiPt:alert(1))",
    "[klik](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '<iframe src="https://evil.example"></iframe>',
    "![x](https://evil.example/x.png)",
    "<details open ontoggle=alert(1)>",
    '"><script>alert(1)</script>',
    "<style>body{display:none}</style>",
    "[x](vbscript:msgbox(1))",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
]


class _TagAudit(HTMLParser):
    """Collects what a browser would act on: real tags and attributes, not escaped text."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and not (values.get("src") or "").startswith("/static/"):
            self.problems.append("inline script")
        ours = tag == "svg" and values.get("aria-hidden") == "true"  # our own icons
        if tag in {"iframe", "svg", "math", "style", "img", "object", "embed"} and not ours:
            self.problems.append(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"{tag} {name}")
            if name in {"href", "src", "action", "formaction"} and value:
                scheme = value.strip().lower().split(":", 1)[0]
                if scheme in {"javascript", "vbscript", "data"}:
                    self.problems.append(f"{tag} {name}={value}")


def _assert_clean(html: str) -> None:
    audit = _TagAudit()
    audit.feed(html)
    assert audit.problems == []


def test_xss_payloads_are_neutralised(client, login_as, app):
    w = build_world(body="\n\n".join(XSS_PAYLOADS) + "\n")
    anchor = w.v1.paragraphs[0].anchor
    for payload in XSS_PAYLOADS:
        service.add_comment(
            w.v1, w.process, actor=w.person("vng"), organisation=w.vng, body=payload
        )
    service.propose_amendment(
        w.v1,
        w.process,
        actor=w.person("vng"),
        organisation=w.vng,
        paragraph_anchor=anchor,
        proposed_text="\n\n".join(XSS_PAYLOADS),
        rationale="\n\n".join(XSS_PAYLOADS),
    )
    db.session.commit()
    login_as(w.facilitator)
    for url in ("/versions/1", "/amendments/1", "/amendments", "/versions", "/apply"):
        response = client.get(w.url(url))
        assert response.status_code == 200, url
        _assert_clean(response.text)
    report = client.get(
        f"/processes/{w.process.slug}/positions/rounds/{w.process.rounds[0].id}/disposition"
    )
    _assert_clean(report.text)


def test_version_page_query_count_is_constant(client, login_as, page_queries, app):
    w = build_world()
    login_as(w.facilitator)
    people = [w.person("vng"), w.person("ipo")]
    orgs = [w.vng, w.ipo]
    anchors = [p.anchor for p in w.v1.paragraphs]

    def add(n_comments: int, n_amendments: int) -> None:
        for i in range(n_comments):
            parent = None
            if i % 3 == 2:
                parent = db.session.execute(
                    select(Comment).order_by(Comment.id.desc()).limit(1)
                ).scalar_one()
            service.add_comment(
                w.v1,
                w.process,
                actor=people[i % 2],
                organisation=orgs[i % 2],
                body=f"Reactie {i}",
                paragraph_anchor=anchors[i % len(anchors)] if i % 5 else None,
                parent=parent,
            )
        for i in range(n_amendments):
            service.propose_amendment(
                w.v1,
                w.process,
                actor=people[i % 2],
                organisation=orgs[i % 2],
                paragraph_anchor=anchors[i % len(anchors)],
                proposed_text=f"Voorstel {i}",
                rationale="Reden",
            )
        db.session.commit()

    def measure() -> int:
        return page_queries(client, w.url("/versions/1")).count

    add(3, 1)
    small = measure()
    add(297, 99)
    large = measure()
    assert db.session.execute(select(func.count(Comment.id))).scalar_one() == 300
    assert db.session.execute(select(func.count(Amendment.id))).scalar_one() == 100
    assert large == small, (small, large)
    assert large <= 20


# --- Long discussions: loaded when a paragraph is opened ----------------------------------------


def test_a_version_with_many_comments_sends_paragraph_discussions_when_opened(
    client, login_as, world, app
):
    """Above VERSION_INLINE_COMMENTS a paragraph's discussion is not in the page: opening
    the paragraph asks for it (htmx), and without JavaScript a link opens the page with that
    paragraph's discussion in it. The comments on the whole text stay in the page."""
    app.config["VERSION_INLINE_COMMENTS"] = 1
    first, second = world.v1.paragraphs[1].anchor, world.v1.paragraphs[2].anchor
    bodies = ((first, "Eerste **punt**."), (second, "Tweede punt."), (None, "Algemeen."))
    for anchor, body in bodies:
        service.add_comment(
            world.v1,
            world.process,
            actor=world.person("vng"),
            body=body,
            organisation=world.vng,
            paragraph_anchor=anchor,
        )
    db.session.commit()
    login_as(world.person("ipo", MembershipRole.REPRESENTATIVE))

    page = client.get(world.url("/versions/1")).text
    assert "Eerste <strong>punt</strong>." not in page and "Tweede punt." not in page
    assert "Algemeen." in page
    assert "1 reactie" in page  # the summary still counts them
    loader = world.url(f"/versions/1/discussions/{first}")
    assert f'hx-get="{loader}"' in page
    assert 'hx-trigger="toggle once from:closest details"' in page
    assert f'href="{world.url("/versions/1")}?open={first}#{first}"' in page

    panel = client.get(loader, headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "<html" not in panel.text
    assert "Eerste <strong>punt</strong>." in panel.text and "Tweede punt." not in panel.text
    assert 'class="c-thread"' in panel.text and "Reactie plaatsen" in panel.text
    assert "IPO" in panel.text  # the viewer's own organisation to comment for

    without_js = client.get(loader)
    assert without_js.status_code == 302
    assert without_js.headers["Location"].endswith(f"/versions/1?open={first}#{first}")
    opened = client.get(world.url(f"/versions/1?open={first}")).text
    assert "Eerste <strong>punt</strong>." in opened and "Tweede punt." not in opened

    assert client.get(world.url("/versions/1/discussions/p-nope")).status_code == 404
    login_as(world.person("x", MembershipRole.REPRESENTATIVE))
    assert client.get(loader, headers={"HX-Request": "true"}).status_code == 404


def test_links_to_a_comment_open_its_paragraph(client, login_as, world, app):
    """After posting without JavaScript, and from a comment's history, the link names the
    paragraph to open: its discussion may be one that is sent only when opened."""
    app.config["VERSION_INLINE_COMMENTS"] = 0
    anchor = world.v1.paragraphs[2].anchor
    login_as(world.person("vng"))
    response = client.post(
        world.url("/versions/1/comments"),
        data={"organisation_id": world.vng.id, "paragraph_anchor": anchor, "body": "Mee eens."},
    )
    comment = db.session.execute(select(Comment)).scalar_one()
    assert response.headers["Location"].endswith(f"/versions/1?open={anchor}#comment-{comment.id}")
    page = client.get(response.headers["Location"]).text
    assert f'id="comment-{comment.id}"' in page and "Mee eens." in page
