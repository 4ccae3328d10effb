"""Public pages behind a shared cache (issue 23): no session for readers who are not logged
in, a language switch that works without one, Cache-Control, and validators from the audit
log's head that answer conditional GETs with 304."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from consensus.extensions import db
from consensus.models import StanceKind
from consensus.services import endorsements as service
from consensus.services import processes
from tests.endorsement_support import make_world
from tests.helpers import give_session


def _published_world():
    w = make_world(3)
    a = w.orgs[0]
    service.cast_stance(w.round, actor=w.reps[a.id], organisation=a, kind=StanceKind.ENDORSE)
    db.session.commit()
    processes.close_round(w.round, actor=w.facilitator)
    processes.schedule_publication(w.process, actor=w.facilitator, at=None)
    db.session.commit()
    return w


def _public_paths(slug: str) -> list[str]:
    return [
        "/public/",
        f"/public/{slug}",
        f"/public/{slug}/board.jsonl",
        f"/public/{slug}/rule.json",
    ]


def test_anonymous_readers_get_no_session_and_a_cacheable_page(app: Flask) -> None:
    app.config["PUBLIC_CACHE_SECONDS"] = 90
    w = _published_world()
    for path in _public_paths(w.process.slug):
        client = app.test_client()
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "Set-Cookie" not in answer.headers, (path, answer.headers.get("Set-Cookie"))
        assert answer.headers["Cache-Control"] == "public, max-age=90", path
        assert answer.headers["ETag"].startswith('W/"'), path
        assert answer.headers["Last-Modified"].endswith(" GMT"), path
    page = app.test_client().get(f"/public/{w.process.slug}").text
    assert 'name="csrf_token"' not in page
    assert 'method="get" action="/language"' in page


def test_a_kept_public_page_is_the_rendered_page_as_its_utf8_bytes(app: Flask) -> None:
    """The whole page for readers who are not logged in is kept as the bytes it is sent as
    (encoded once, not on every request), and a reader from the cache gets exactly the
    page as rendered — characters outside Latin-1 included."""
    w = _published_world()
    cache = app.extensions["consensus.web.fragments"]
    for path in (f"/public/{w.process.slug}", "/public/", "/public/?page=1"):
        cache.clear()
        first = app.test_client().get(path)  # rendered and kept
        kept = [
            value
            for key, (value, _size) in cache._items.items()
            if isinstance(key, tuple) and str(key[0]).startswith("page:public-")
        ]
        assert len(kept) == 1, path
        assert isinstance(kept[0], bytes), (path, type(kept[0]))
        assert kept[0] == first.data, path
        assert any(ord(ch) > 255 for ch in first.text), path  # beyond Latin-1
        second = app.test_client().get(path)  # from the cache
        assert second.status_code == 200, path
        assert second.data == first.data, path
        assert second.headers["Content-Type"] == "text/html; charset=utf-8", path
        assert second.headers["Content-Length"] == str(len(first.data)), path


def test_conditional_gets_answer_304_until_something_changes(app: Flask) -> None:
    w = _published_world()
    path = f"/public/{w.process.slug}"
    client = app.test_client()
    first = client.get(path)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"].startswith("public, max-age=")
    since = client.get(path, headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    # Another page has another validator.
    assert client.get("/public/", headers={"If-None-Match": etag}).status_code == 200

    # Anything recorded moves the audit head: the old validator no longer holds.
    other = make_world(2)
    processes.close_round(other.round, actor=other.facilitator)
    db.session.commit()
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert w.process.title in changed.text


def test_the_language_switch_works_without_a_session(app: Flask) -> None:
    w = _published_world()
    path = f"/public/{w.process.slug}"
    client = app.test_client()
    dutch = client.get(path)
    assert 'lang="nl"' in dutch.text

    switched = client.get(f"/language?locale=en&next={path}")
    assert switched.status_code == 302 and switched.headers["Location"].endswith(path)
    cookies = switched.headers.getlist("Set-Cookie")
    assert len(cookies) == 1 and cookies[0].startswith("consensus_locale=en")

    english = client.get(path)
    assert english.status_code == 200 and 'lang="en"' in english.text
    assert "Set-Cookie" not in english.headers
    # The English page has its own validator: a cache cannot answer one with the other.
    assert english.headers["ETag"] != dutch.headers["ETag"]
    assert client.get(path, headers={"If-None-Match": dutch.headers["ETag"]}).status_code == 200

    assert client.get("/language?locale=xx&next=/").status_code == 400
    outside = client.get("/language?locale=nl&next=//evil.example")
    assert "evil.example" not in outside.headers["Location"]


def test_logged_in_readers_are_never_shared(app: Flask) -> None:
    w = _published_world()
    client = app.test_client()
    give_session(app, client, w.facilitator)
    answer = client.get(f"/public/{w.process.slug}")
    assert answer.status_code == 200
    assert "public" not in answer.headers["Cache-Control"]
    assert "ETag" not in answer.headers
    # Their language switch is still the POST form with its token.
    assert 'method="post" action="/language"' in answer.text


def test_the_transparency_page_is_shared_and_a_new_checkpoint_is_never_answered_304(
    app: Flask,
) -> None:
    """The transparency page is public too; its latest checkpoint is signed without an audit
    event, so its validators carry the checkpoint as well as the log's head."""
    from consensus.audit import checkpoints

    app.config["PUBLIC_CACHE_SECONDS"] = 90
    _published_world()
    checkpoints.init_key()
    old = checkpoints.make_checkpoint()
    db.session.commit()
    client = app.test_client()
    first = client.get("/transparency")
    assert first.status_code == 200 and old.root_hash.hex() in first.text
    assert "Set-Cookie" not in first.headers
    assert first.headers["Cache-Control"] == "public, max-age=90"
    assert 'name="csrf_token"' not in first.text
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert client.get("/transparency", headers={"If-None-Match": etag}).status_code == 304

    # A checkpoint a second later, over the same log (no event recorded in between).
    new = checkpoints.make_checkpoint(reuse_unchanged=False)
    new.created_at = old.created_at + timedelta(seconds=1)
    db.session.commit()
    assert new.id != old.id
    by_tag = client.get("/transparency", headers={"If-None-Match": etag})
    assert by_tag.status_code == 200 and by_tag.headers["ETag"] != etag
    by_date = client.get("/transparency", headers={"If-Modified-Since": modified})
    assert by_date.status_code == 200 and new.root_hash.hex() in by_date.text
    assert by_date.headers["Last-Modified"] != modified

    # A logged-in reader is never shared.
    w = make_world(1)
    person = app.test_client()
    give_session(app, person, w.reps[w.orgs[0].id])
    own = person.get("/transparency")
    assert own.status_code == 200 and own.headers["Cache-Control"] == "no-store"
    assert new.root_hash.hex() in own.text
