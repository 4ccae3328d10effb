"""Who may see a process (issue 23): the rule book's check and its SQL form agree.

`permissions.processes` states the rule twice: `can_see_process` / `can_view_process` /
`is_involved_in` for one process at hand, and `visible_*` / `viewable_*` / `involved_*` as
SQL for lists, which filter and page in the database. Over generated worlds — published and
participants-only processes, participations (some removed), facilitators, administrators,
representatives, officials and observers with memberships current, ended or not yet begun,
inactive accounts, and an anonymous reader — the SQL returns exactly the processes the check
allows, and the API's list shows exactly those. Runs on SQLite and, with
CONSENSUS_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import Flask
from flask_login import AnonymousUserMixin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus import permissions
from consensus.extensions import db, limiter
from consensus.models import (
    Membership,
    MembershipRole,
    Organisation,
    OrganisationKind,
    Participation,
    Process,
    ProcessFacilitator,
    ProcessState,
    User,
    Visibility,
    utcnow,
)
from tests.api_support import API, bearer, make_token
from tests.conftest import _empty_all_tables

ORGANISATIONS = 3
# When a membership counts: always, from the past, until the future, ended, not yet begun.
PERIODS = ["open", "began", "ends", "ended", "future"]


@dataclass(frozen=True)
class PersonSpec:
    is_admin: bool
    active: bool
    memberships: dict[int, tuple[MembershipRole, str]]  # organisation index → (role, period)


@dataclass(frozen=True)
class ProcessSpec:
    visibility: Visibility
    published: bool  # published_at set (else perhaps only scheduled: publish_at)
    scheduled: bool
    state: ProcessState
    participations: dict[int, bool]  # organisation index → removed
    facilitators: frozenset[int]  # person indexes


people = st.lists(
    st.builds(
        PersonSpec,
        is_admin=st.booleans(),
        active=st.booleans(),
        memberships=st.dictionaries(
            st.integers(0, ORGANISATIONS - 1),
            st.tuples(st.sampled_from(list(MembershipRole)), st.sampled_from(PERIODS)),
            max_size=ORGANISATIONS,
        ),
    ),
    min_size=1,
    max_size=5,
)


def processes(n_people: int) -> st.SearchStrategy[list[ProcessSpec]]:
    return st.lists(
        st.builds(
            ProcessSpec,
            visibility=st.sampled_from(list(Visibility)),
            published=st.booleans(),
            scheduled=st.booleans(),
            state=st.sampled_from(list(ProcessState)),
            participations=st.dictionaries(
                st.integers(0, ORGANISATIONS - 1), st.booleans(), max_size=ORGANISATIONS
            ),
            facilitators=st.frozensets(st.integers(0, n_people - 1), max_size=2),
        ),
        min_size=1,
        max_size=6,
    )


worlds = people.flatmap(lambda ps: st.tuples(st.just(ps), processes(len(ps))))


def _period(kind: str) -> tuple[object, object]:
    now, day = utcnow(), timedelta(days=1)
    return {
        "open": (None, None),
        "began": (now - day, None),
        "ends": (now - day, now + day),
        "ended": (now - 2 * day, now - day),
        "future": (now + day, now + 2 * day),
    }[kind]


def _build(
    person_specs: list[PersonSpec], process_specs: list[ProcessSpec]
) -> tuple[list[User], list[Process]]:
    """The world, written straight into the tables (no services: only the rows the rule
    reads, so a hundred worlds take seconds)."""
    now = utcnow()
    organisations = [
        Organisation(
            name=f"Organisation {n}",
            short_name=f"O{n}",
            slug=f"org-{n}",
            kind=OrganisationKind.MUNICIPALITIES,
        )
        for n in range(ORGANISATIONS)
    ]
    db.session.add_all(organisations)
    users = []
    for n, spec in enumerate(person_specs):
        user = User(
            email=f"person{n}@example.org",
            display_name=f"Person {n}",
            is_admin=spec.is_admin,
            is_facilitator=True,
            active=spec.active,
        )
        for index, (role, period) in spec.memberships.items():
            valid_from, valid_until = _period(period)
            user.memberships.append(
                Membership(
                    organisation=organisations[index],
                    role=role,
                    valid_from=valid_from,
                    valid_until=valid_until,
                )
            )
        users.append(user)
    db.session.add_all(users)
    db.session.flush()
    found = []
    for n, spec in enumerate(process_specs):
        process = Process(
            slug=f"process-{n}",
            title=f"Process {n}",
            state=spec.state,
            visibility=spec.visibility,
            published_at=now - timedelta(hours=n + 1) if spec.published else None,
            publish_at=now + timedelta(days=1) if spec.scheduled and not spec.published else None,
            created_at=now - timedelta(minutes=n),
        )
        db.session.add(process)
        db.session.flush()
        for index, removed in spec.participations.items():
            db.session.add(
                Participation(
                    process_id=process.id,
                    organisation_id=organisations[index].id,
                    removed_at=now - timedelta(hours=1) if removed else None,
                )
            )
        for person in spec.facilitators:
            db.session.add(ProcessFacilitator(process_id=process.id, user_id=users[person].id))
        found.append(process)
    db.session.commit()
    return users, found


def _ids(statement: object) -> set[int]:
    return set(db.session.execute(statement).scalars())  # type: ignore[call-overload]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds)
def test_the_sql_filter_returns_exactly_the_processes_the_check_allows(
    app: Flask, world: tuple[list[PersonSpec], list[ProcessSpec]]
) -> None:
    db.session.remove()
    _empty_all_tables()
    limiter.reset()
    person_specs, process_specs = world
    users, built = _build(person_specs, process_specs)
    tokens = {u.id: make_token(u, scopes="read") for u in users if u.active}
    client = app.test_client()
    viewers: list[User | AnonymousUserMixin] = [*users, AnonymousUserMixin()]
    for viewer in viewers:
        # Fresh objects for the check: nothing remembered from building or from the SQL.
        db.session.expire_all()
        all_processes = list(db.session.execute(db.select(Process)).scalars())
        assert len(all_processes) == len(built)
        who = getattr(viewer, "email", "anonymous")

        allowed = {p.id for p in all_processes if permissions.can_see_process(viewer, p)}
        assert _ids(permissions.visible_processes(viewer)) == allowed, who
        viewable = {p.id for p in all_processes if permissions.can_view_process(viewer, p)}
        assert _ids(permissions.viewable_processes(viewer)) == viewable, who
        involved = {p.id for p in all_processes if permissions.is_involved_in(viewer, p)}
        assert _ids(permissions.involved_processes(viewer)) == involved, who
        assert involved <= viewable <= allowed, who

        # And through the API, the list a script reads (a token for active people only).
        if isinstance(viewer, User) and viewer.id not in tokens:
            continue
        headers = bearer(tokens[viewer.id]) if isinstance(viewer, User) else {}
        listed = client.get(f"{API}/processes?pageSize=100", headers=headers).get_json()
        slugs = {p.slug for p in all_processes if p.id in allowed}
        assert {item["slug"] for item in listed["items"]} == slugs, who
        assert listed["total"] == len(slugs), who
