"""The fragment cache (consensus.web.fragments): long parts of pages rendered once per state of the
data, and never shown to someone they were not rendered for.

These tests look for the ways a cache goes wrong in front of a user: a stale page after a
change, one viewer's buttons, organisations or CSRF token shown to another, a clock-bound
button that outlives its time.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

from flask import Flask

from consensus import audit
from consensus.extensions import db
from consensus.models import MembershipRole, StanceKind, utcnow
from consensus.services import endorsements as endorsement_service
from consensus.services import positions as position_service
from consensus.web import fragments
from tests.endorsement_support import make_world
from tests.helpers import give_session
from tests.web.test_positions import build_world


def _cache(app: Flask) -> fragments.LRU:
    cache = app.extensions["consensus.web.fragments"]
    assert cache is not None, "the tests run with the fragment cache on"
    return cache


def _without_tokens(html: str) -> str:
    return html.replace(_token_of(html), "")


def _token_of(html: str) -> str:
    match = re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert match, "every page carries the session's CSRF token for htmx"
    return match.group(1)


def test_a_second_view_comes_from_the_cache_and_a_change_shows_at_once(app, login_as):
    w = make_world()
    a, b = w.orgs[0], w.orgs[1]
    page = f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"
    client = login_as(w.reps[a.id])
    first = client.get(page).text
    hits = _cache(app).hits
    # The same page, apart from the CSRF token (signed with the time, so it may differ).
    assert _without_tokens(client.get(page).text) == _without_tokens(first)
    assert _cache(app).hits > hits
    endorsement_service.cast_stance(
        w.round, actor=w.reps[b.id], organisation=b, kind=StanceKind.OBJECT, text="Niet zo."
    )
    db.session.commit()
    assert "Niet zo." in client.get(page).text


def test_every_audited_change_moves_the_key(app):
    with app.test_request_context("/"):
        before = fragments.state()
    audit.record("test.event", actor=None, object_type="test", object_id=1, payload={})
    db.session.commit()
    with app.test_request_context("/"):
        after = fragments.state()
    assert before is not None and after is not None and before != after


def test_no_cache_while_a_request_has_uncommitted_changes(app):
    with app.test_request_context("/", method="POST"):
        before = fragments.state()
        assert before is not None, "nothing written yet: the committed state has a key"
        audit.record("test.event", actor=None, object_type="test", object_id=1, payload={})
        db.session.flush()
        assert fragments.state() is None
        assert fragments.html("x", render=lambda: "<p>a</p>") == "<p>a</p>"
        assert len(_cache(app)) == 0, "uncommitted data is never kept"
        db.session.commit()
        after = fragments.state()
        assert after is not None and after != before


def test_a_hidden_tally_is_not_shared_between_organisations(app, login_as):
    w = make_world(hide_tally_until_closed=True)
    a, b = w.orgs[0], w.orgs[1]
    endorsement_service.cast_stance(
        w.round, actor=w.reps[a.id], organisation=a, kind=StanceKind.OBJECT, text="Geheim."
    )
    db.session.commit()
    page = f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"
    assert "Geheim." in login_as(w.reps[a.id]).get(page).text  # a's view is cached first
    assert "Geheim." not in login_as(w.reps[b.id]).get(page).text


def test_the_comment_form_speaks_for_each_viewers_own_organisation(app, login_as):
    w = build_world()
    page = w.url("/versions/1")
    vng_view = login_as(w.person("vng")).get(page).text
    hits = _cache(app).hits
    ipo_view = login_as(w.person("ipo")).get(page).text
    assert _cache(app).hits > hits, "the text and threads are shared between viewers"
    assert f'name="organisation_id" value="{w.vng.id}"' in vng_view
    assert f'name="organisation_id" value="{w.ipo.id}"' not in vng_view
    assert f'name="organisation_id" value="{w.ipo.id}"' in ipo_view
    assert f'name="organisation_id" value="{w.vng.id}"' not in ipo_view
    assert "\x00" not in vng_view + ipo_view


def test_each_session_gets_its_own_csrf_token_in_cached_forms(app):
    w = build_world()
    author = w.person("vng")
    position_service.add_comment(
        w.v1, w.process, actor=author, organisation=w.vng, body="Mijn punt."
    )
    db.session.commit()
    page = w.url("/versions/1")
    first = give_session(app, app.test_client(), author).get(page).text
    second = give_session(app, app.test_client(), author).get(page).text
    one, two = _token_of(first), _token_of(second)
    assert one != two
    # The author's Remove button is a small form inside the cached thread.
    assert f'name="csrf_token" value="{two}"' in second
    assert one not in second


def test_the_edit_button_goes_when_the_edit_window_passes(app, login_as, monkeypatch):
    w = build_world()
    author = w.person("vng")
    comment = position_service.add_comment(
        w.v1, w.process, actor=author, organisation=w.vng, body="Eerst."
    )
    db.session.commit()
    page = w.url("/versions/1")
    edit = w.url(f"/comments/{comment.id}/edit")
    client = login_as(author)
    assert edit in client.get(page).text
    # Time passes (16 minutes, for the page); nothing is written, so the audit log's head
    # stays where it was.
    later = utcnow() + timedelta(minutes=16)
    monkeypatch.setattr("consensus.web.positions.utcnow", lambda: later)
    monkeypatch.setattr("consensus.services.positions.utcnow", lambda: later)
    monkeypatch.setattr("consensus.permissions.positions.utcnow", lambda: later)
    assert edit not in client.get(page).text


def test_the_clock_still_closes_rounds_on_time(app, login_as):
    w = make_world()
    w.round.closes_at = utcnow() + timedelta(seconds=1.5)
    db.session.commit()
    client = login_as(w.reps[w.orgs[0].id])
    page = f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"
    assert client.get(page).status_code == 200  # the next due moment is now cached
    time.sleep(1.6)  # the deadline passes; nothing is written
    client.get(page)
    db.session.refresh(w.round)
    assert w.round.state.value == "closed"


def test_a_membership_that_lapses_changes_the_dashboard(app, login_as):
    w = make_world()
    rep = w.reps[w.orgs[0].id]
    client = login_as(rep)
    assert w.process.title in client.get("/").text
    membership = next(m for m in rep.memberships if m.role == MembershipRole.REPRESENTATIVE)
    membership.valid_until = utcnow() - timedelta(days=1)
    db.session.commit()
    page = client.get("/").text
    # The work list no longer names the process. Messages already sent to this person stay
    # in their inbox, like the e-mail they already received (docs/notifications.md).
    assert 'aria-labelledby="notices"' in page
    work = re.sub(r'<section[^>]*aria-labelledby="notices".*?</section>', "", page, flags=re.S)
    assert w.process.title not in work


def test_the_cache_keeps_to_its_size(app):
    cache = fragments.LRU(max_bytes=1000)
    for i in range(10):
        cache.put(i, "x" * 200, 200)
    assert cache.used <= 1000 and len(cache) == 5
    assert cache.get(0) is None and cache.get(9) == "x" * 200
    cache.put("big", "y" * 400, 400)  # larger than a quarter: not kept
    assert cache.get("big") is None


def test_the_round_page_shows_the_latest_stances_and_links_to_all(app, login_as):
    w = make_world()
    kinds = [StanceKind.ENDORSE, StanceKind.ABSTAIN]
    for i in range(14):
        for org in w.orgs:
            endorsement_service.cast_stance(
                w.round,
                actor=w.reps[org.id],
                organisation=org,
                kind=kinds[i % 2],
                text=f"Ronde {i}.",
            )
    db.session.commit()
    client = login_as(w.reps[w.orgs[0].id])
    base = f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"
    page = client.get(base).text
    total = 14 * len(w.orgs)
    assert f"{total} standpunten in deze ronde" in page
    assert "Ronde 13." in page and "Ronde 0." not in page  # the latest 50 of 56
    assert f'href="{base}/history"' in page
    everything = client.get(f"{base}/history").text
    assert "Ronde 0." in everything and "Ronde 13." in everything
    assert f'href="{base}/history"' not in everything


def test_a_write_that_starts_with_a_common_table_expression_counts_as_a_write(app):
    from sqlalchemy import text

    with app.test_request_context("/"):
        assert fragments.state() is not None
        db.session.execute(
            text("WITH none_at_all AS (SELECT 1) UPDATE notice SET read_at = read_at WHERE 1 = 0")
        )
        assert fragments.state() is None
        db.session.rollback()
        assert fragments.state() is not None


def test_a_cached_value_may_be_none(app):
    calls = []

    def compute() -> None:
        calls.append(1)

    with app.test_request_context("/"):
        assert fragments.value("nothing", compute=compute) is None
        assert fragments.value("nothing", compute=compute) is None
    assert calls == [1]


def test_cached_page_bodies_carry_each_viewers_own_forms_and_buttons(app, login_as):
    """The process and round pages are one cached body for everyone; the stance form, the
    "input complete" form and the facilitator's buttons are each viewer's own."""
    w = make_world()
    a, b = w.orgs[0], w.orgs[1]
    round_page = f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"
    process_page = f"/processes/{w.process.slug}"
    seen = {}
    for viewer, org in ((w.reps[a.id], a), (w.reps[b.id], b)):
        client = login_as(viewer)
        hits = _cache(app).hits
        page = client.get(round_page).text
        seen[org.id] = page
        assert f"Namens {org.name}, over versie 1." in page
        assert f'name="organisation_id" value="{org.id}"' in page
        other = b if org is a else a
        assert f"Namens {other.name}" not in page
        assert "Dit traject beheren" not in client.get(process_page).text
        if org is b:
            assert _cache(app).hits > hits, "the second viewer's body came from the cache"
    facilitator = login_as(w.facilitator).get(process_page).text
    assert "Dit traject beheren" in facilitator
    assert "Namens" not in login_as(w.facilitator).get(round_page).text


def test_a_kept_stance_form_carries_each_sessions_own_token(app):
    """The empty stance form is kept per set of organisations; its CSRF token is not."""
    w = make_world()
    rep = w.reps[w.orgs[0].id]
    round_page = f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"
    first = give_session(app, app.test_client(), rep).get(round_page).text
    hits = _cache(app).hits
    second = give_session(app, app.test_client(), rep).get(round_page).text
    assert _cache(app).hits > hits
    one, two = _token_of(first), _token_of(second)
    assert one != two
    assert f'name="csrf_token" value="{two}"' in second
    assert one not in second
    assert f'name="organisation_id" value="{w.orgs[0].id}"' in second


def test_a_long_part_is_sent_as_bytes_in_its_place_and_cannot_be_forged(fresh_app):
    """fragments.part: the page around it is rendered with a marker, the part's bytes go in
    its place (as often as the page shows it); text that spells a marker with another
    request's nonce stays what it was."""
    from flask import render_template_string

    app = fresh_app
    forged = "\x00part:0123456789abcdef:0\x00"

    @app.get("/part-for-test")
    def show():  # pragma: no cover - exercised through the client
        body = fragments.part("part-for-test", render=lambda: "<p>Één stem — één deel</p>")
        return render_template_string(
            "<main>{{ body }}|{{ forged }}|{{ body }}</main>", body=body, forged=forged
        )

    client = app.test_client()
    expected = f"<main><p>Één stem — één deel</p>|{forged}|<p>Één stem — één deel</p></main>"
    first = client.get("/part-for-test")
    assert first.get_data(as_text=True) == expected
    assert first.content_length == len(expected.encode())
    hits = _cache(app).hits
    assert client.get("/part-for-test").get_data(as_text=True) == expected
    assert _cache(app).hits > hits, "the second request took the part from the cache"


def test_the_version_page_sends_no_marker_of_its_parts(app, login_as):
    w = build_world()
    author = w.person("vng")
    position_service.add_comment(
        w.v1, w.process, actor=author, organisation=w.vng, body="Één punt — met tekens."
    )
    db.session.commit()
    client = login_as(author)
    for _ in range(2):  # rendered, then from the cache
        page = client.get(w.url("/versions/1")).get_data(as_text=True)
        assert "Één punt — met tekens." in page
        assert "\x00" not in page
        assert 'name="organisation_id"' in page  # the viewer's own "on behalf of" filled in


def test_the_version_pages_top_changes_when_a_newer_version_comes(app, login_as):
    """The top of the version page (version bar, notices) is kept for every viewer; a new
    version is an audited change, so version 1 says at once that it is no longer the latest."""
    w = build_world()
    client = login_as(w.person("vng"))
    first = client.get(w.url("/versions/1")).text
    assert "Versie 1 van 1" in first and "Laatste versie" in first
    assert "Dit is niet de laatste versie." not in client.get(w.url("/versions/1")).text
    position_service.create_version(
        w.position, w.process, actor=w.facilitator, body="Alles anders.\n", change_summary="x"
    )
    db.session.commit()
    later = client.get(w.url("/versions/1")).text
    assert "Versie 1 van 2" in later and "Eerdere versie" in later
    assert "Dit is niet de laatste versie." in later
