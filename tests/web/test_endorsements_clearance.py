"""Official clearance (ambtelijk akkoord), and the endorsement round that waits for it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import Clearance, ClearanceDecision, RoundType
from consensus.services import endorsements as service
from consensus.services import processes
from consensus.services.errors import DomainError, Forbidden
from tests.endorsement_support import make_world, open_now


def clearance_world(**settings):
    return make_world(round_types=(RoundType.CLEARANCE, RoundType.ENDORSEMENT), **settings)


def path(w, what="clearance"):
    base = f"/processes/{w.process.slug}/rounds/{w.round.id}"
    return f"{base}/clearance" if what == "clearance" else f"{base}/clearances"


def test_an_official_clears_and_can_change_it_with_history(app, login_as):
    w = clearance_world()
    org = w.orgs[0]
    client = login_as(w.officials[org.id])
    assert "Ambtelijk akkoord vastleggen" in client.get(path(w)).text
    response = client.post(
        path(w, "post"),
        data={
            "organisation_id": org.id,
            "decision": "not_cleared",
            "remarks": "Alinea 2 klopt niet.",
        },
    )
    assert response.status_code == 302
    client.post(path(w, "post"), data={"organisation_id": org.id, "decision": "cleared"})
    rows = list(db.session.execute(select(Clearance).order_by(Clearance.id)).scalars())
    assert [r.decision for r in rows] == [ClearanceDecision.NOT_CLEARED, ClearanceDecision.CLEARED]
    assert rows[0].superseded_at is not None
    page = client.get(path(w)).text
    assert "Alinea 2 klopt niet." in page
    statuses = processes.response_status(w.process, w.round)
    assert [s.detail for s in statuses if s.acted] == ["Ambtelijk akkoord"]


def test_not_clearing_needs_remarks(app, login_as):
    w = clearance_world()
    org = w.orgs[0]
    response = login_as(w.officials[org.id]).post(
        path(w, "post"), data={"organisation_id": org.id, "decision": "not_cleared"}
    )
    assert response.status_code == 422
    assert db.session.execute(select(Clearance)).first() is None


def test_representatives_and_other_organisations_cannot_clear(app, login_as):
    w = clearance_world()
    a, b = w.orgs[0], w.orgs[1]
    assert (
        login_as(w.reps[a.id])
        .post(path(w, "post"), data={"organisation_id": a.id, "decision": "cleared"})
        .status_code
        == 403
    )
    response = login_as(w.officials[a.id]).post(
        path(w, "post"), data={"organisation_id": b.id, "decision": "cleared"}
    )
    assert response.status_code == 422  # not a choice this official has
    with pytest.raises(Forbidden):
        service.record_clearance(
            w.round, actor=w.officials[a.id], organisation=b, decision=ClearanceDecision.CLEARED
        )
    db.session.rollback()
    assert db.session.execute(select(Clearance)).first() is None


def test_endorsement_waits_until_every_organisation_cleared(app):
    w = clearance_world(require_clearance=True)
    endorsement = w.process.rounds[1]
    for org in w.orgs[:-1]:
        service.record_clearance(
            w.round, actor=w.officials[org.id], organisation=org, decision=ClearanceDecision.CLEARED
        )
    db.session.commit()
    processes.close_round(w.round, actor=w.facilitator)
    db.session.commit()
    with pytest.raises(DomainError, match=w.orgs[-1].name):
        open_now(endorsement, w.facilitator)
    db.session.rollback()


def test_endorsement_opens_when_all_cleared(app):
    w = clearance_world(require_clearance=True)
    endorsement = w.process.rounds[1]
    for org in w.orgs:
        service.record_clearance(
            w.round, actor=w.officials[org.id], organisation=org, decision=ClearanceDecision.CLEARED
        )
    db.session.commit()
    processes.close_round(w.round, actor=w.facilitator)
    db.session.commit()
    open_now(endorsement, w.facilitator)
    assert endorsement.state.value == "open"
    assert endorsement.version_id == w.round.version_id
