"""Positions, their versions (text, SHA-256, the exact bytes), comments and amendments;
the disposition report of a round. Writing goes through the pages' services and gates."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from flask import Response, abort, g
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from consensus import permissions
from consensus.api import present, schemas
from consensus.api.core import blueprint, refuse, require_user
from consensus.api.usecase import perform
from consensus.extensions import db
from consensus.models import Amendment, Comment, Organisation, Position, RoundType, Version
from consensus.permissions import drafting as drafting_rules
from consensus.services import drafting
from consensus.services import positions as service
from consensus.web.pages import api as cached
from consensus.web.positions import load_amendment, load_position, load_version
from consensus.web.processes import load_round

bp = blueprint("positions", "Positions, versions, comments, amendments, disposition reports.")

CommentPage = schemas.page_of(schemas.CommentSchema, "Comment")
AmendmentPage = schemas.page_of(schemas.AmendmentSchema, "Amendment")
_DISPOSITION_SCHEMA = schemas.DispositionSchema()


def _numbers(position: Position) -> dict[int, int]:
    """Every version's number by its id: one statement of two columns (loading
    `position.versions` would also load the paragraphs of whichever versions the request
    had not loaded yet, a statement count that depends on the data)."""
    rows = db.session.execute(
        select(Version.id, Version.number).where(Version.position_id == position.id)
    )
    return {version_id: number for version_id, number in rows}


def organisation_by_slug(slug: str | None, field: str = "organisation") -> Organisation | None:
    """The organisation a request names (None when it names none); unknown: 422."""
    if slug is None:
        return None
    found = db.session.execute(
        select(Organisation).where(Organisation.slug == slug)
    ).scalar_one_or_none()
    if found is None:
        error = refuse(422, _("This organisation does not take part in this process."))
        error.data = {"messages": {"json": {field: [_("Unknown organisation.")]}}}  # type: ignore[attr-defined]
        raise error
    return found


@bp.get("/processes/<slug>/positions")
@bp.response(200, schemas.PositionSchema(many=True))
def positions(slug: str) -> list[dict[str, Any]]:
    """Every position of the process with its versions."""
    process = present.load_readable_process(slug)
    rows = db.session.execute(
        select(Position).where(Position.process_id == process.id).order_by(Position.id)
    ).scalars()
    return [present.position(p) for p in rows]


@bp.get("/processes/<slug>/positions/<int:position_id>")
@bp.response(200, schemas.PositionSchema)
def position(slug: str, position_id: int) -> dict[str, Any]:
    """One position with its versions."""
    process = present.load_readable_process(slug)
    return present.position(load_position(process, position_id))


@bp.get("/processes/<slug>/positions/<int:position_id>/versions/<int:number>")
@bp.response(200, schemas.VersionSchema)
def version(slug: str, position_id: int, number: int) -> dict[str, Any]:
    """One version: its canonical text, paragraphs and SHA-256."""
    process = present.load_readable_process(slug)
    return present.version(process, load_version(load_position(process, position_id), number))


@bp.get("/processes/<slug>/positions/<int:position_id>/versions/<int:number>/markdown")
@bp.response(
    200,
    {"type": "string", "format": "binary"},
    content_type="text/markdown",
    description="The exact canonical bytes: their SHA-256 is the version's hash.",
)
def version_markdown(slug: str, position_id: int, number: int) -> Response:
    """The version's exact canonical bytes (Markdown): their SHA-256 is the version's hash."""
    process = present.load_readable_process(slug)
    found = load_version(load_position(process, position_id), number)
    data = found.body.encode("utf-8")
    digest = hashlib.sha256(data).digest()
    response = Response(data, mimetype="text/markdown")
    response.headers["Content-Type"] = "text/markdown; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{process.slug}-{position_id}-v{found.number}.md"'
    )
    response.headers["ETag"] = f'"{found.sha256}"'
    response.headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(digest).decode()}:"
    return response


# --- Comments ---------------------------------------------------------------------------------


@bp.get("/processes/<slug>/positions/<int:position_id>/versions/<int:number>/comments")
@bp.arguments(schemas.PageArgsSchema, location="query", as_kwargs=True)
@bp.response(200, CommentPage)
def comments(
    slug: str, position_id: int, number: int, page: int, page_size: int
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The comments on a version (replies included, removed ones without their text)."""
    process = present.load_readable_process(slug)
    found_position = load_position(process, position_id)
    found = load_version(found_position, number)
    numbers = _numbers(found_position)
    rows = [present.comment(c, numbers) for c in service.load_comments([found.id])]
    result = present.paginate(
        rows,
        {"page": page, "page_size": page_size},
        "api_positions.comments",
        slug=slug,
        position_id=position_id,
        number=number,
    )
    return result, 200, present.link_header(result)


@bp.post("/processes/<slug>/positions/<int:position_id>/versions/<int:number>/comments")
@bp.arguments(schemas.CommentInputSchema, as_kwargs=True)
@bp.response(201, schemas.CommentSchema)
def comment_new(
    slug: str,
    position_id: int,
    number: int,
    body: str,
    organisation: str | None,
    paragraph: str | None,
    parent_id: int | None,
) -> dict[str, Any]:
    """Comment on a version (or reply), for an organisation you may speak for."""
    process = present.load_readable_process(slug)
    found_position = load_position(process, position_id)
    found = load_version(found_position, number)
    parent = None
    if parent_id is not None:
        parent = db.session.get(Comment, parent_id)
        if parent is None or parent.version_id != found.id:
            abort(404)
    numbers = _numbers(found_position)
    return perform(
        service.add_comment,
        found,
        process,
        body=body,
        organisation=organisation_by_slug(organisation),
        paragraph_anchor=paragraph,
        parent=parent,
        present=lambda c: present.comment(c, numbers),
    )


# --- Amendments -------------------------------------------------------------------------------


@bp.get("/processes/<slug>/positions/<int:position_id>/amendments")
@bp.arguments(schemas.PageArgsSchema, location="query", as_kwargs=True)
@bp.response(200, AmendmentPage)
def amendments(
    slug: str, position_id: int, page: int, page_size: int
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Every amendment of the position with its decision and reason."""
    process = present.load_readable_process(slug)
    found = load_position(process, position_id)
    numbers = _numbers(found)
    rows = [present.amendment(a, numbers) for a in service.load_amendments(found.id)]
    result = present.paginate(
        rows,
        {"page": page, "page_size": page_size},
        "api_positions.amendments",
        slug=slug,
        position_id=position_id,
    )
    return result, 200, present.link_header(result)


@bp.get("/processes/<slug>/positions/<int:position_id>/amendments/<int:amendment_number>")
@bp.response(200, schemas.AmendmentSchema)
def amendment(slug: str, position_id: int, amendment_number: int) -> dict[str, Any]:
    """One amendment with its decision and reason."""
    process = present.load_readable_process(slug)
    found = load_position(process, position_id)
    return present.amendment(load_amendment(found, amendment_number), _numbers(found))


@bp.post("/processes/<slug>/positions/<int:position_id>/versions/<int:number>/amendments")
@bp.arguments(schemas.AmendmentInputSchema, as_kwargs=True)
@bp.response(201, schemas.AmendmentSchema)
def amendment_new(
    slug: str,
    position_id: int,
    number: int,
    organisation: str,
    proposed_text: str,
    rationale: str,
    paragraph: str | None,
    end_paragraph: str | None,
    insert_after: str | None,
) -> dict[str, Any]:
    """Propose an amendment to the version of the open consultation round."""
    process = present.load_readable_process(slug)
    found_position = load_position(process, position_id)
    found = load_version(found_position, number)
    numbers = _numbers(found_position)
    return perform(
        service.propose_amendment,
        found,
        process,
        organisation=organisation_by_slug(organisation),
        proposed_text=proposed_text,
        rationale=rationale,
        paragraph_anchor=paragraph,
        end_anchor=end_paragraph,
        insert_after_anchor=insert_after,
        present=lambda a: present.amendment(a, numbers),
    )


@bp.post(
    "/processes/<slug>/positions/<int:position_id>/amendments/<int:amendment_number>/withdrawal"
)
@bp.response(200, schemas.AmendmentSchema)
def amendment_withdraw(slug: str, position_id: int, amendment_number: int) -> dict[str, Any]:
    """Withdraw a pending amendment of your organisation."""
    process = present.load_readable_process(slug)
    found_position = load_position(process, position_id)
    found: Amendment = load_amendment(found_position, amendment_number)
    numbers = _numbers(found_position)
    require_user()
    if not permissions.may_withdraw(current_user, found):  # as the page: refused first
        raise refuse(403, _("Only the proposing organisation can withdraw this amendment."))
    return perform(
        service.withdraw_amendment, found, present=lambda _v: present.amendment(found, numbers)
    )


# --- The disposition report --------------------------------------------------------------------


@bp.get("/processes/<slug>/rounds/<int:round_id>/disposition")
@bp.response(200, schemas.DispositionSchema)
def disposition(slug: str, round_id: int) -> Response:
    """The disposition report of a drafting or consultation round: every amendment and
    comment per organisation, with what was done with it."""
    process = present.load_readable_process(slug)
    found = load_round(process, round_id)
    if found.type not in {RoundType.CONSULTATION, RoundType.DRAFTING}:
        abort(404)
    # As the page and its downloads: not before it is published, unless one manages the
    # process (asked before the kept answer, which is the published report).
    phase = drafting.review_phase(drafting.review_of(found.id))
    if not drafting_rules.may_read_disposition(current_user, process, phase):
        abort(404)
    key = cached.DispositionKey(found.id, bool(g.get("api_names_visible", False)))
    return cached.answer(
        cached.DISPOSITION,
        key,
        lambda: cached.encode(
            _DISPOSITION_SCHEMA, disposition_data(service.disposition(process, found))
        ),
    )


def disposition_data(report: service.DispositionReport) -> dict[str, Any]:
    numbers = {v.id: v.number for v in report.versions.values()} if report.versions else {}
    if report.position is not None:
        numbers |= _numbers(report.position)

    def flat(threads: list[service.Thread]) -> list[Comment]:
        found: list[Comment] = []
        for thread in threads:
            found.append(thread.comment)
            found.extend(flat(thread.replies))
        return found

    return {
        "round": present.round_(report.round),
        "position_id": report.position.id if report.position else None,
        "version_number": report.version.number if report.version else None,
        "generated_at": report.generated_at,
        "totals": report.totals,
        "organisations": [
            {
                "organisation": present.organisation(entry.organisation),
                "amendments": [present.amendment(a, numbers) for a in entry.amendments],
                "comments": [present.comment(c, numbers) for c in flat(entry.comments)],
            }
            for entry in report.organisations
        ],
    }
