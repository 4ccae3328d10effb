"""The published outcomes, a page at a time (the public index, issue 23).

Reads only what the index shows: a page of processes (id, slug, title, purpose, published
date) with their themes, the total for the pagination, and the choices of the filters. Never
a process's facilitators, rounds or participations: a fixed number of statements whatever
the number of published processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import lazyload, load_only, selectinload

from consensus import permissions
from consensus.domain.timeutil import local_day, start_of_day
from consensus.extensions import db
from consensus.models import Organisation, Participation, Process, ProcessTheme

PER_PAGE = 20
MAX_PAGE = 100_000


@dataclass(frozen=True)
class IndexFilters:
    """What the reader asked for; empty means "all"."""

    organisation: str = ""  # an organisation's slug
    theme: str = ""
    year: int | None = None
    page: int = 1

    def query_args(self) -> dict[str, str | int]:
        """The filters as query-string arguments (pagination links keep them)."""
        args: dict[str, str | int] = {}
        if self.organisation:
            args["organisation"] = self.organisation
        if self.theme:
            args["theme"] = self.theme
        if self.year is not None:
            args["year"] = self.year
        return args

    @property
    def filtered(self) -> bool:
        return bool(self.query_args())


@dataclass(frozen=True)
class FilterChoices:
    organisations: list[tuple[str, str]]  # (slug, name), by name
    themes: list[str]
    years: list[int]  # newest first


def _published() -> list[ColumnElement[bool]]:
    """Published processes only: the rule book's SQL form of `Process.is_published`."""
    return [permissions.published_clause()]


def filter_choices() -> FilterChoices:
    """Organisations taking part in a published process, their themes and the years of
    publication: three statements."""
    organisations = [
        (slug, name)
        for slug, name in db.session.execute(
            select(Organisation.slug, Organisation.name)
            .where(
                exists()
                .where(
                    Participation.organisation_id == Organisation.id,
                    Participation.removed_at.is_(None),
                    Participation.process_id == Process.id,
                )
                .where(*_published())
            )
            .order_by(Organisation.name)
        )
    ]
    themes = list(
        db.session.execute(
            select(ProcessTheme.name)
            .join(Process, Process.id == ProcessTheme.process_id)
            .where(*_published())
            .distinct()
            .order_by(ProcessTheme.name)
        ).scalars()
    )
    first, last = db.session.execute(
        select(func.min(Process.published_at), func.max(Process.published_at)).where(*_published())
    ).one()
    years = (
        list(range(local_day(last).year, local_day(first).year - 1, -1))
        if first is not None and last is not None
        else []
    )
    return FilterChoices(organisations, themes, years)


def _conditions(filters: IndexFilters) -> list[Any]:
    conditions: list[Any] = _published()
    if filters.organisation:
        conditions.append(
            exists().where(
                Participation.process_id == Process.id,
                Participation.removed_at.is_(None),
                Participation.organisation_id == Organisation.id,
                Organisation.slug == filters.organisation,
            )
        )
    if filters.theme:
        conditions.append(
            exists().where(
                ProcessTheme.process_id == Process.id, ProcessTheme.name == filters.theme
            )
        )
    if filters.year is not None:
        conditions.append(Process.published_at >= start_of_day(date(filters.year, 1, 1)))
        conditions.append(Process.published_at < start_of_day(date(filters.year + 1, 1, 1)))
    return conditions


def index_page(filters: IndexFilters) -> Pagination:
    """One page of published processes, newest first: the count, the page and the page's
    themes (three statements; two when nothing matches)."""
    statement = (
        select(Process)
        .where(*_conditions(filters))
        .options(
            load_only(
                Process.id, Process.slug, Process.title, Process.purpose, Process.published_at
            ),
            selectinload(Process.themes),
            # Nothing else of a process is shown: not its facilitators or rounds (loaded with
            # every process otherwise). Lazy, not raise: the options stay with the instances
            # for the session's life (tests/web/test_public_index.py counts the statements).
            lazyload("*"),
        )
        .order_by(Process.published_at.desc(), Process.id.desc())
    )
    return db.paginate(
        statement, page=filters.page, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False
    )
