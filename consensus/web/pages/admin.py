"""The administrators' lists of organisations and people (issue 23: the organisations list
shows every organisation with its member count, 400 rows at national scale)."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.web.pages import CachedPart, declare_key


@declare_key
@dataclass(frozen=True)
class OrganisationsKey:
    """Data only: every row comes from audited changes."""


@declare_key
@dataclass(frozen=True)
class PeopleKey:
    """The search and the page; the memberships shown are the ones valid now, which can end
    without an audited change: kept for at most the minute."""

    query: str
    page: int
    minute: int


ORGANISATIONS = CachedPart(
    "admin-organisations", "admin/_organisations_body.html", OrganisationsKey
)
PEOPLE = CachedPart("admin-people", "admin/_users_body.html", PeopleKey)
