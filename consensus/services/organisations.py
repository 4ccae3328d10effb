"""Organisations and the memberships that tie people to them."""

from __future__ import annotations

import re
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consensus import audit
from consensus.domain.visible import visible_line
from consensus.extensions import db
from consensus.models import Membership, MembershipRole, Organisation, OrganisationKind, User
from consensus.services.errors import Conflict, DomainError

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


def _check_slug(slug: str, *, exclude_id: int | None = None) -> str:
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise DomainError(
            str(_l("Use lower-case letters, digits and hyphens (at most 40).")), field="slug"
        )
    existing = db.session.execute(
        select(Organisation.id).where(Organisation.slug == slug)
    ).scalar_one_or_none()
    if existing is not None and existing != exclude_id:
        raise Conflict(
            str(_l("Another organisation already uses this short address.")), field="slug"
        )
    return slug


def create_organisation(
    *,
    actor: User | None,
    name: str,
    short_name: str,
    slug: str,
    kind: OrganisationKind,
    active: bool = True,
) -> Organisation:
    """Add a participating body. Its slug is its stable public handle."""
    organisation = Organisation(
        name=visible_line(name, field="name"),
        short_name=visible_line(short_name, field="short_name"),
        slug=_check_slug(slug),
        kind=OrganisationKind(kind),
        active=active,
    )
    db.session.add(organisation)
    db.session.flush()
    audit.record(
        "organisation.created",
        actor=actor,
        object_type="organisation",
        object_id=organisation.id,
        organisation_id=organisation.id,
        payload={
            "name": organisation.name,
            "short_name": organisation.short_name,
            "slug": organisation.slug,
            "kind": organisation.kind.value,
            "active": active,
        },
    )
    return organisation


def update_organisation(
    organisation: Organisation,
    *,
    actor: User,
    name: str,
    short_name: str,
    slug: str,
    kind: OrganisationKind,
    active: bool,
) -> Organisation:
    slug = _check_slug(slug, exclude_id=organisation.id)
    before = {
        "name": organisation.name,
        "short_name": organisation.short_name,
        "slug": organisation.slug,
        "kind": organisation.kind.value,
        "active": organisation.active,
    }
    after = {
        "name": visible_line(name, field="name"),
        "short_name": visible_line(short_name, field="short_name"),
        "slug": slug,
        "kind": OrganisationKind(kind).value,
        "active": active,
    }
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if not changes:
        return organisation
    organisation.name = after["name"]
    organisation.short_name = after["short_name"]
    organisation.slug = slug
    organisation.kind = OrganisationKind(kind)
    organisation.active = active
    audit.record(
        "organisation.updated",
        actor=actor,
        object_type="organisation",
        object_id=organisation.id,
        organisation_id=organisation.id,
        payload={"changes": changes},
    )
    db.session.flush()
    return organisation


def _check_period(valid_from: datetime | None, valid_until: datetime | None) -> None:
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise DomainError(str(_l("The end must be after the start.")), field="valid_until")


def add_membership(
    *,
    actor: User | None,
    user: User,
    organisation: Organisation,
    role: MembershipRole,
    title: str = "",
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> Membership:
    """A person has at most one membership per organisation (a role change edits it)."""
    existing = db.session.execute(
        select(Membership).where(
            Membership.user_id == user.id, Membership.organisation_id == organisation.id
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            str(
                _l(
                    "This person is already a member of this organisation; change that "
                    "membership instead."
                )
            ),
            field="user_id",
        )
    _check_period(valid_from, valid_until)
    membership = Membership(
        user=user,
        organisation=organisation,
        role=MembershipRole(role),
        title=visible_line(title, field="title"),
        valid_from=valid_from,
        valid_until=valid_until,
    )
    db.session.add(membership)
    db.session.flush()
    audit.record(
        "membership.created",
        actor=actor,
        object_type="membership",
        object_id=membership.id,
        organisation_id=organisation.id,
        payload={
            "user": user.id,
            "role": membership.role.value,
            "title": membership.title,
            "valid_from": valid_from,
            "valid_until": valid_until,
        },
    )
    return membership


def update_membership(
    membership: Membership,
    *,
    actor: User,
    role: MembershipRole,
    title: str,
    valid_from: datetime | None,
    valid_until: datetime | None,
) -> Membership:
    _check_period(valid_from, valid_until)
    before = {
        "role": membership.role.value,
        "title": membership.title,
        "valid_from": membership.valid_from,
        "valid_until": membership.valid_until,
    }
    after = {
        "role": MembershipRole(role).value,
        "title": visible_line(title, field="title"),
        "valid_from": valid_from,
        "valid_until": valid_until,
    }
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if not changes:
        return membership
    membership.role = MembershipRole(role)
    membership.title = after["title"]
    membership.valid_from = valid_from
    membership.valid_until = valid_until
    audit.record(
        "membership.updated",
        actor=actor,
        object_type="membership",
        object_id=membership.id,
        organisation_id=membership.organisation_id,
        payload={"user": membership.user_id, "changes": changes},
    )
    db.session.flush()
    return membership


def end_membership(membership: Membership, *, actor: User, at: datetime) -> Membership:
    """Ending keeps the record (history matters for mandates) and closes the period."""
    if membership.valid_until is not None and membership.valid_until <= at:
        raise DomainError(str(_l("This membership has already ended.")))
    if membership.valid_from is not None and membership.valid_from >= at:
        raise DomainError(str(_l("This membership has not started yet; change its period.")))
    membership.valid_until = at
    audit.record(
        "membership.ended",
        actor=actor,
        object_type="membership",
        object_id=membership.id,
        organisation_id=membership.organisation_id,
        payload={"user": membership.user_id, "valid_until": at},
    )
    db.session.flush()
    return membership
