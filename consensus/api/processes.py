"""Processes: the list a person may see (published ones for everyone) and one process with
its participants, rule, rounds and positions."""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from consensus import permissions
from consensus.api import present, schemas
from consensus.api.core import blueprint
from consensus.extensions import db
from consensus.models import Position, Process

bp = blueprint("processes", "Processes with their participants, decision rule and rounds.")

ProcessPage = schemas.page_of(schemas.ProcessSummarySchema, "Process")


@bp.get("/processes")
@bp.arguments(schemas.PageArgsSchema, location="query", as_kwargs=True)
@bp.response(200, ProcessPage)
def processes(page: int, page_size: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The processes you may see: published ones, and those the pages show you."""
    candidates = list(
        db.session.execute(
            select(Process)
            .options(selectinload(Process.themes))
            .order_by(Process.created_at.desc(), Process.id.desc())
        ).scalars()
    )
    Process.prime_participant_ids(candidates)
    visible = [
        p for p in candidates if p.is_published or permissions.can_view_process(current_user, p)
    ]
    result = present.paginate(
        visible, {"page": page, "page_size": page_size}, "api_processes.processes"
    )
    # Only the page is presented (it was every visible process, then cut: about a second
    # for the 500 processes of the scale world, issue 23's benchmark).
    result["items"] = [present.process_summary(p) for p in result["items"]]
    return result, 200, present.link_header(result)


@bp.get("/processes/<slug>")
@bp.response(200, schemas.ProcessSchema)
def process(slug: str) -> dict[str, Any]:
    """One process: participants, decision rule, rounds, positions."""
    found = present.load_readable_process(slug)
    positions = list(
        db.session.execute(
            select(Position).where(Position.process_id == found.id).order_by(Position.id)
        ).scalars()
    )
    return present.process(found, positions)
