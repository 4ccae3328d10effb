"""Conditional GETs of the API (issue 23): validators from the audit log's head.

A script that polls the API gets a weak ETag with every answer; asking again with
If-None-Match answers 304 (no body) until something changes, and then the new data at
once. Without a token the answer (published processes only) is the same for everyone, so a
shared cache may keep it; with a token it is for that client alone, and one token's
validator never stands for another's answer."""

from __future__ import annotations

from consensus.extensions import db
from consensus.models import StanceKind
from consensus.services import endorsements as endorsement_service
from tests.api_support import API, bearer, make_token
from tests.web.test_api import _endorsement_world, _publish


def test_an_anonymous_reader_of_a_published_process_gets_304_until_it_changes(app, client):
    world = _endorsement_world()
    _publish(world)
    path = f"{API}/processes/{world.process.slug}/rounds/{world.round.id}/stances"
    first = client.get(path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    assert first.headers["Last-Modified"]
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    assert {"Authorization", "Accept-Language"} <= set(first.vary)

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    # Another language is another answer.
    english = client.get(path, headers={"If-None-Match": etag, "Accept-Language": "en"})
    assert english.status_code == 200

    # A stance is cast: the same validator no longer holds, and the new stance is there.
    org = world.orgs[0]
    endorsement_service.cast_stance(
        world.round, actor=world.reps[org.id], organisation=org, kind=StanceKind.ENDORSE, text=""
    )
    db.session.commit()
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.get_data() != first.get_data()  # the new stance is in the answer


def test_a_token_s_validator_holds_for_that_token_only(app, client):
    world = _endorsement_world()
    org = world.orgs[0]
    mine, theirs = make_token(world.reps[org.id]), make_token(world.reps[world.orgs[1].id])
    path = f"{API}/processes/{world.process.slug}"
    first = client.get(path, headers=bearer(mine))
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]
    assert client.get(path, headers={**bearer(mine), "If-None-Match": etag}).status_code == 304
    # The other token (other rights) gets its own answer, and so does a reader without one
    # (the process is not published: not found, and no validator on a problem).
    other = client.get(path, headers={**bearer(theirs), "If-None-Match": etag})
    assert other.status_code == 200 and other.headers["ETag"] != etag
    anonymous = client.get(path, headers={"If-None-Match": etag})
    assert anonymous.status_code == 404 and "ETag" not in anonymous.headers


def test_the_markdown_keeps_its_content_hash_as_etag(app, client):
    world = _endorsement_world()
    token = make_token(world.reps[world.orgs[0].id])
    process = client.get(f"{API}/processes/{world.process.slug}", headers=bearer(token))
    position_id = process.get_json()["positions"][0]["id"]
    base = f"{API}/processes/{world.process.slug}/positions/{position_id}"
    version = client.get(f"{base}/versions/1", headers=bearer(token)).get_json()
    raw = client.get(f"{base}/versions/1/markdown", headers=bearer(token))
    assert raw.status_code == 200
    assert raw.headers["ETag"] == f'"{version["sha256"]}"'
    assert raw.headers["Cache-Control"] == "private, no-cache"
