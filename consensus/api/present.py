"""Loading what an address names (the pages' loaders and rules) and presenting it as the
plain data the schemas dump. No rule of its own: who may read a process is
`web.loaders.load_published_process(slug, or_visible=True)` — published processes for
everyone, the rest for the people the pages show them to (404 otherwise, no leak): the rule
book's `can_see_process`, whose SQL form (`visible_clause`) the list of processes uses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from flask import abort, g, url_for
from flask_login import current_user

from consensus import permissions
from consensus.models import (
    Amendment,
    Clearance,
    Comment,
    CoSignature,
    Organisation,
    Outcome,
    Position,
    Process,
    Round,
    Stance,
    Version,
)
from consensus.web.loaders import load_published_process


def load_readable_process(slug: str) -> Process:
    if "\x00" in slug:
        abort(404)  # no process has it, and no database may be asked for it
    process = load_published_process(slug, or_visible=True)
    # People's names are shown to those who see the process in the pages; a published
    # process's public readers see organisations and roles, as on the public pages
    # (officials' names are personal data the publication does not need).
    g.api_names_visible = permissions.can_view_process(current_user, process)
    return process


def person(user: Any) -> str | None:
    """A person's name for a reader who sees the process in the pages, else None."""
    if user is None or not g.get("api_names_visible", False):
        return None
    return str(user.display_name)


def link(endpoint: str, **values: Any) -> dict[str, str]:
    return {"href": url_for(endpoint, **values)}


def paginate(items: Sequence[Any], args: dict[str, int], endpoint: str, **values: Any) -> dict:
    """A page of `items` with links (NL GOV: self, first, prev, next, last) and the total;
    the same links go in the Link header (RFC 8288) through `link_header`."""
    page, size = int(args["page"]), int(args["page_size"])
    start = (page - 1) * size
    return page_of(list(items[start : start + size]), len(items), args, endpoint, **values)


def page_of(
    items: Sequence[Any], total: int, args: dict[str, int], endpoint: str, **values: Any
) -> dict:
    """The page `items` (already cut, e.g. by the database) of `total` with its links."""
    page, size = int(args["page"]), int(args["page_size"])
    last = max(1, math.ceil(total / size))

    def at(number: int) -> dict[str, str]:
        return link(endpoint, **values, page=number, pageSize=size)

    links: dict[str, dict[str, str]] = {"self": at(page), "first": at(1), "last": at(last)}
    if page > 1:
        links["prev"] = at(min(page - 1, last))
    if page < last:
        links["next"] = at(page + 1)
    return {
        "items": list(items),
        "total": total,
        "page": page,
        "page_size": size,
        "_links": links,
    }


def link_header(page: dict) -> dict[str, str]:
    parts = [f'<{value["href"]}>; rel="{rel}"' for rel, value in page["_links"].items()]
    return {"Link": ", ".join(parts)}


# --- Presenting --------------------------------------------------------------------------------


def organisation(o: Organisation) -> dict[str, Any]:
    return {"slug": o.slug, "name": o.name, "kind": getattr(o.kind, "value", str(o.kind))}


def round_(r: Round) -> dict[str, Any]:
    return {
        "id": r.id,
        "sequence": r.sequence,
        "type": r.type.value,
        "title": r.title,
        "state": r.state.value,
        "opens_at": r.opens_at,
        "closes_at": r.closes_at,
        "opened_at": r.opened_at,
        "closed_at": r.closed_at,
        "version_id": r.version_id,
    }


def process_summary(p: Any) -> dict[str, Any]:
    """A process (or a row of the same columns: slug, title, state, visibility,
    published_at) in a list."""
    return {
        "slug": p.slug,
        "title": p.title,
        "state": p.state.value,
        "visibility": p.visibility.value,
        "published_at": p.published_at,
        "_links": {"self": link("api_processes.process", slug=p.slug)},
    }


def process(p: Process, positions: Sequence[Position]) -> dict[str, Any]:
    links = {
        "self": link("api_processes.process", slug=p.slug),
        "positions": link("api_positions.positions", slug=p.slug),
        "outcomes": link("api_endorsements.outcomes", slug=p.slug),
        "signatures": link("api_signing.signatures", slug=p.slug),
        "dossier": link("api_dossier.dossier", slug=p.slug),
    }
    return {
        **process_summary(p),
        "purpose": p.purpose,
        "created_at": p.created_at,
        "concluded_at": p.concluded_at,
        "themes": sorted(t.name for t in p.themes),
        "rule": {
            "rule": p.decision_rule.value,
            "quorum": p.quorum,
            "qualified_share_percent": p.qualified_share_percent,
            "hide_tally_until_closed": p.hide_tally_until_closed,
            "require_clearance": p.require_clearance,
        },
        "participants": [
            organisation(x.organisation)
            for x in sorted(p.current_participations, key=lambda x: x.organisation.name)
        ],
        "facilitators": sorted(name for f in p.facilitators if (name := person(f.user))),
        "rounds": [round_(r) for r in sorted(p.rounds, key=lambda r: r.sequence)],
        "positions": [{"id": x.id, "title": x.title} for x in positions],
        "_links": links,
    }


def version_summary(v: Version) -> dict[str, Any]:
    return {
        "id": v.id,
        "number": v.number,
        "sha256": v.sha256,
        "created_at": v.created_at,
        "change_summary": v.change_summary,
    }


def version(p: Process, v: Version) -> dict[str, Any]:
    values = {"slug": p.slug, "position_id": v.position_id, "number": v.number}
    return {
        **version_summary(v),
        "position_id": v.position_id,
        "text": v.body,
        "paragraphs": [{"anchor": x.anchor, "text": x.text} for x in v.paragraphs],
        "_links": {
            "self": link("api_positions.version", **values),
            "markdown": link("api_positions.version_markdown", **values),
            "comments": link("api_positions.comments", **values),
        },
    }


def position(x: Position) -> dict[str, Any]:
    return {
        "id": x.id,
        "title": x.title,
        "subject": x.subject,
        "addressee": x.addressee,
        "place": x.place,
        "letter_date": x.letter_date,
        "reference": x.reference,
        "created_at": x.created_at,
        "versions": [version_summary(v) for v in x.versions],
    }


def comment(c: Comment, numbers: dict[int, int]) -> dict[str, Any]:
    return {
        "id": c.id,
        "version_number": numbers.get(c.version_id, 0),
        "paragraph_anchor": c.paragraph_anchor,
        "parent_id": c.parent_id,
        "round_id": c.round_id,
        "author": person(c.author) if c.author_id is not None else None,
        "organisation": c.organisation.slug if c.organisation_id is not None else None,
        "author_role": c.author_role,
        "body": None if c.deleted_at is not None else c.body,
        "created_at": c.created_at,
        "edited_at": c.edited_at,
        "deleted_at": c.deleted_at,
    }


def amendment(a: Amendment, numbers: dict[int, int]) -> dict[str, Any]:
    return {
        "number": a.number,
        "version_number": numbers.get(a.version_id, 0),
        "round_id": a.round_id,
        "organisation": a.organisation.slug,
        "author": person(a.author) if a.author_id is not None else None,
        "paragraph_anchor": a.paragraph_anchor,
        "end_anchor": a.end_anchor,
        "insert_after_anchor": a.insert_after_anchor,
        "original_text": a.original_text,
        "proposed_text": a.proposed_text,
        "rationale": a.rationale,
        "state": a.state.value,
        "adopted_text": a.adopted_text,
        "decision_reason": a.decision_reason,
        "decided_by": person(a.decided_by) if a.decided_by_id is not None else None,
        "decided_at": a.decided_at,
        "withdrawn_at": a.withdrawn_at,
        "created_at": a.created_at,
    }


def stance(s: Stance, counts: bool) -> dict[str, Any]:
    return {
        "id": s.id,
        "organisation": s.organisation.slug,
        "kind": s.kind.value,
        "text": s.text,
        "version_id": s.version_id,
        "counts": counts,
        "cast_by": s.cast_by_name,
        "cast_by_title": s.cast_by_title,
        "substitute_for": s.substitute_for_name,
        "cast_at": s.cast_at,
    }


def clearance(c: Clearance) -> dict[str, Any]:
    return {
        "id": c.id,
        "organisation": c.organisation.slug,
        "decision": c.decision.value,
        "remarks": c.remarks,
        "version_id": c.version_id,
        "cleared_by": c.cleared_by_name,
        "created_at": c.created_at,
    }


def outcome(o: Outcome, sha256: str | None) -> dict[str, Any]:
    return {
        "round_id": o.round_id,
        "version_id": o.version_id,
        "version_sha256": sha256,
        "decision_rule": o.decision_rule,
        "quorum": o.quorum,
        "qualified_share_percent": o.qualified_share_percent,
        "participants": o.participants,
        "endorsed": o.endorsed,
        "with_reservations": o.with_reservations,
        "abstained": o.abstained,
        "objected": o.objected,
        "no_response": o.no_response,
        "adopted": o.adopted,
        "reasons": [r for r in o.reasons.split(",") if r],
        "fixed_at": o.fixed_at,
        "statement": o.statement,
        "review_on": o.review_on,
    }


def signature(s: CoSignature, verified: bool, reason: str, key_revoked: bool) -> dict[str, Any]:
    return {
        "id": s.id,
        "round_id": s.round_id,
        "organisation": s.organisation.slug,
        "version_id": s.version_id,
        "signer": s.signer_name,
        "signer_title": s.signer_title,
        "custody": s.custody.value,
        "key_fingerprint": s.key.fingerprint,
        "signed_at": s.signed_at,
        "verified": verified,
        "reason": reason,
        "key_revoked": key_revoked,
    }
