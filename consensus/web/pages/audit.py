"""The audit pages (issue 23: the slowest logged-in pages): the administrators' list with its
filters, an organisation's trail and the public transparency page.

A checkpoint is signed without an audit event of its own (it signs the log; an event would
change what it signs), so the head alone does not name what these pages show of the latest
checkpoint: every key carries the latest checkpoint's id, read per request (one short
query)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from consensus.web.fragments import memory_size, rendered
from consensus.web.pages import CachedPart, CachedValue, declare_key


@declare_key
@dataclass(frozen=True)
class AdminAuditKey:
    """The query string as given (filters and page; the same arguments, the same page)."""

    arguments: tuple[tuple[str, str], ...]
    checkpoint_id: int | None


@declare_key
@dataclass(frozen=True)
class OrganisationAuditKey:
    organisation_id: int
    page: int
    checkpoint_id: int | None


@declare_key
@dataclass(frozen=True)
class TransparencyKey:
    checkpoint_id: int | None
    verifier_available: bool


# (the page's content, its status: 422 when a filter is not valid)
ADMIN: CachedValue[AdminAuditKey] = CachedValue(
    "admin-audit", AdminAuditKey, size=lambda found: memory_size(found[0])
)
ORGANISATION = CachedPart(
    "organisation-audit", "audit/_organisation_events_body.html", OrganisationAuditKey
)
TRANSPARENCY = CachedPart("transparency", "audit/_transparency_body.html", TransparencyKey)


def admin_content(key: AdminAuditKey, content: Callable[[], tuple[str, int]]) -> tuple[Markup, int]:
    """The administrators' list as rendered (no token in it: its form is a GET without
    one) and its status."""
    html, status = ADMIN.get(key, content)
    return rendered(html), status
