"""The API's kept answers (issue 23, consensus/web/pages/api.py) cannot leak and are never
stale.

A process, the list of processes, a round's stances and a disposition report are kept as
their encoded JSON under a key of the reader's facts. For every kind of caller (anonymous,
representatives of a participant and of a non-participant, an official who substitutes for
the representative, the facilitator, an administrator) each answer is the same byte for
byte, headers too, with a cold cache as after every other caller filled it; a change through
the API or the pages shows in the next answer; and a key that forgets a fact is caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import (
    MembershipRole,
    Position,
    Process,
    RoundType,
    StanceKind,
    Visibility,
    utcnow,
)
from consensus.services import endorsements as endorsement_service
from consensus.services import positions as position_service
from consensus.services import processes as process_service
from consensus.web.pages import CachedValue, declare_key
from consensus.web.pages import api as api_pages
from tests.api_support import API, bearer, make_token
from tests.endorsement_support import make_world, open_now
from tests.factories import make_membership, make_organisation, make_user
from tests.helpers import give_session

# Every header is compared too (the test client adds no Date).
CALLERS = (
    "anonymous",
    "representative",
    "substitute",
    "other_participant",
    "non_participant",
    "facilitator",
    "admin",
)


@dataclass
class CacheWorld:
    slug: str
    consultation_id: int
    endorsement_id: int
    tokens: dict[str, str | None]


def _world(*, hide_tally: bool) -> CacheWorld:
    """Three organisations in a process whose consultation round (with a comment and an
    amendment) has closed and whose endorsement round is open, with two stances cast; an
    outsider's representative, an administrator and a substitute (VNG's official, who holds
    A's mandate for a week)."""
    world = make_world(
        3,
        round_types=(RoundType.CONSULTATION, RoundType.ENDORSEMENT),
        hide_tally_until_closed=hide_tally,
    )
    a, b, _c = world.orgs
    consultation, endorsement = world.process.rounds[0], world.process.rounds[1]
    position = db.session.execute(
        select(Position).where(Position.process_id == world.process.id)
    ).scalar_one()
    version = position.versions[0]
    position_service.add_comment(
        version, world.process, actor=world.officials[a.id], body="Eens.", organisation=a
    )
    position_service.propose_amendment(
        version,
        world.process,
        actor=world.reps[b.id],
        organisation=b,
        proposed_text="Een betere alinea.",
        rationale="Duidelijker.",
        paragraph_anchor=version.paragraphs[0].anchor,
    )
    db.session.commit()
    process_service.close_round(consultation, actor=world.facilitator)
    db.session.commit()
    open_now(endorsement, world.facilitator)
    for org, kind in ((a, StanceKind.ENDORSE), (b, StanceKind.OBJECT)):
        endorsement_service.cast_stance(
            endorsement, actor=world.reps[org.id], organisation=org, kind=kind, text="Zo."
        )
    now = utcnow()
    endorsement_service.create_delegation(
        actor=world.reps[a.id],
        organisation=a,
        delegate=world.officials[a.id],
        valid_from=now - timedelta(minutes=1),
        valid_until=now + timedelta(days=7),
    )
    outsider = make_organisation(name="Buiten")
    stranger = make_user(name="Buitenstaander")
    make_membership(stranger, outsider, MembershipRole.REPRESENTATIVE)
    admin = make_user(name="Beheerder", is_admin=True)
    db.session.commit()
    users = {
        "representative": world.reps[a.id],
        "substitute": world.officials[a.id],
        "other_participant": world.reps[b.id],
        "non_participant": stranger,
        "facilitator": world.facilitator,
        "admin": admin,
    }
    tokens: dict[str, str | None] = {"anonymous": None}
    tokens.update({role: make_token(user) for role, user in users.items()})
    return CacheWorld(world.process.slug, consultation.id, endorsement.id, tokens)


def _publish(slug: str) -> None:
    process = db.session.execute(select(Process).where(Process.slug == slug)).scalar_one()
    process.visibility = Visibility.PUBLISHED
    process_service.schedule_publication(process, actor=process.facilitators[0].user, at=None)
    db.session.commit()
    assert process.is_published


def _paths(world: CacheWorld) -> list[str]:
    process = f"{API}/processes/{world.slug}"
    return [
        f"{API}/processes",
        f"{API}/processes?page=1&pageSize=1",
        process,
        f"{process}/rounds/{world.endorsement_id}/stances",
        f"{process}/rounds/{world.consultation_id}/disposition",
    ]


def _get(client: FlaskClient, token: str | None, path: str, language: str = "nl") -> str:
    headers = {"Accept-Language": language, **(bearer(token) if token else {})}
    response = client.get(path, headers=headers)
    listed = "\n".join(f"{name}: {value}" for name, value in sorted(response.headers.items()))
    return f"{response.status_code}\n{listed}\n\n{response.get_data(as_text=True)}"


def _clear(app: Flask) -> None:
    app.extensions["consensus.web.fragments"].clear()


def _differences(app: Flask, client: FlaskClient, world: CacheWorld) -> list[str]:
    """Per path: each caller alone with a cold cache; then every caller in turn (filling
    the cache), then every caller again (each after all the others)."""
    found = []
    for path in _paths(world):
        cold = {}
        for role, token in world.tokens.items():
            _clear(app)
            cold[role] = _get(client, token, path)
        _clear(app)
        for token in world.tokens.values():
            _get(client, token, path)
        for role, token in world.tokens.items():
            warm = _get(client, token, path)
            if warm != cold[role]:
                found.append(f"GET {path} as {role}:\n  cold: {cold[role]}\n  warm: {warm}")
    return found


@pytest.mark.parametrize("hide_tally", [True, False], ids=["tally-hidden", "tally-shown"])
@pytest.mark.parametrize("published", [False, True], ids=["participants-only", "published"])
def test_every_kept_answer_is_the_same_cold_and_warm_for_every_caller(
    app, client, hide_tally, published
):
    world = _world(hide_tally=hide_tally)
    if published:
        _publish(world.slug)
    cache = app.extensions["consensus.web.fragments"]
    hits = cache.hits
    found = _differences(app, client, world)
    assert not found, "\n".join(found)
    assert cache.hits > hits + 30, "the warm answers came from the cache"
    # What the callers were answered: the rights differ, so the answers do.
    stances = f"{API}/processes/{world.slug}/rounds/{world.endorsement_id}/stances"
    answers = {role: _get(client, token, stances) for role, token in world.tokens.items()}
    assert answers["anonymous"].startswith("200" if published else "404")
    assert answers["non_participant"].startswith("200" if published else "404")
    if hide_tally and not published:
        # Each organisation sees its own stance only: A's representative and substitute the
        # same one, B's representative B's, the facilitator every stance.
        assert answers["representative"].split("\n\n")[1] == answers["substitute"].split("\n\n")[1]
        assert answers["representative"] != answers["other_participant"]
        assert '"complete":false' in answers["representative"].replace(" ", "")
        # The facilitator speaks for no organisation: no stance until the round closes.
        assert '"stances":[]' in answers["facilitator"].replace(" ", "")


def _json(client: FlaskClient, token: str | None, path: str) -> dict:
    response = client.get(path, headers=bearer(token) if token else {})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_a_stance_cast_through_the_api_or_the_page_shows_in_the_next_answer(app, client):
    world = make_world(3)
    a, b, c = world.orgs
    token = make_token(world.reps[a.id])
    path = f"{API}/processes/{world.process.slug}/rounds/{world.round.id}/stances"
    assert _json(client, token, path)["stances"] == []
    assert _json(client, token, path)["stances"] == []  # kept
    cast = client.post(
        path, json={"organisation": a.slug, "kind": "endorse"}, headers=bearer(token)
    )
    assert cast.status_code == 201, cast.get_data(as_text=True)
    after_api = _json(client, token, path)
    assert [(s["organisation"], s["kind"]) for s in after_api["stances"]] == [(a.slug, "endorse")]
    assert after_api["tally"]["endorsed"] == 1
    # Through the page (a session cookie): B's representative objects.
    page = app.test_client()
    give_session(app, page, world.reps[b.id])
    answer = page.post(
        f"/processes/{world.process.slug}/rounds/{world.round.id}/stances",
        data={"organisation_id": str(b.id), "kind": "object", "text": "Nee."},
    )
    assert answer.status_code in (200, 302, 303), answer.status_code
    after_page = _json(client, token, path)
    assert {(s["organisation"], s["kind"]) for s in after_page["stances"]} == {
        (a.slug, "endorse"),
        (b.slug, "object"),
    }
    assert after_page["tally"]["objected"] == 1
    # The process's rounds follow their state too: the facilitator closes the round.
    process_path = f"{API}/processes/{world.process.slug}"
    assert _json(client, token, process_path)["rounds"][0]["state"] == "open"
    process_service.close_round(world.round, actor=world.facilitator)
    db.session.commit()
    assert _json(client, token, process_path)["rounds"][0]["state"] == "closed"
    assert c.slug not in {s["organisation"] for s in _json(client, token, path)["stances"]}


def test_the_list_of_processes_follows_a_new_participant_and_a_publication(app, client):
    world = make_world(2, open_first=False)
    outsider = make_organisation(name="Buiten")
    stranger = make_user(name="Buitenstaander")
    make_membership(stranger, outsider, MembershipRole.REPRESENTATIVE)
    db.session.commit()
    token = make_token(stranger)
    listed = f"{API}/processes"
    assert _json(client, token, listed)["total"] == 0
    assert _json(client, None, listed)["total"] == 0
    process_service.add_participant(
        world.process, actor=world.facilitator, organisation=outsider, reason="Sluit aan."
    )
    db.session.commit()
    assert [p["slug"] for p in _json(client, token, listed)["items"]] == [world.process.slug]
    assert _json(client, None, listed)["total"] == 0  # anonymous: still nothing
    _publish(world.process.slug)
    assert _json(client, None, listed)["total"] == 1


def test_two_tokens_with_different_rights_never_get_each_other_s_answer(app, client):
    """The process hides the tally until the round closes: A's representative sees A's
    stance only, B's representative B's, the facilitator none; once it closed, everyone
    both with the tally. The process shows the facilitators' names to its participants,
    not to a public reader."""
    world = make_world(2, hide_tally_until_closed=True)
    a, b = world.orgs
    for org in (a, b):
        endorsement_service.cast_stance(
            world.round,
            actor=world.reps[org.id],
            organisation=org,
            kind=StanceKind.ENDORSE,
            text="",
        )
    db.session.commit()
    path = f"{API}/processes/{world.process.slug}/rounds/{world.round.id}/stances"
    tokens = {
        "a": make_token(world.reps[a.id]),
        "b": make_token(world.reps[b.id]),
        "facilitator": make_token(world.facilitator),
    }
    seen = {who: _json(client, token, path) for who, token in tokens.items()}
    seen_again = {who: _json(client, token, path) for who, token in tokens.items()}
    assert seen == seen_again
    assert [s["organisation"] for s in seen["a"]["stances"]] == [a.slug]
    assert [s["organisation"] for s in seen["b"]["stances"]] == [b.slug]
    assert seen["a"]["tally"] is None
    assert seen["facilitator"]["stances"] == []
    process_service.close_round(world.round, actor=world.facilitator)
    db.session.commit()
    for token in tokens.values():
        closed = _json(client, token, path)
        assert {s["organisation"] for s in closed["stances"]} == {a.slug, b.slug}
        assert closed["tally"]["endorsed"] == 2

    _publish(world.process.slug)
    process_path = f"{API}/processes/{world.process.slug}"
    participant = _json(client, tokens["a"], process_path)
    public = _json(client, None, process_path)
    assert participant["facilitators"] == ["Facilitator"]
    assert public["facilitators"] == []
    # Again, the other way round (the public reader first, with a cold cache).
    app.extensions["consensus.web.fragments"].clear()
    assert _json(client, None, process_path)["facilitators"] == []
    assert _json(client, tokens["a"], process_path)["facilitators"] == ["Facilitator"]


def test_a_key_without_a_viewer_fact_is_caught(app, client, monkeypatch):
    """The comparison above can fail: stances kept by round alone (the reader's sight left
    out) serve the first reader's stances to the next."""

    @declare_key
    @dataclass(frozen=True)
    class RoundOnly:
        round_id: int
        complete: bool
        own_organisation_ids: frozenset[int] | None

        def __hash__(self) -> int:  # the sight left out: the fact the key forgets
            return hash(self.round_id)

        def __eq__(self, other: object) -> bool:
            return isinstance(other, RoundOnly) and other.round_id == self.round_id

    from consensus.api import endorsements as api_endorsements

    def forgetful(process, round_):  # type: ignore[no-untyped-def]
        sight = original(process, round_)
        return RoundOnly(sight.round_id, sight.complete, sight.own_organisation_ids)

    original = api_endorsements.stances_sight
    monkeypatch.setattr(api_endorsements, "stances_sight", forgetful)
    monkeypatch.setattr(api_pages, "STANCES", CachedValue("api-stances", RoundOnly))
    world = _world(hide_tally=True)
    found = _differences(app, client, world)
    assert any("/stances as" in problem for problem in found), found


def test_no_refusal_is_kept(app, client):
    """A reader who may not see the process gets 404 however warm the cache is."""
    world = _world(hide_tally=False)
    for path in _paths(world)[2:]:
        assert _get(client, world.tokens["facilitator"], path).startswith("200")
        assert _get(client, world.tokens["non_participant"], path).startswith("404")
        assert _get(client, None, path).startswith("404")
