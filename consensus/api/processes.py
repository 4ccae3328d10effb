"""Processes: the list a person may see (published ones for everyone) and one process with
its participants, rule, rounds and positions."""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from sqlalchemy import func, select

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
    """The processes you may see: published ones, and those the pages show you.

    The rule book's `visible_clause` filters in the database, which counts them and cuts
    the page: two statements whatever the number of processes (it was every process
    loaded and checked in Python, about a second for the 500 of the scale world)."""
    visible = permissions.visible_clause(current_user)
    total = db.session.execute(select(func.count()).select_from(Process).where(visible)).scalar()
    rows = db.session.execute(
        select(Process.slug, Process.title, Process.state, Process.visibility, Process.published_at)
        .where(visible)
        .order_by(Process.created_at.desc(), Process.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    result = present.page_of(
        [present.process_summary(row) for row in rows],
        total or 0,
        {"page": page, "page_size": page_size},
        "api_processes.processes",
    )
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
