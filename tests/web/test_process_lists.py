"""Lists of processes filter and page in the database (issue 23).

`GET /api/v1/processes` and the page `/processes/` ask the rule book's SQL form of who may
see a process (permissions.processes) instead of loading every process and checking each:
the number of statements does not grow with the number of processes, the page is cut by
the database (total and links right, a page past the last is empty), and a conditional GET
still answers 304 until something changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from consensus.extensions import db
from consensus.models import (
    Membership,
    MembershipRole,
    Organisation,
    OrganisationKind,
    Participation,
    Process,
    ProcessFacilitator,
    ProcessState,
    ProcessTheme,
    User,
    Visibility,
    utcnow,
)
from consensus.services import processes as process_service
from tests.api_support import API, bearer, make_token
from tests.conftest import _empty_all_tables
from tests.factories import make_organisation, make_process, make_user
from tests.helpers import give_session

# The most statements a warm request may run, whatever the number of processes.
# API: the token, its person (and their memberships), the count, the page.
API_BUDGET = 4
# Page: the session's person (and memberships), the page and its count, its themes and
# rounds, the theme choices.
PAGE_BUDGET = 9


def _world(size: int) -> dict[str, Any]:
    """`size` processes per kind: published, participants-only with the member's
    organisation taking part, with it removed, without it, and facilitated by the member."""
    now = utcnow()
    ours, theirs = (
        Organisation(name=n, short_name=n, slug=n, kind=OrganisationKind.MUNICIPALITIES)
        for n in ("ours", "theirs")
    )
    member = User(email="member@example.org", display_name="Member", is_facilitator=True)
    member.memberships.append(Membership(organisation=ours, role=MembershipRole.OFFICIAL))
    admin = User(email="admin@example.org", display_name="Admin", is_admin=True)
    db.session.add_all([ours, theirs, member, admin])
    db.session.flush()
    kinds = ["published", "taking-part", "removed", "other", "facilitated"]
    n = 0
    for round_ in range(size):
        for kind in kinds:
            n += 1
            process = Process(
                slug=f"{kind}-{round_}",
                title=f"{kind} {round_}",
                state=ProcessState.ACTIVE,
                visibility=Visibility.PUBLISHED if kind == "published" else Visibility.PARTICIPANTS,
                published_at=now if kind == "published" else None,
                created_at=now - timedelta(minutes=n),
            )
            process.themes.append(ProcessTheme(name=f"theme {n % 7}"))
            db.session.add(process)
            db.session.flush()
            organisation = ours if kind in {"taking-part", "removed"} else theirs
            db.session.add(
                Participation(
                    process_id=process.id,
                    organisation_id=organisation.id,
                    removed_at=now if kind == "removed" else None,
                )
            )
            if kind == "facilitated":
                db.session.add(ProcessFacilitator(process_id=process.id, user_id=member.id))
    db.session.commit()
    return {"member": member, "admin": admin, "size": size}


def _count(client: FlaskClient, url: str, count_queries: Callable[[], Any], **kw: Any) -> int:
    client.get(url, **kw)  # warm: the token's last use, the session's last-seen time
    db.session.expire_all()
    with count_queries() as counter:
        response = client.get(url, **kw)
        response.get_data()
    assert response.status_code == 200, url
    return sum(
        1
        for s in counter.statements
        if not s.lstrip().upper().startswith(("UPDATE USER_SESSION", "UPDATE API_TOKEN"))
    )


def _measure(app: Flask, size: int, count_queries: Callable[[], Any]) -> dict[str, int]:
    world = _world(size)
    member, admin = world["member"], world["admin"]
    counts = {}
    client = app.test_client()
    counts["api anonymous"] = _count(client, f"{API}/processes", count_queries)
    for name, user in (("member", member), ("admin", admin)):
        headers = bearer(make_token(user, scopes="read"))
        counts[f"api {name}"] = _count(
            client, f"{API}/processes?page=2&pageSize=3", count_queries, headers=headers
        )
        browser = app.test_client()
        give_session(app, browser, user)
        counts[f"page {name}"] = _count(browser, "/processes/", count_queries)
    db.session.remove()
    _empty_all_tables()
    return counts


def test_lists_of_processes_run_the_same_statements_for_ten_times_the_processes(
    app: Flask, count_queries: Callable[[], Any]
) -> None:
    small = _measure(app, 12, count_queries)
    large = _measure(app, 120, count_queries)
    assert large == small, "a list's statement count grows with the number of processes"
    over = {
        name: n
        for name, n in small.items()
        if n > (API_BUDGET if name.startswith("api") else PAGE_BUDGET)
    }
    assert not over, f"over budget: {over}"


def test_the_api_list_is_cut_by_the_database_with_the_right_total_and_links(
    app: Flask, client: FlaskClient
) -> None:
    world = _world(3)  # 15 processes; the member sees 9 (published, taking part, facilitated)
    member = bearer(make_token(world["member"], scopes="read"))
    first = client.get(f"{API}/processes?pageSize=4", headers=member).get_json()
    assert first["total"] == 9
    assert [p["slug"] for p in first["items"]] == [
        "published-0",
        "taking-part-0",
        "facilitated-0",
        "published-1",
    ]  # newest first
    assert set(first["_links"]) == {"self", "first", "last", "next"}
    assert "page=3" in first["_links"]["last"]["href"]
    slugs = []
    for page in (1, 2, 3):
        listed = client.get(f"{API}/processes?pageSize=4&page={page}", headers=member).get_json()
        slugs += [p["slug"] for p in listed["items"]]
    assert len(slugs) == len(set(slugs)) == 9
    assert not any(s.startswith(("removed", "other")) for s in slugs)
    past = client.get(f"{API}/processes?pageSize=4&page=9", headers=member).get_json()
    assert past["items"] == [] and past["total"] == 9
    assert "page=3" in past["_links"]["prev"]["href"]

    anonymous = client.get(f"{API}/processes?pageSize=100").get_json()
    assert [p["slug"] for p in anonymous["items"]] == [f"published-{n}" for n in range(3)]
    admin = bearer(make_token(world["admin"], scopes="read"))
    assert client.get(f"{API}/processes", headers=admin).get_json()["total"] == 15


def test_the_api_list_answers_304_until_a_process_is_published(
    app: Flask, client: FlaskClient
) -> None:
    facilitator = make_user(is_facilitator=True)
    process = make_process(facilitator, [make_organisation()], title="Embargoed", active=False)
    first = client.get(f"{API}/processes")
    assert first.get_json()["items"] == []
    etag = first.headers["ETag"]
    assert client.get(f"{API}/processes", headers={"If-None-Match": etag}).status_code == 304
    process_service.schedule_publication(process, actor=facilitator, at=None)
    db.session.commit()
    changed = client.get(f"{API}/processes", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert [p["slug"] for p in changed.get_json()["items"]] == [process.slug]


def test_the_page_of_processes_is_paged_with_filters_kept(app: Flask, login_as: Any) -> None:
    world = _world(12)  # the member sees 36 processes: one page of 50
    client = login_as(world["member"])
    text = client.get("/processes/").get_data(as_text=True)
    assert "taking-part-11" in text and "facilitated-0" in text
    assert "removed-0" not in text and "other-0" not in text
    assert 'rel="next"' not in text
    admin = login_as(world["admin"])  # 60 processes: two pages
    first = admin.get("/processes/?state=active").get_data(as_text=True)
    assert 'rel="next"' in first and "state=active" in first
    assert first.count('<th scope="row">') == 50
    second = admin.get("/processes/?state=active&page=2").get_data(as_text=True)
    assert second.count('<th scope="row">') == 10
