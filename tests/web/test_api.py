"""The REST API (issue 18): tokens, reading, writing through the same gates, problems.

A script that holds only a token reads a process end to end and casts a stance for its own
organisation, and is refused (problem+json, nothing changed) for another organisation."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from openapi_spec_validator import validate
from sqlalchemy import func, select

from consensus.extensions import db
from consensus.models import (
    ApiToken,
    AuditEvent,
    Comment,
    RoundType,
    Stance,
    Visibility,
    utcnow,
)
from consensus.services import processes
from tests.api_support import API, TokenClient, bearer, make_token
from tests.endorsement_support import make_world
from tests.factories import make_user
from tests.helpers import give_session

PROBLEM = "application/problem+json"


def _count(model) -> int:  # type: ignore[no-untyped-def]
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def _problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["type"]
    return body


def test_the_openapi_document_is_valid_openapi_3(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    assert response.headers["API-Version"] == "1.0.0"
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    validate(spec)
    # NL GOV: no trailing slashes, plural nouns for collections.
    for path in spec["paths"]:
        assert not path.endswith("/"), path
    assert f"{API}/processes" in spec["paths"]
    # Every error is documented as problem+json.
    default = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert list(default["content"]) == [PROBLEM]


def test_the_reference_page_lists_every_operation(client):
    page = client.get("/api").get_data(as_text=True)
    spec = client.get(f"{API}/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for method in ("get", "post"):
            if method in item:
                assert f"{method.upper()} {path}" in page


def test_unknown_addresses_and_methods_answer_as_problems(client):
    body = _problem(client.get(f"{API}/nothing-here"), 404)
    assert body["instance"] == f"{API}/nothing-here"
    assert body["title"] == "Niet gevonden"  # Dutch first, as the pages
    response = client.delete(f"{API}/processes")
    _problem(response, 405)
    assert response.headers["API-Version"] == "1.0.0"


def test_a_bad_or_revoked_or_expired_token_is_refused(app, client):
    user = make_user("ria@example.org")
    secret = make_token(user)
    assert client.get(f"{API}/me", headers=bearer(secret)).status_code == 200
    _problem(client.get(f"{API}/me", headers=bearer("cns_wrong")), 401)
    _problem(client.get(f"{API}/me", headers={"Authorization": "Basic eDp5"}), 401)
    token = db.session.execute(select(ApiToken)).scalar_one()
    token.expires_at = utcnow() - timedelta(seconds=1)
    token.created_at = token.expires_at - timedelta(days=1)
    db.session.commit()
    body = _problem(client.get(f"{API}/me", headers=bearer(secret)), 401)
    assert "verlopen" in body["detail"]


def test_the_secret_is_stored_hashed_and_last_use_recorded(app, client):
    user = make_user("sem@example.org")
    secret = make_token(user, scopes="read")
    token = db.session.execute(select(ApiToken)).scalar_one()
    assert secret not in (token.token_hash, token.prefix)
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.last_used_at is None
    client.get(f"{API}/me", headers=bearer(secret))
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at is not None


def _endorsement_world():  # type: ignore[no-untyped-def]
    world = make_world(2, round_types=(RoundType.ENDORSEMENT,))
    return world


def test_a_script_with_only_a_token_reads_a_process_and_casts_its_own_stance(app, client):
    world = _endorsement_world()
    mine, other = world.orgs
    representative = world.reps[mine.id]
    api = TokenClient(client, make_token(representative))
    slug = world.process.slug

    me = api.get("/me").get_json()
    assert [m["organisation"]["slug"] for m in me["memberships"]] == [mine.slug]
    assert me["memberships"][0]["holdsMandate"] is True

    listed = api.get("/processes").get_json()
    assert [p["slug"] for p in listed["items"]] == [slug]
    assert listed["_links"]["self"]["href"].startswith(f"{API}/processes?")
    process = api.get(f"/processes/{slug}").get_json()
    assert {p["slug"] for p in process["participants"]} == {mine.slug, other.slug}
    assert process["rule"]["rule"] == "consensus"
    round_ = next(r for r in process["rounds"] if r["type"] == "endorsement")
    assert round_["state"] == "open"
    position_id = process["positions"][0]["id"]
    position = api.get(f"/processes/{slug}/positions/{position_id}").get_json()
    number = position["versions"][-1]["number"]
    version = api.get(f"/processes/{slug}/positions/{position_id}/versions/{number}").get_json()
    raw = api.get(f"/processes/{slug}/positions/{position_id}/versions/{number}/markdown")
    assert hashlib.sha256(raw.data).hexdigest() == version["sha256"]
    assert raw.data.decode() == version["text"]

    before_events = _count(AuditEvent)
    cast = api.post(
        f"/processes/{slug}/rounds/{round_['id']}/stances",
        json={"organisation": mine.slug, "kind": "endorse"},
    )
    assert cast.status_code == 201, cast.get_data(as_text=True)
    assert cast.get_json()["organisation"] == mine.slug
    assert cast.headers["API-Version"] == "1.0.0"
    # The same audit event as the page writes.
    actions = (
        db.session.execute(select(AuditEvent.action).where(AuditEvent.seq > before_events))
        .scalars()
        .all()
    )
    assert actions == ["stance.cast"]

    stances = api.get(f"/processes/{slug}/rounds/{round_['id']}/stances").get_json()
    assert [(s["organisation"], s["kind"]) for s in stances["stances"]] == [(mine.slug, "endorse")]
    assert stances["tally"]["endorsed"] == 1


def test_a_stance_for_an_organisation_one_does_not_represent_changes_nothing(app, client):
    world = _endorsement_world()
    mine, other = world.orgs
    api = TokenClient(client, make_token(world.reps[mine.id]))
    round_id = world.round.id
    before = (_count(Stance), _count(AuditEvent))
    response = api.post(
        f"/processes/{world.process.slug}/rounds/{round_id}/stances",
        json={"organisation": other.slug, "kind": "object", "text": "Nee."},
    )
    body = _problem(response, 403)
    assert body["detail"] == "U bent geen lid van deze organisatie."  # the page's own words
    assert (_count(Stance), _count(AuditEvent)) == before
    # An official of one's own organisation has no mandate either: refused, with its reason.
    official_api = TokenClient(client, make_token(world.officials[mine.id]))
    before = (_count(Stance), _count(AuditEvent))
    body = _problem(
        official_api.post(
            f"/processes/{world.process.slug}/rounds/{round_id}/stances",
            json={"organisation": mine.slug, "kind": "endorse"},
        ),
        403,
    )
    assert "mandaat" in body["detail"]
    assert (_count(Stance), _count(AuditEvent)) == before


def test_bad_input_is_a_problem_naming_the_field_and_changes_nothing(app, client):
    world = _endorsement_world()
    mine = world.orgs[0]
    api = TokenClient(client, make_token(world.reps[mine.id]))
    url = f"/processes/{world.process.slug}/rounds/{world.round.id}/stances"
    before = _count(Stance)
    body = _problem(api.post(url, json={"organisation": mine.slug, "kind": "maybe"}), 422)
    assert [p["name"] for p in body["invalidParams"]] == ["kind"]
    body = _problem(api.post(url, json={"organisation": mine.slug, "kind": "object"}), 422)
    assert body["detail"]  # the service's own message: an objection needs a reason
    _problem(api.post(url, json={"organisation": "nobody", "kind": "endorse"}), 422)
    _problem(api.post(url, data="not json", content_type="application/json"), 400)
    # NUL: no database stores it, and none is asked for it (PostgreSQL would refuse).
    body = _problem(
        api.post(url, json={"organisation": mine.slug, "kind": "object", "text": "a\x00b"}), 422
    )
    assert [p["name"] for p in body["invalidParams"]] == ["text"]
    _problem(api.post(url, json={"organisation": "v\x00ng", "kind": "endorse"}), 422)
    _problem(api.get("/processes/a%00b"), 404)
    assert _count(Stance) == before


def test_field_problems_speak_the_readers_language(app, client):
    """Field problems come from marshmallow in English; the API says them as the pages
    would, in Dutch unless the request asks for English (Accept-Language)."""
    world = _endorsement_world()
    mine = world.orgs[0]
    api = TokenClient(client, make_token(world.reps[mine.id]))
    url = f"/processes/{world.process.slug}/rounds/{world.round.id}/stances"

    def reasons(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
        body = _problem(response, 422)
        return {p["name"]: p["reason"] for p in body["invalidParams"]}

    dutch = reasons(api.post(url, json={"kind": "maybe"}))
    assert dutch["organisation"] == "Dit veld is vereist."  # as the forms on the pages say
    assert dutch["kind"].startswith("Kies een van: ")
    english = api.client.post(
        f"{API}{url}",
        json={"kind": "maybe"},
        headers={**api.headers, "Accept-Language": "en-GB,en;q=0.8"},
    )
    assert reasons(english)["organisation"] == "This field is required."
    anonymous = client.get(f"{API}/processes?pageSize=1000", headers={"Accept-Language": "en"})
    assert "Give a number from 1 to 100." in anonymous.get_data(as_text=True)
    assert _count(Stance) == 0


def _publish(world) -> None:  # type: ignore[no-untyped-def]
    world.process.visibility = Visibility.PUBLISHED
    processes.schedule_publication(world.process, actor=world.facilitator, at=None)
    db.session.commit()
    assert world.process.is_published


def test_a_cookie_session_cannot_write_through_the_api(app, client):
    world = _endorsement_world()
    mine = world.orgs[0]
    give_session(app, client, world.reps[mine.id])
    url = f"{API}/processes/{world.process.slug}/rounds/{world.round.id}/stances"
    # Not published: through the API the cookie is nobody, and the process is not there.
    _problem(client.post(url, json={"organisation": mine.slug, "kind": "endorse"}), 404)
    _problem(client.get(f"{API}/processes/{world.process.slug}"), 404)
    _publish(world)
    # Published: readable, but writing needs a token (the cookie does not count).
    assert client.get(f"{API}/processes/{world.process.slug}").status_code == 200
    _problem(client.post(url, json={"organisation": mine.slug, "kind": "endorse"}), 401)
    assert _count(Stance) == 0
    # The same person with a token may.
    response = client.post(
        url,
        json={"organisation": mine.slug, "kind": "endorse"},
        headers=bearer(make_token(world.reps[mine.id])),
    )
    assert response.status_code == 201
    assert _count(Stance) == 1


def test_a_read_token_cannot_write(app, client):
    world = _endorsement_world()
    mine = world.orgs[0]
    api = TokenClient(client, make_token(world.reps[mine.id], scopes="read"))
    body = _problem(
        api.post(
            f"/processes/{world.process.slug}/rounds/{world.round.id}/stances",
            json={"organisation": mine.slug, "kind": "endorse"},
        ),
        403,
    )
    assert "alleen lezen" in body["detail"]
    assert _count(Stance) == 0


def test_published_processes_are_readable_without_a_token(app, client):
    world = _endorsement_world()
    slug = world.process.slug
    _problem(client.get(f"{API}/processes/{slug}"), 404)
    assert client.get(f"{API}/processes").get_json()["items"] == []
    _problem(client.get(f"{API}/processes/{slug}/open-data"), 404)
    _publish(world)
    assert client.get(f"{API}/processes/{slug}").status_code == 200
    assert [p["slug"] for p in client.get(f"{API}/processes").get_json()["items"]] == [slug]
    assert client.get(f"{API}/processes/{slug}/open-data").status_code == 200
    # Reading is open; writing still needs a token (and the mandate).
    _problem(
        client.post(
            f"{API}/processes/{slug}/rounds/{world.round.id}/stances",
            json={"organisation": world.orgs[0].slug, "kind": "endorse"},
        ),
        401,
    )


def test_pages_of_a_list_link_to_each_other(app, client):
    world = make_world(1, round_types=(RoundType.CONSULTATION,))
    official = world.officials[world.orgs[0].id]
    api = TokenClient(client, make_token(official))
    process = api.get(f"/processes/{world.process.slug}").get_json()
    position_id = process["positions"][0]["id"]
    base = f"/processes/{world.process.slug}/positions/{position_id}/versions/1/comments"
    for n in range(5):
        response = api.post(
            base, json={"body": f"Opmerking {n}", "organisation": world.orgs[0].slug}
        )
        assert response.status_code == 201, response.get_data(as_text=True)
    assert _count(Comment) == 5
    first = api.get(base, query_string={"pageSize": 2})
    page = first.get_json()
    assert (page["total"], page["page"], len(page["items"])) == (5, 1, 2)
    assert "prev" not in page["_links"]
    assert 'rel="next"' in first.headers["Link"]
    last = api.client.get(page["_links"]["last"]["href"], headers=api.headers).get_json()
    assert last["page"] == 3 and len(last["items"]) == 1 and "next" not in last["_links"]
    _problem(api.get(base, query_string={"pageSize": 1000}), 422)


def test_public_readers_see_organisations_not_the_names_of_officials(app, client):
    """A published process is open to everyone, as on the public pages: who commented is
    shown as the organisation and role; the person's name only to those who see the process
    in the pages (officials' names are personal data the publication does not need)."""
    world = make_world(1, round_types=(RoundType.CONSULTATION,))
    official = world.officials[world.orgs[0].id]
    api = TokenClient(client, make_token(official))
    position_id = api.get(f"/processes/{world.process.slug}").get_json()["positions"][0]["id"]
    base = f"/processes/{world.process.slug}/positions/{position_id}/versions/1/comments"
    posted = api.post(base, json={"body": "Graag scherper.", "organisation": world.orgs[0].slug})
    assert posted.status_code == 201, posted.get_data(as_text=True)
    _publish(world)

    member_view = api.get(base).get_json()["items"][0]
    assert member_view["author"] == official.display_name
    public_view = client.get(f"{API}{base}").get_json()["items"][0]
    assert public_view["author"] is None
    assert public_view["organisation"] == world.orgs[0].slug
    assert public_view["body"] == "Graag scherper."
    public_process = client.get(f"{API}/processes/{world.process.slug}").get_json()
    assert public_process["facilitators"] == []
    assert official.display_name not in client.get(f"{API}{base}").get_data(as_text=True)


def test_rate_limits_count_per_token(app, client):
    app.config["API_RATE_LIMIT"] = "3/minute"
    one, two = make_user("een@example.org"), make_user("twee@example.org")
    first, second = make_token(one), make_token(two)
    for _ in range(3):
        assert client.get(f"{API}/me", headers=bearer(first)).status_code == 200
    _problem(client.get(f"{API}/me", headers=bearer(first)), 429)
    assert client.get(f"{API}/me", headers=bearer(second)).status_code == 200


@pytest.mark.parametrize("scopes", ["read", "read write"])
def test_me_says_what_the_token_may_do(app, client, scopes):
    user = make_user("tess@example.org")
    body = client.get(f"{API}/me", headers=bearer(make_token(user, scopes=scopes))).get_json()
    assert body["scopes"] == scopes.split()
    _problem(client.get(f"{API}/me"), 401)
