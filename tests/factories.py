"""Plain factories: create rows through the services, so audit events are written too."""

from __future__ import annotations

import itertools
from datetime import datetime

from consensus.extensions import db
from consensus.models import (
    Membership,
    MembershipRole,
    Organisation,
    OrganisationKind,
    Process,
    User,
)
from consensus.services import accounts, organisations

PASSWORD = "correct horse battery staple"  # noqa: S105 - test password
_counter = itertools.count(1)
_password_hash: str | None = None


def _hash() -> str:
    # Hashing with argon2 is slow on purpose; tests share one hash of the same password.
    global _password_hash
    if _password_hash is None:
        _password_hash = accounts.hash_password(PASSWORD)
    return _password_hash


def make_organisation(
    slug: str | None = None,
    *,
    name: str | None = None,
    kind: OrganisationKind = OrganisationKind.MUNICIPALITIES,
) -> Organisation:
    n = next(_counter)
    slug = slug or f"org-{n}"
    organisation = organisations.create_organisation(
        actor=None,
        name=name or f"Organisation {slug}",
        short_name=slug.upper()[:40],
        slug=slug,
        kind=kind,
    )
    db.session.commit()
    return organisation


def make_user(
    email: str | None = None,
    *,
    name: str | None = None,
    is_admin: bool = False,
    is_facilitator: bool = False,
    active: bool = True,
) -> User:
    n = next(_counter)
    user = accounts.create_user(
        actor=None,
        email=email or f"user{n}@example.org",
        display_name=name or f"User {n}",
        password=None,
        is_admin=is_admin,
        is_facilitator=is_facilitator,
        active=active,
    )
    user.password_hash = _hash()
    db.session.commit()
    return user


def make_membership(
    user: User,
    organisation: Organisation,
    role: MembershipRole = MembershipRole.OFFICIAL,
    *,
    title: str = "",
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> Membership:
    membership = organisations.add_membership(
        actor=None,
        user=user,
        organisation=organisation,
        role=role,
        title=title,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    db.session.commit()
    return membership


def make_process(
    facilitator: User,
    organisations: list[Organisation] = (),
    *,
    title: str = "Proces",
    active: bool = True,
    rounds: list[tuple] = (),
    **settings: object,
) -> Process:
    """A process with participants and rounds given as (type, opens_at, closes_at)."""
    from consensus.services import processes

    process = processes.create_process(actor=facilitator, title=title, **settings)
    for organisation in organisations:
        processes.add_participant(process, actor=facilitator, organisation=organisation)
    for n, (round_type, opens_at, closes_at) in enumerate(rounds, start=1):
        processes.add_round(
            process,
            actor=facilitator,
            type=round_type,
            title=f"Ronde {n}",
            instructions="",
            opens_at=opens_at,
            closes_at=closes_at,
        )
    if active:
        processes.activate_process(process, actor=facilitator)
    db.session.commit()
    return process
