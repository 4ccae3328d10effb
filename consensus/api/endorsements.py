"""Stances and the tally of an endorsement round, clearance, and the outcomes. A stance is
cast for an organisation through the same service and gate as the page: only someone who
holds that organisation's mandate now (a representative, or an active substitute)."""

from __future__ import annotations

from typing import Any

from flask import Response, abort
from flask_babel import gettext as _
from flask_login import current_user

from consensus import permissions
from consensus.api import present, schemas
from consensus.api.core import blueprint, refuse
from consensus.api.positions import organisation_by_slug
from consensus.api.usecase import perform
from consensus.extensions import db
from consensus.models import ClearanceDecision, Process, Round, RoundType, StanceKind, Version
from consensus.services import endorsements as service
from consensus.web.pages import api as cached
from consensus.web.processes import load_round
from consensus.web.utils import too_late

bp = blueprint("endorsements", "Stances and the tally, clearance, outcomes.")
_STANCES_SCHEMA = schemas.StancesSchema()


def _round_of_type(slug: str, round_id: int, kind: RoundType) -> tuple[Process, Round]:
    process = present.load_readable_process(slug)
    found = load_round(process, round_id)
    if found.type != kind:
        abort(404)
    return process, found


def sees_every_stance(process: Process, round_: Round) -> bool:
    """The page's rule (permissions.can_see_tally); a published process shows every stance
    on its public board."""
    return process.is_published or permissions.can_see_tally(current_user, process, round_)


def stances_sight(process: Process, round_: Round) -> cached.StancesKey:
    """What of the round's stances this reader sees: every stance, or (the process hides
    the tally until the round closes) their own organisations' (valid memberships)."""
    if sees_every_stance(process, round_):
        return cached.StancesKey(round_.id, True, None)
    mine = frozenset(m.organisation_id for m in permissions.valid_memberships(current_user))
    return cached.StancesKey(round_.id, False, mine)


def stances_data(process: Process, round_: Round) -> dict[str, Any]:
    return _stances(process, round_, stances_sight(process, round_))


def _stances(process: Process, round_: Round, sight: cached.StancesKey) -> dict[str, Any]:
    """The stances for a reader's sight (no reader needed: it may run in the cache)."""
    complete = sight.complete
    mine = sight.own_organisation_ids or frozenset()
    tally = service.round_tally(process, round_)
    rows = [
        present.stance(row.stance, row.counts)
        for row in tally.rows
        if row.stance is not None and (complete or row.organisation.id in mine)
    ]
    t = tally.result.tally
    return {
        "round": present.round_(round_),
        "complete": complete,
        "tally": (
            {
                "participants": t.participants,
                "endorsed": t.endorsed,
                "with_reservations": t.with_reservations,
                "abstained": t.abstained,
                "objected": t.objected,
                "no_response": t.no_response,
                "adopted": tally.result.adopted,
                "reasons": [r.value for r in tally.result.reasons],
            }
            if complete
            else None
        ),
        "stances": rows,
    }


@bp.get("/processes/<slug>/rounds/<int:round_id>/stances")
@bp.response(200, schemas.StancesSchema)
def stances(slug: str, round_id: int) -> Response:
    """Each organisation's current stance and the tally so far (hidden until the round
    closes when the process says so: then only your own organisations' stances)."""
    process, found = _round_of_type(slug, round_id, RoundType.ENDORSEMENT)
    sight = stances_sight(process, found)
    return cached.answer(
        cached.STANCES,
        sight,
        lambda: cached.encode(_STANCES_SCHEMA, _stances(process, found, sight)),
    )


@bp.post("/processes/<slug>/rounds/<int:round_id>/stances")
@bp.arguments(schemas.StanceInputSchema, as_kwargs=True)
@bp.response(201, schemas.StanceSchema)
def cast(slug: str, round_id: int, organisation: str, kind: str, text: str) -> dict[str, Any]:
    """Cast (or change) the stance of an organisation whose mandate you hold."""
    process, found = _round_of_type(slug, round_id, RoundType.ENDORSEMENT)
    late = too_late(found, _("Your stance was not recorded."))
    if late:
        raise refuse(409, late)
    return perform(
        service.cast_stance,
        found,
        organisation=organisation_by_slug(organisation),
        kind=StanceKind(kind),
        text=text,
        present=lambda s: present.stance(s, True),
    )


@bp.get("/processes/<slug>/rounds/<int:round_id>/clearances")
@bp.response(200, schemas.ClearancesSchema)
def clearances(slug: str, round_id: int) -> dict[str, Any]:
    """Each organisation's current official clearance of the round's version."""
    process, found = _round_of_type(slug, round_id, RoundType.CLEARANCE)
    current = service.current_clearances(found)
    return {
        "round": present.round_(found),
        "clearances": [
            present.clearance(current[p.organisation_id])
            for p in process.current_participations
            if p.organisation_id in current
        ],
    }


@bp.post("/processes/<slug>/rounds/<int:round_id>/clearances")
@bp.arguments(schemas.ClearanceInputSchema, as_kwargs=True)
@bp.response(201, schemas.ClearanceSchema)
def clear(
    slug: str, round_id: int, organisation: str, decision: str, remarks: str
) -> dict[str, Any]:
    """Give (or refuse, with remarks) official clearance for your organisation."""
    _process, found = _round_of_type(slug, round_id, RoundType.CLEARANCE)
    late = too_late(found, _("Your clearance was not recorded."))
    if late:
        raise refuse(409, late)
    return perform(
        service.record_clearance,
        found,
        organisation=organisation_by_slug(organisation),
        decision=ClearanceDecision(decision),
        remarks=remarks,
        present=present.clearance,
    )


@bp.get("/processes/<slug>/outcomes")
@bp.response(200, schemas.OutcomesSchema)
def outcomes(slug: str) -> dict[str, Any]:
    """The outcome of every closed endorsement round: tally, adopted or not, the
    facilitator's statement."""
    process = present.load_readable_process(slug)
    rows = []
    for outcome in service.outcomes_of(process):
        version = db.session.get(Version, outcome.version_id) if outcome.version_id else None
        rows.append(present.outcome(outcome, version.sha256 if version else None))
    return {"outcomes": rows}
