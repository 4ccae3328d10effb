"""Query budgets (issue 9): every main page runs a fixed number of SQL statements.

The same pages are requested in a small scale world and in one three times larger (more
organisations, participants, comments, stances); the number of statements must be the
same in both, and within the page's budget. A page that loads a row per organisation, per
comment or per stance with its own query fails here long before it is slow in production.
These are counts, not timings: the benchmark (benchmarks/bench.py) measures the time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from consensus.extensions import db
from consensus.models import Comment, Position, Process, Round, RoundState, RoundType, User, Version
from consensus.services import processes
from consensus.worlds import scale
from tests.conftest import _empty_all_tables
from tests.helpers import give_session

SMALL, LARGE = 0.01, 0.03
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
    # the round's version and position and the viewer's spaces
    "disposition report": (13, 6),
    "cast stance (POST)": (13, 14),
}
# Pages whose long parts come from the fragment cache on the second request.
CACHED = {
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


def _pages() -> tuple[dict[str, tuple[str, str, dict[str, str]]], User]:
    national = db.session.execute(
        select(Process).where(Process.slug == f"{scale.SLUG_PREFIX}-traject-0001")
    ).scalar_one()
    published = f"{scale.SLUG_PREFIX}-traject-0002"
    round_ = db.session.execute(
        select(Round).where(
            Round.process_id == national.id,
            Round.type == RoundType.ENDORSEMENT,
            Round.state == RoundState.OPEN,
        )
    ).scalar_one()
    version_id = db.session.execute(
        select(Comment.version_id)
        .group_by(Comment.version_id)
        .order_by(func.count().desc(), Comment.version_id)
        .limit(1)
    ).scalar_one()
    version = db.session.get(Version, version_id)
    assert version is not None
    position = db.session.get(Position, version.position_id)
    assert position is not None and position.process_id == national.id
    organisation = national.current_participations[0].organisation
    slug_word = organisation.slug.removeprefix(f"{scale.SLUG_PREFIX}-")
    user = db.session.execute(
        select(User).where(User.email == f"representative.{slug_word}@{scale.EMAIL_DOMAIN}")
    ).scalar_one()
    consultation = db.session.execute(
        select(Round)
        .where(Round.process_id == national.id, Round.type == RoundType.CONSULTATION)
        .order_by(Round.sequence.desc())
        .limit(1)
    ).scalar_one()
    base = f"/processes/{national.slug}"
    pages = {
        "dashboard": ("GET", "/", {}),
        "process page": ("GET", base, {}),
        "version page": (
            "GET",
            f"{base}/positions/{position.id}/versions/{version.number}",
            {},
        ),
        "diff page": ("GET", f"{base}/positions/{position.id}/diff?from=1&to=2", {}),
        "round tally": ("GET", f"{base}/rounds/{round_.id}/endorsement", {}),
        "public outcome": ("GET", f"/public/{published}", {}),
        "public index": ("GET", "/public/", {}),
        "board download": ("GET", f"/public/{published}/board.jsonl", {}),
        "disposition report": ("GET", f"{base}/positions/rounds/{consultation.id}/disposition", {}),
        "cast stance (POST)": (
            "POST",
            f"{base}/rounds/{round_.id}/stances",
            {"organisation_id": str(organisation.id), "kind": "endorse", "text": ""},
        ),
    }
    return pages, user


def _measure(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[[User], FlaskClient],
    count_queries: Callable[[], Any],
    world: float,
) -> dict[str, tuple[int, ...]]:
    scale.build_scale_world(world, password_hash=HASH)
    db.session.commit()
    pages, user = _pages()
    # The round clock's next due moment is read again when the log's head moves and at
    # least once a minute (consensus.web.apply_the_clock): like the session's touch, a minute
    # boundary between two measurements would add it to one of them.
    clock = str(processes._next_due_statement().compile(dialect=db.engine.dialect))
    clock_reads = 0
    login_as(user)
    counts: dict[str, tuple[int, ...]] = {}
    for name, (method, path, form) in pages.items():
        anonymous = path.startswith("/public")
        http = app.test_client() if anonymous else client
        measured = []
        for _ in range(2):  # the second time: a re-cast supersedes, caches are warm
            db.session.expire_all()
            with count_queries() as counter:
                response = http.post(path, data=form) if method == "POST" else http.get(path)
                response.get_data()
            assert response.status_code == (302 if method == "POST" else 200), (name, path)
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
        counts[name] = tuple(measured)
    # The world was just built (a new head): the first page read the clock. Had the
    # statement's text changed, nothing would be left out and this says so.
    assert clock_reads >= 1, "the round clock's statement was not recognised"
    return counts


@pytest.fixture
def measured_worlds(
    app: Flask, count_queries: Callable[[], Any]
) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    worlds = []
    for world in (SMALL, LARGE):
        client = app.test_client()
        worlds.append(
            _measure(
                app, client, lambda user: give_session(app, client, user), count_queries, world
            )
        )
        db.session.remove()
        _empty_all_tables()
    return worlds[0], worlds[1]


def test_every_main_page_runs_the_same_statements_in_a_larger_world(
    measured_worlds: tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]],
) -> None:
    small, large = measured_worlds
    assert large == small, "a page's statement count grows with the size of the world"
    over = {
        name: n
        for name, n in small.items()
        if any(got > budget for got, budget in zip(n, BUDGETS[name], strict=True))
    }
    assert not over, f"over budget: {over} (budgets: {BUDGETS})"


def test_long_parts_come_from_the_fragment_cache_when_nothing_changed(
    measured_worlds: tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]],
) -> None:
    small, _ = measured_worlds
    not_cached = {name: small[name] for name in CACHED if small[name][1] >= small[name][0]}
    assert not not_cached, f"the second request did not use the cache: {not_cached}"
