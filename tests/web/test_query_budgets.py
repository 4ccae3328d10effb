"""Query budgets (issues 9 and 23): every main page runs a fixed number of SQL statements.

The pages are the benchmark's own list (consensus.worlds.pages, which benchmarks/bench.py
measures): the logged-in pages, the public ones, the admin lists, the API and the stance
POST. They are requested in a small scale world and in one with a larger country (more
organisations, participants) and a longer history (twice the years: more processes,
published outcomes, comments, stances, audit events), as `flask demo --scale 10` is ten
years of the scale-1 country; the number of statements must be the same in both, and
within the page's budget where it has one. A page that loads a row per organisation, per
process, per comment or per stance with its own query fails here long before it is slow
in production. These are counts, not timings: the benchmark measures the time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import User
from consensus.services import accounts, api_tokens, processes, sessions
from consensus.web import admin as admin_web
from consensus.worlds import scale
from consensus.worlds.pages import ADMIN, Page, main_pages
from tests.conftest import _empty_all_tables
from tests.helpers import give_session

# (scale, years of history): the larger world has 5/3 the country and 1.5 times the years,
# 2.5 times the processes (both have more than one page of published outcomes).
SMALL, LARGE = (0.03, 6.0), (0.05, 9.0)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$YnVkZ2V0$YnVkZ2V0LXRlc3Qtbm90LWEtcmVhbC1oYXNo"

# The most statements each page may run (it runs the same number in both worlds): the
# first request, which renders the long parts, and the next one, which finds them in the
# fragment cache (consensus.web.fragments) because nothing changed in between. For the POST:
# the first stance and the one that supersedes it.
BUDGETS = {
    "dashboard": (12, 3),
    # +1 (issue 20): the follow-up part (the way through the standing bodies, the actions,
    # the letter and its reply) is one UNION ALL statement when rendered, none when kept
    "process page": (12, 3),
    "version page": (12, 3),  # a miss reads the outline, the ORM version, comment counts
    "diff page": (9, 3),  # a miss reads the outline and then the versions to compare
    "round tally": (11, 3),
    "public outcome": (11, 1),
    # head, last event's time, count, a page, its themes, the filters' choices
    "public index": (8, 1),
    "board download": (8, 1),
    # issue 23: the report's body (every amendment and comment of the round per
    # organisation) is a cached part; the page around it reads the process, round, review,
    # the round's version and position and the viewer's spaces, and the numbers of contested
    # amendments (+1: asked also when none is contested, so the count is the same for
    # every world)
    "disposition report": (14, 7),
    "cast stance (POST)": (13, 14),
    # issue 23: the API's main reads keep their encoded JSON (consensus.web.pages.api); a
    # hit still reads the token, the head, the process and what decides the reader's key
    # (before: 4, 10, 6 and 12 statements on the second request too)
    "api processes": (6, 2),
    "api process": (10, 4),
    "api stances": (6, 4),
    # +1: the report's review, for the rule that keeps it from readers until it is
    # published (permissions.drafting.may_read_disposition), asked before the kept answer
    "api disposition": (13, 5),
}
# Pages whose long parts come from the fragment cache on the second request.
CACHED = {
    "api processes",
    "api process",
    "api stances",
    "api disposition",
    "dashboard",
    "process page",
    "version page",
    "diff page",
    "round tally",
    "public outcome",
    "public index",
    "board download",
    "disposition report",
}


def _user(email: str) -> User:
    return db.session.execute(select(User).where(User.email == email)).scalar_one()


def _measure(
    app: Flask, count_queries: Callable[[], Any], world: tuple[float, float]
) -> dict[str, tuple[int, ...]]:
    # Both worlds start from the same caches: nothing another test of this worker kept.
    app.extensions["consensus.web.fragments"].clear()
    # The administrator of the demo world (the admin pages), before the scale world.
    accounts.create_user(
        actor=None, email=ADMIN, display_name="Beheer", password="budget-admin-pw", is_admin=True
    )
    db.session.commit()
    size, years = world
    scale.build_scale_world(size, history=years, password_hash=HASH)
    db.session.commit()
    pages, people = main_pages()
    organisation_id, voter_email = people["voters"][0]
    _, token = api_tokens.create_token(_user(voter_email), name="budget", scopes="read", days=365)
    db.session.commit()
    voter = give_session(app, app.test_client(), _user(voter_email))
    admin = give_session(app, app.test_client(), _user(people["admin"]))
    # The round clock's next due moment is read again when the log's head moves and at
    # least once a minute (consensus.web.apply_the_clock): like the session's touch, a minute
    # boundary between two measurements would add it to one of them.
    clock = str(processes._next_due_statement().compile(dialect=db.engine.dialect))
    clock_reads = 0
    counts: dict[str, tuple[int, ...]] = {}
    for page in pages:
        http = admin if page.who == "admin" else voter if page.who == "voter" else None
        http = http or app.test_client()  # anonymous and API: no cookie
        headers = {"Authorization": f"Bearer {token}"} if page.who == "api" else {}
        if page.anonymous:
            http = app.test_client()
        measured = []
        for _ in range(2):  # the second time: a re-cast supersedes, caches are warm
            db.session.expire_all()
            with count_queries() as counter:
                response = _request(http, page, headers, organisation_id)
                response.get_data()
            expected = 302 if page.method == "POST" else 200
            assert response.status_code == expected, (page.name, page.path)
            # The session's last-seen time is refreshed at most once a minute, so that one
            # small UPDATE lands in a measurement only when a minute boundary passes: it is
            # not part of the page's work and would make the comparison flaky. So is the
            # clock's read (above).
            clock_reads += counter.statements.count(clock)
            measured.append(
                sum(
                    1
                    for statement in counter.statements
                    if statement != clock
                    and not statement.lstrip().upper().startswith("UPDATE USER_SESSION")
                )
            )
        counts[page.name] = tuple(measured)
    # The world was just built (a new head): the first page read the clock. Had the
    # statement's text changed, nothing would be left out and this says so.
    assert clock_reads >= 1, "the round clock's statement was not recognised"
    return counts


def _request(http: Any, page: Page, headers: dict[str, str], organisation_id: int) -> Any:
    if page.method == "POST":
        return http.post(page.path, data={**page.form, "organisation_id": str(organisation_id)})
    return http.get(page.path, headers=headers)


# The counts, measured once for both tests of this module (they are only numbers: each
# test still gets an emptied database from the `app` fixture).
_MEASURED: list[dict[str, tuple[int, ...]]] = []


@pytest.fixture
def measured_worlds(
    app: Flask, count_queries: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    # A session's last-seen time (and a token's last use) is refreshed at most once a
    # minute, and that small commit expires what the request had loaded, so a minute
    # boundary inside a measured request would add a statement or two for no reason of
    # the page's (it did, on a loaded machine). Not within one measurement, then.
    monkeypatch.setattr(sessions, "touch_interval", lambda: timedelta(days=1))
    monkeypatch.setattr(api_tokens, "TOUCH_SECONDS", 24 * 3600)
    # The administrators' list of people is kept per minute (a membership can lapse without
    # an event): a minute's turn between a page's two requests made the second a miss (it
    # did, in CI). One minute for the whole measurement.
    minute = time.time()
    monkeypatch.setattr(admin_web, "time", SimpleNamespace(time=lambda: minute))
    if not _MEASURED:
        for world in (SMALL, LARGE):
            _MEASURED.append(_measure(app, count_queries, world))
            db.session.remove()
            _empty_all_tables()
    return _MEASURED[0], _MEASURED[1]


def test_every_main_page_runs_the_same_statements_in_a_larger_world(
    measured_worlds: tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]],
) -> None:
    small, large = measured_worlds
    assert set(BUDGETS) <= set(small), "a page with a budget is no longer in the page list"
    grew = {name: (n, large[name]) for name, n in small.items() if large[name] != n}
    assert not grew, f"statement counts differ with the size of the world: {grew}"
    over = {
        name: n
        for name, n in small.items()
        if name in BUDGETS
        and any(got > budget for got, budget in zip(n, BUDGETS[name], strict=True))
    }
    assert not over, f"over budget: {over} (budgets: {BUDGETS})"


def test_long_parts_come_from_the_fragment_cache_when_nothing_changed(
    measured_worlds: tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]],
) -> None:
    small, _ = measured_worlds
    not_cached = {name: small[name] for name in CACHED if small[name][1] >= small[name][0]}
    assert not not_cached, f"the second request did not use the cache: {not_cached}"
