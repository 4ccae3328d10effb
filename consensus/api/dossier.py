"""The dossier of a process (a ZIP for document management systems) and, for a published
process, its open data (JSON and CSV, linked from the public page).

The dossier holds every version as its exact Markdown bytes, the amendments with their
decisions (CSV and JSON), the comments, the disposition report of each drafting or
consultation round, board.jsonl (every stance ever cast, as the public board), the
outcomes, and once signed the letter and the verification bundle; `manifest.json` and
`SHA256SUMS` give the SHA-256 of every other file (`sha256sum -c SHA256SUMS` checks them).
Who may download it: whoever may read the process (published: everyone).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, url_for
from flask_login import current_user
from sqlalchemy import select

from consensus import permissions, signing
from consensus.api import present, schemas
from consensus.api.core import VERSION, blueprint
from consensus.api.endorsements import sees_every_stance, stances_data
from consensus.api.positions import disposition_data
from consensus.extensions import db
from consensus.formats import csvsafe
from consensus.models import Position, Process, RoundType, Version
from consensus.services import endorsements as endorsement_service
from consensus.services import positions as position_service
from consensus.signing import bundle

bp = blueprint("dossier", "The dossier (ZIP) of a process and open data of published ones.")

# Fixed timestamps in the archive: the same data gives the same bytes.
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)

AMENDMENT_COLUMNS = (
    "position_id",
    "number",
    "version_number",
    "round_id",
    "organisation",
    "author",
    "paragraph_anchor",
    "end_anchor",
    "insert_after_anchor",
    "original_text",
    "proposed_text",
    "rationale",
    "state",
    "adopted_text",
    "decision_reason",
    "decided_by",
    "decided_at",
    "withdrawn_at",
    "created_at",
)
COMMENT_COLUMNS = (
    "position_id",
    "id",
    "version_number",
    "paragraph_anchor",
    "parent_id",
    "round_id",
    "author",
    "organisation",
    "author_role",
    "body",
    "created_at",
    "edited_at",
    "deleted_at",
)
STANCE_COLUMNS = (
    "id",
    "round",
    "round_title",
    "organisation",
    "organisation_name",
    "stance",
    "text",
    "version_number",
    "version_sha256",
    "cast_at",
    "cast_by",
    "mandate",
    "superseded_at",
)


def _json(value: Any) -> bytes:
    return (
        json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=_iso) + "\n"
    ).encode("utf-8")


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csvsafe.writer(out)
    writer.writerow(columns)
    writer.writerows([[row.get(c) for c in columns] for row in rows])
    return out.getvalue().encode("utf-8")


def _positions(process: Process) -> list[Position]:
    return list(
        db.session.execute(
            select(Position).where(Position.process_id == process.id).order_by(Position.id)
        ).scalars()
    )


def _amendments(positions: list[Position]) -> list[dict[str, Any]]:
    rows = []
    for position in positions:
        numbers = {v.id: v.number for v in position.versions}
        for amendment in position_service.load_amendments(position.id):
            rows.append({"position_id": position.id, **present.amendment(amendment, numbers)})
    return rows


def _comments(positions: list[Position]) -> list[dict[str, Any]]:
    rows = []
    for position in positions:
        numbers = {v.id: v.number for v in position.versions}
        comments = position_service.load_comments(numbers)
        rows.extend({"position_id": position.id, **present.comment(c, numbers)} for c in comments)
    return rows


def _board(process: Process) -> list[dict[str, Any]]:
    """Every stance ever cast, as the public board; for a viewer from whom the process hides
    the tally of a round until it closes, only their own organisations' stances of it."""
    lines = list(endorsement_service.board_lines(process))
    hidden = {
        r.sequence
        for r in process.rounds
        if r.type == RoundType.ENDORSEMENT and not sees_every_stance(process, r)
    }
    if not hidden:
        return lines
    mine = {m.organisation.slug for m in permissions.valid_memberships(current_user)}
    return [line for line in lines if line["round"] not in hidden or line["organisation"] in mine]


def _outcomes(process: Process) -> list[dict[str, Any]]:
    rows = []
    for outcome in endorsement_service.outcomes_of(process):
        version = db.session.get(Version, outcome.version_id) if outcome.version_id else None
        rows.append(present.outcome(outcome, version.sha256 if version else None))
    return rows


def _stance_rows(board: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **line,
            "version_number": line["version"]["number"],
            "version_sha256": line["version"]["sha256"],
            "mandate": line["mandate"]["type"],
        }
        for line in board
    ]


def dossier_files(process: Process) -> dict[str, bytes]:
    """Every file of the dossier but the manifest, by its path in the ZIP."""
    positions = _positions(process)
    files: dict[str, bytes] = {}
    positions_json = []
    for position in positions:
        positions_json.append(present.position(position))
        for version in position.versions:
            files[f"versions/position-{position.id}-v{version.number}.md"] = version.body.encode(
                "utf-8"
            )
    files["process.json"] = _json(present.process(process, positions))
    files["positions.json"] = _json(positions_json)
    amendments = _amendments(positions)
    files["amendments.json"] = _json(amendments)
    files["amendments.csv"] = _csv(AMENDMENT_COLUMNS, amendments)
    comments = _comments(positions)
    files["comments.json"] = _json(comments)
    files["comments.csv"] = _csv(COMMENT_COLUMNS, comments)
    labels = {state.value: state.value for state in position_service.AmendmentState}
    for round_ in sorted(process.rounds, key=lambda r: r.sequence):
        if round_.type in {RoundType.CONSULTATION, RoundType.DRAFTING}:
            report = position_service.disposition(process, round_)
            name = f"disposition/round-{round_.sequence}"
            files[f"{name}.json"] = _json(disposition_data(report))
            files[f"{name}.csv"] = position_service.disposition_csv(report, labels).encode("utf-8")
        if round_.type == RoundType.ENDORSEMENT:
            files[f"stances/round-{round_.sequence}.json"] = _json(stances_data(process, round_))
    board = _board(process)
    files["board.jsonl"] = "".join(
        json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in board
    ).encode("utf-8")
    files["outcomes.json"] = _json(_outcomes(process))
    signing_round = signing.current_signing_round(process)
    letter = signing.letter_of(signing_round) if signing_round is not None else None
    if signing_round is not None and letter is not None and letter.signed_pdf is not None:
        files[f"letter-{process.slug}.pdf"] = letter.signed_pdf
        files[bundle.bundle_name(process)] = bundle.build(process, signing_round, letter)
    return files


def manifest(process: Process, files: dict[str, bytes]) -> dict[str, Any]:
    return {
        "format": "consensus-dossier/1",
        "api_version": VERSION,
        "process": process.slug,
        "title": process.title,
        "files": [
            {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for path, data in sorted(files.items())
        ],
    }


def dossier_zip(process: Process) -> bytes:
    files = dossier_files(process)
    listed = manifest(process, files)
    sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in listed["files"])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in [
            *sorted(files.items()),
            ("manifest.json", _json(listed)),
            ("SHA256SUMS", sums.encode("utf-8")),
        ]:
            info = zipfile.ZipInfo(f"{process.slug}/{path}", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return out.getvalue()


_BINARY = {"type": "string", "format": "binary"}


@bp.get("/processes/<slug>/dossier")
@bp.response(200, _BINARY, content_type="application/zip", description="The dossier (ZIP).")
def dossier(slug: str) -> Response:
    """Everything about the process in one ZIP, with a manifest of SHA-256 hashes."""
    process = present.load_readable_process(slug)
    return Response(
        dossier_zip(process),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="dossier-{process.slug}.zip"'},
    )


# --- Open data (published processes only) -----------------------------------------------------


def _published(slug: str) -> Process:
    from consensus.web.loaders import load_published_process

    process = load_published_process(slug)
    if not process.is_published:  # pragma: no cover - the loader says 404 already
        abort(404)
    return process


@bp.get("/processes/<slug>/open-data")
@bp.response(200, schemas.OpenDataSchema)
def open_data(slug: str) -> dict[str, Any]:
    """A published process as open data: the process, versions with their hashes,
    amendments with decisions, outcomes and every stance (JSON)."""
    process = _published(slug)
    positions = _positions(process)
    return {
        "process": present.process(process, positions),
        "positions": [present.position(p) for p in positions],
        "amendments": _amendments(positions),
        "outcomes": _outcomes(process),
        "stances": _stance_rows(_board(process)),
        "_links": {
            "self": present.link("api_dossier.open_data", slug=slug),
            "stancesCsv": present.link("api_dossier.open_data_stances", slug=slug),
            "amendmentsCsv": present.link("api_dossier.open_data_amendments", slug=slug),
            "dossier": present.link("api_dossier.dossier", slug=slug),
        },
    }


def _csv_response(data: bytes, filename: str) -> Response:
    response = Response(data, mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


_CSV = {"type": "string"}


@bp.get("/processes/<slug>/open-data/stances.csv")
@bp.response(200, _CSV, content_type="text/csv", description="Every stance ever cast.")
def open_data_stances(slug: str) -> Response:
    """Every stance ever cast in a published process (CSV)."""
    process = _published(slug)
    return _csv_response(
        _csv(STANCE_COLUMNS, _stance_rows(_board(process))), f"{process.slug}-stances.csv"
    )


@bp.get("/processes/<slug>/open-data/amendments.csv")
@bp.response(200, _CSV, content_type="text/csv", description="Amendments and decisions.")
def open_data_amendments(slug: str) -> Response:
    """The amendments of a published process with their decisions (CSV)."""
    process = _published(slug)
    return _csv_response(
        _csv(AMENDMENT_COLUMNS, _amendments(_positions(process))), f"{process.slug}-amendments.csv"
    )


def open_data_links(slug: str) -> dict[str, str]:
    """For the public page."""
    return {
        "json": url_for("api_dossier.open_data", slug=slug),
        "stances": url_for("api_dossier.open_data_stances", slug=slug),
        "amendments": url_for("api_dossier.open_data_amendments", slug=slug),
        "dossier": url_for("api_dossier.dossier", slug=slug),
    }
