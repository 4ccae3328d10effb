"""Processes: the list a person may see (published ones for everyone) and one process with
its participants, rule, rounds and positions."""

from __future__ import annotations

from flask import Response, g
from flask_login import current_user
from sqlalchemy import func, select

from consensus import permissions
from consensus.api import present, schemas
from consensus.api.core import blueprint
from consensus.extensions import db
from consensus.models import Position, Process
from consensus.web.pages import api as cached

bp = blueprint("processes", "Processes with their participants, decision rule and rounds.")

ProcessPage = schemas.page_of(schemas.ProcessSummarySchema, "Process")
_PAGE_SCHEMA = ProcessPage()
_PROCESS_SCHEMA = schemas.ProcessSchema()


@bp.get("/processes")
@bp.arguments(schemas.PageArgsSchema, location="query", as_kwargs=True)
@bp.response(200, ProcessPage)
def processes(page: int, page_size: int) -> Response:
    """The processes you may see: published ones, and those the pages show you.

    The rule book's `visible_clause` filters in the database, which counts them and cuts
    the page: two statements whatever the number of processes (it was every process
    loaded and checked in Python, about a second for the 500 of the scale world). The
    encoded page is kept per reader's sight (consensus.web.pages.api)."""
    seen = permissions.sight(current_user)
    visible = permissions.sight_clause(seen)

    def compute() -> cached.Body:
        total = db.session.execute(
            select(func.count()).select_from(Process).where(visible)
        ).scalar()
        rows = db.session.execute(
            select(
                Process.slug, Process.title, Process.state, Process.visibility, Process.published_at
            )
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
        return cached.encode(_PAGE_SCHEMA, result, present.link_header(result))

    return cached.answer(cached.PROCESS_LIST, cached.ProcessListKey(seen, page, page_size), compute)


@bp.get("/processes/<slug>")
@bp.response(200, schemas.ProcessSchema)
def process(slug: str) -> Response:
    """One process: participants, decision rule, rounds, positions."""
    found = present.load_readable_process(slug)

    def compute() -> cached.Body:
        positions = list(
            db.session.execute(
                select(Position).where(Position.process_id == found.id).order_by(Position.id)
            ).scalars()
        )
        return cached.encode(_PROCESS_SCHEMA, present.process(found, positions))

    key = cached.ProcessKey(found.id, bool(g.get("api_names_visible", False)))
    return cached.answer(cached.PROCESS, key, compute)
