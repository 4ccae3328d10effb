"""The public index at national scale (issue 23): a page at a time, filtered by organisation,
theme and year, the same few statements however many processes are published."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from consensus.extensions import db
from consensus.models import Organisation, Process, RoundType
from consensus.models.base import utcnow
from consensus.services import processes
from consensus.services.published import PER_PAGE
from tests.factories import make_organisation, make_process, make_user


def _publish_many(
    n: int,
    organisations: list[Organisation],
    *,
    themes: Callable[[int], list[str]] = lambda i: [],
    title: str = "Standpunt",
) -> list[Process]:
    """`n` processes, each with two facilitators, rounds and participants, published one
    minute apart (the first is the oldest)."""
    facilitator = make_user(is_facilitator=True)
    second = make_user(is_facilitator=True)
    now = utcnow()
    made = []
    for i in range(n):
        process = make_process(
            facilitator,
            organisations,
            title=f"{title} {i:03d}",
            themes=themes(i),
            rounds=[
                (RoundType.CONSULTATION, now + timedelta(days=1), now + timedelta(days=2)),
                (RoundType.ENDORSEMENT, now + timedelta(days=3), now + timedelta(days=4)),
            ],
        )
        processes.add_facilitator(process, actor=facilitator, user=second)
        processes.schedule_publication(process, actor=facilitator, at=None)
        db.session.commit()
        process.published_at = now - timedelta(minutes=n - i)
        made.append(process)
    db.session.commit()
    return made


def _titles(html: str) -> list[str]:
    return re.findall(r'class="c-card__title"><a href="/public/[^"]+">([^<]+)</a>', html)


def test_the_index_is_paginated_and_its_page_links_work(app: Flask, client: Any) -> None:
    orgs = [make_organisation() for _ in range(2)]
    _publish_many(PER_PAGE + 5, orgs)

    first = client.get("/public/")
    assert first.status_code == 200
    titles = _titles(first.text)
    # Newest first, one page's worth.
    assert titles == [f"Standpunt {i:03d}" for i in range(PER_PAGE + 4, 4, -1)]
    assert f"{PER_PAGE + 5} gepubliceerde uitkomsten" in first.text
    link = re.search(r'href="(/public/\?page=2)"', first.text)
    assert link is not None, "no link to page 2"

    second = client.get(link.group(1))
    assert second.status_code == 200
    assert _titles(second.text) == [f"Standpunt {i:03d}" for i in range(4, -1, -1)]
    assert 'href="/public/?page=1"' in second.text
    assert client.get("/public/?page=3").status_code == 404


def test_the_index_filters_by_organisation_theme_and_year(app: Flask, client: Any) -> None:
    a = make_organisation("gemeente-a", name="Gemeente A")
    b = make_organisation("provincie-b", name="Provincie B")
    both = _publish_many(3, [a, b], themes=lambda i: ["Data"] if i == 0 else ["Cloud"])
    only_a = _publish_many(2, [a], title="Alleen A", themes=lambda i: ["Data"])
    both[0].published_at = datetime(2024, 12, 31, 23, 30, tzinfo=UTC)  # 1 January 2025 locally
    only_a[0].published_at = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    db.session.commit()

    page = client.get("/public/").text
    assert 'value="provincie-b">Provincie B</option>' in page
    assert '<option value="Cloud">Cloud</option>' in page
    assert '<option value="2024">2024</option>' in page and "2025" in page

    by_org = _titles(client.get("/public/?organisation=provincie-b").text)
    assert sorted(by_org) == ["Standpunt 000", "Standpunt 001", "Standpunt 002"]
    by_theme = _titles(client.get("/public/?theme=Data").text)
    assert sorted(by_theme) == ["Alleen A 000", "Alleen A 001", "Standpunt 000"]
    combined = _titles(client.get("/public/?theme=Data&organisation=provincie-b").text)
    assert combined == ["Standpunt 000"]
    # Years are Dutch years: 23:30 UTC on 31 December is New Year's Day in Amsterdam.
    assert _titles(client.get("/public/?year=2024").text) == ["Alleen A 000"]
    in_2025 = client.get("/public/?year=2025")
    assert _titles(in_2025.text) == ["Standpunt 000"]
    assert '<option value="2025" selected>' in in_2025.text
    nothing = client.get("/public/?organisation=provincie-b&theme=Geen")
    assert nothing.status_code == 200
    assert "Geen gepubliceerde uitkomsten voldoen aan deze filters." in nothing.text


def test_pagination_keeps_the_filters(app: Flask, client: Any) -> None:
    org = make_organisation()
    _publish_many(PER_PAGE + 1, [org], themes=lambda i: ["Data"])
    page = client.get("/public/?theme=Data").text
    assert 'href="/public/?page=2&amp;theme=Data"' in page
    assert _titles(client.get("/public/?page=2&theme=Data").text) == ["Standpunt 000"]


def test_bad_filters_are_explained_and_nothing_breaks(app: Flask, client: Any) -> None:
    _publish_many(1, [make_organisation()])
    for query, message in (
        ("page=twee", "Het paginanummer moet een geheel getal vanaf 1 zijn."),
        ("page=0", "Het paginanummer moet een geheel getal vanaf 1 zijn."),
        ("year=24", "Het jaar moet een jaartal zijn, zoals 2026."),
        ("organisation=" + "x" * 41, "Kies een organisatie uit de lijst."),
    ):
        answer = client.get(f"/public/?{query}")
        assert answer.status_code == 400, query
        assert message in answer.text, query
        assert "Traceback" not in answer.text


def test_the_index_runs_the_same_statements_however_much_is_published(
    app: Flask, count_queries: Callable[[], Any]
) -> None:
    """The index of 21 and of 41 published processes, each with participants, two
    facilitators and two rounds: the same statements, first (rendered) and second (the
    page from the cache). Loading facilitators, rounds or participations per process, or
    every process, fails here."""
    # The round clock's next due moment is read when the head moves and at least once a
    # minute: a minute boundary between two requests would add it to one of them.
    clock = str(processes._next_due_statement().compile(dialect=db.engine.dialect))
    org_ids = [make_organisation().id for _ in range(3)]
    counts = []
    for n in (PER_PAGE + 1, PER_PAGE):  # 21, then 41 in all: page 2 exists in both
        orgs = [db.session.get(Organisation, org_id) for org_id in org_ids]
        _publish_many(n, orgs)
        slug = orgs[0].slug
        db.session.expire_all()
        anonymous = app.test_client()
        measured = []
        for path in (
            "/public/",
            "/public/",
            "/public/?page=2",
            f"/public/?organisation={slug}",
        ):
            with count_queries() as counter:
                answer = anonymous.get(path)
            assert answer.status_code == 200
            measured.append(sum(1 for s in counter.statements if s != clock))
        counts.append(measured)
    assert counts[0] == counts[1], f"statements grow with the published processes: {counts}"
    first, cached, second_page = counts[1][:3]
    # The audit head, the last event's time (read once when the head moved), the count, the
    # page, its themes and the three filters' choices.
    assert first <= 8, counts
    assert cached == 1, counts  # the audit head: the page comes from the cache
    # Another page: the filters' choices come from the cache (head, count, page, themes).
    assert second_page <= 4, counts
