"""The shared loaders of the web layer: a process or an organisation named in the address,
or 404. Every blueprint uses these (no per-blueprint copies): one query, one rule for who
may learn that a process exists."""

from __future__ import annotations

from flask import abort, request
from flask_login import current_user
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from consensus import permissions, transactions
from consensus.extensions import db
from consensus.models import Organisation, Process, ProcessFacilitator, User

# One query for the process with its facilitators and rounds (a handful of rows); the
# facilitators' names are shown, their memberships never. Built once: nearly every page runs
# it, and a reused statement keeps its cache key.
_PROCESS_BY_SLUG = (
    select(Process)
    .where(Process.slug == bindparam("slug"))
    .options(
        joinedload(Process.facilitators)
        .joinedload(ProcessFacilitator.user)
        .lazyload(User.memberships),
        joinedload(Process.rounds),
    )
)

_ORGANISATION_BY_SLUG = select(Organisation).where(Organisation.slug == bindparam("slug"))


def _process_by_slug(slug: str) -> Process | None:
    return db.session.execute(_PROCESS_BY_SLUG, {"slug": slug}).unique().scalar_one_or_none()


def load_process(slug: str) -> Process:
    """404 for a missing process and for one this person may not see (no leak): a
    participants-only process is not there for anyone else."""
    process = _process_by_slug(slug)
    if process is None:
        abort(404)
    if request.method in transactions.SAFE_METHODS:
        # Hundreds of ids at national scale: kept for this state of the data. A changing
        # request (its every write moves the audit head, so the cache would miss) asks only
        # about the viewer's own organisations (Process.participating).
        from consensus.web.pages import process as process_page

        ids = process_page.participant_ids(process)
        process.remember_participant_ids(ids)
    if not permissions.can_view_process(current_user, process):
        abort(404)
    return process


def load_published_process(slug: str, *, or_visible: bool = False) -> Process:
    """A published process, for everyone (404 otherwise). `or_visible`: also one not yet
    published, for the people `load_process` lets see it."""
    process = _process_by_slug(slug)
    if process is None:
        abort(404)
    if not (
        permissions.can_see_process(current_user, process) if or_visible else process.is_published
    ):
        abort(404)
    return process


def load_organisation(slug: str) -> Organisation:
    """The organisation with this slug, or 404. Who may do what with it is the caller's
    check (permissions)."""
    organisation = db.session.execute(_ORGANISATION_BY_SLUG, {"slug": slug}).scalar_one_or_none()
    if organisation is None:
        abort(404)
    return organisation
