"""Public pages: published outcomes, the board of every stance, and what re-tallies it.

No login. Only processes that are published (visibility and published_at both set) exist
here; everything else is a 404, so drafts never leak. For readers who are not logged in the
pages carry no session and may be kept by a shared cache (consensus.web.shared_cache).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
)
from flask_babel import gettext as _

from consensus.extensions import db
from consensus.forms.processes import RULE_LABELS
from consensus.models import Process, Round, StanceKind
from consensus.services import endorsements as service
from consensus.services import published
from consensus.web import fragments, shared_cache
from consensus.web.endorsements import chart_bars
from consensus.web.loaders import load_published_process
from consensus.web.pages import public as public_page

bp = Blueprint("public", __name__, url_prefix="/public")


@bp.get("/")
@shared_cache.public
def index() -> str | bytes | tuple[str, int]:
    """The published outcomes, newest first, a page at a time, filtered by organisation,
    theme and year of publication (issue 23)."""
    filters, errors = _index_filters()
    if errors:
        # Not cached: a bad address is answered with what was wrong and the filters.
        return render_template(
            "public/index.html",
            errors=errors,
            filters=published.IndexFilters(),
            choices=published.filter_choices(),
            page=None,
        ), 400
    return _index_page(filters)


@public_page.anonymous_index_page
def _index_page(filters: published.IndexFilters) -> str:
    page = published.index_page(filters)
    if filters.page > 1 and filters.page > (page.pages or 1):
        abort(404)
    return render_template(
        "public/index.html",
        errors=[],
        filters=filters,
        choices=_filter_choices(),
        page=page,
    )


def _filter_choices() -> published.FilterChoices:
    """The filters' choices, the same for every page of the index: kept for this state of
    the data, sized by their text."""

    def size(choices: published.FilterChoices) -> int:
        return (
            256
            + sum(len(slug) + len(name) + 64 for slug, name in choices.organisations)
            + sum(len(theme) + 64 for theme in choices.themes)
            + 32 * len(choices.years)
        )

    return fragments.value("public-index-choices", compute=published.filter_choices, size=size)


def _index_filters() -> tuple[published.IndexFilters, list[str]]:
    """The index's filters from the query string, and what was wrong with them."""
    errors = []
    values: dict[str, object] = {}
    page = request.args.get("page", "1").strip() or "1"
    if not page.isdigit() or not 1 <= int(page) <= published.MAX_PAGE:
        errors.append(_("The page number must be a whole number from 1."))
    else:
        values["page"] = int(page)
    year = request.args.get("year", "").strip()
    if year:
        if not (year.isdigit() and len(year) == 4 and int(year) >= 1900):
            errors.append(_("The year must be a year such as 2026."))
        else:
            values["year"] = int(year)
    organisation = request.args.get("organisation", "").strip()
    if len(organisation) > 40:  # Organisation.slug's length
        errors.append(_("Choose an organisation from the list."))
    else:
        values["organisation"] = organisation
    theme = request.args.get("theme", "").strip()
    if len(theme) > 60:  # ProcessTheme.name's length
        errors.append(_("Choose a theme from the list."))
    else:
        values["theme"] = theme
    return published.IndexFilters(**values), errors  # type: ignore[arg-type]


@bp.get("/<slug>")
@shared_cache.public
@public_page.anonymous_process_page
def process(slug: str) -> str:
    process = load_published_process(slug)
    body_html = public_page.BODY.html(
        public_page.PublicProcessKey(process.id), lambda: _body_context(process)
    )
    return render_template("public/process.html", process=process, body_html=body_html)


def _body_context(process: Process) -> dict[str, object]:
    """The page body: every outcome with its table, and the co-signatures checked."""
    outcomes = []
    for outcome in service.outcomes_of(process):
        round_ = db.session.get(Round, outcome.round_id)
        assert round_ is not None
        result = service.outcome_result(outcome)
        counted = [
            s
            for s in service.current_stances(round_).values()
            if s.version_id == outcome.version_id
        ]
        by_org = {s.organisation_id: s for s in counted}
        rows = [
            (p.organisation, by_org.get(p.organisation_id)) for p in process.current_participations
        ]
        reservations = [
            s for _, s in rows if s is not None and s.kind == StanceKind.ENDORSE_WITH_RESERVATIONS
        ]
        objections = [s for _, s in rows if s is not None and s.kind == StanceKind.OBJECT]
        outcomes.append(
            {
                "outcome": outcome,
                "round": round_,
                "result": result,
                "settings": service.outcome_settings(outcome),
                "bars": chart_bars(result),
                "rows": rows,
                "reservations": reservations,
                "objections": objections,
            }
        )
    from consensus.services import bodies
    from consensus.web.signing import public_signature_context

    dispatches = bodies.dispatches_of(process.id)
    return {
        "process": process,
        "timeline": bodies.public_timeline(process, dispatches),
        "dispatches": dispatches,
        "outcomes": outcomes,
        "rule_labels": RULE_LABELS,
        **public_signature_context(process),
    }


# The board is written in chunks of about this many bytes: a few thousand lines are not a
# few thousand writes to the socket, and a miss holds one chunk of text at a time.
BOARD_CHUNK_BYTES = 64 * 1024


@bp.get("/<slug>/board.jsonl")
@shared_cache.public
def board(slug: str) -> Response:
    """One JSON object per line, every stance ever cast, in recorded order."""
    # Only a published process's board is ever kept, so a kept one needs no lookup.
    kept_board = public_page.KeptBoard(public_page.BoardKey(slug))
    cached = kept_board.chunks()
    if cached is not None:
        # Kept as the UTF-8 chunks it was sent in: no copy or encoding per request (the
        # length is their sum).
        body: tuple[bytes, ...] | Iterator[bytes] = cached
    else:
        process = load_published_process(slug)
        body = stream_with_context(_board_chunks(process, kept_board))
    response = Response(body, mimetype="application/jsonl")
    response.headers["Content-Disposition"] = f'inline; filename="{slug}-board.jsonl"'
    return response


def _board_chunks(process: Process, kept_board: public_page.KeptBoard) -> Iterator[bytes]:
    """The board as UTF-8 chunks of about BOARD_CHUNK_BYTES, streamed (it grows with every
    stance) and kept when it fits the cache; a board too large to keep is not held whole."""
    room = kept_board.room()
    kept: list[bytes] | None = [] if room else None
    kept_bytes = 0
    pending: list[str] = []
    pending_chars = 0
    lines = service.board_lines(process)
    while True:
        line = next(lines, None)
        if line is not None:
            text = json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n"
            pending.append(text)
            pending_chars += len(text)
            if pending_chars < BOARD_CHUNK_BYTES:
                continue
        if pending:
            chunk = "".join(pending).encode("utf-8")
            pending.clear()
            pending_chars = 0
            if kept is not None:
                kept.append(chunk)
                kept_bytes += len(chunk)
                if kept_bytes > room:
                    kept = None  # too large for the cache: stream only
            yield chunk
        if line is None:
            break
    if kept is not None:
        kept_board.keep(tuple(kept))


@bp.get("/<slug>/rule.json")
@shared_cache.public
def rule(slug: str) -> Response:
    process = load_published_process(slug)
    body = json.dumps(service.rule_document(process), ensure_ascii=False, indent=2, sort_keys=True)
    response = Response(body + "\n", mimetype="application/json")
    response.headers["Content-Disposition"] = f'inline; filename="{process.slug}-rule.json"'
    return response


@bp.get("/retally.py")
def retally_script() -> Response:
    """The standard-library re-tally script, served from the checkout it runs from."""
    path = Path(current_app.root_path).parent / "tools" / "retally.py"
    if not path.is_file():
        abort(404)
    response = Response(path.read_text(encoding="utf-8"), mimetype="text/x-python")
    response.headers["Content-Disposition"] = 'attachment; filename="retally.py"'
    return response
