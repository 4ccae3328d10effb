"""An organisation's audit trail and receipts with inclusion proofs, for its members and
administrators (the pages' rule: permissions.can_view_organisation). A receipt is the
same document as the page's download: verify it with tools/verify_audit.py."""

from __future__ import annotations

from typing import Any

from flask import abort
from flask_login import current_user
from sqlalchemy import select

from consensus import permissions
from consensus.api import present, schemas
from consensus.api.core import blueprint, refuse
from consensus.audit import checkpoints
from consensus.extensions import db
from consensus.models import AuditEvent, Organisation
from consensus.web.loaders import load_organisation

bp = blueprint("audit", "An organisation's audit trail and receipts with inclusion proofs.")

EventPage = schemas.page_of(schemas.AuditEventSchema, "AuditEvent")


def _organisation_for_member(slug: str) -> Organisation:
    if "\x00" in slug:
        abort(404)
    organisation = load_organisation(slug)
    if not permissions.can_view_organisation(current_user, organisation):
        # Anonymous: log in (a token); a person of another organisation: 403, as the page.
        raise refuse(401 if not current_user.is_authenticated else 403)
    return organisation


@bp.get("/organisations/<slug>/audit-events")
@bp.arguments(schemas.PageArgsSchema, location="query", as_kwargs=True)
@bp.response(200, EventPage)
def audit_events(slug: str, page: int, page_size: int) -> tuple[dict[str, Any], int, dict]:
    """Events done for the organisation, newest first."""
    organisation = _organisation_for_member(slug)
    rows = db.session.execute(
        select(AuditEvent)
        .where(AuditEvent.organisation_id == organisation.id)
        .order_by(AuditEvent.seq.desc())
    ).scalars()
    items = [
        {
            "seq": e.seq,
            "created_at": e.created_at,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "result": e.result,
            "_links": {"receipt": present.link("api_audit.audit_receipt", slug=slug, seq=e.seq)},
        }
        for e in rows
    ]
    result = present.paginate(
        items, {"page": page, "page_size": page_size}, "api_audit.audit_events", slug=slug
    )
    return result, 200, present.link_header(result)


@bp.get("/organisations/<slug>/audit-events/<int:seq>/receipt")
@bp.response(200, schemas.ReceiptSchema)
def audit_receipt(slug: str, seq: int) -> dict[str, Any]:
    """The receipt of one event: its entry, leaf hash and an inclusion proof against the
    latest signed checkpoint (or the current head until the next checkpoint)."""
    organisation = _organisation_for_member(slug)
    event = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.seq == seq, AuditEvent.organisation_id == organisation.id
        )
    ).scalar_one_or_none()
    if event is None:
        abort(404)
    return checkpoints.receipt(event)
