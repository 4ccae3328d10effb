"""The rule book's one query, "who can act for organisation X in round R", and every place
that asks it: the gate, the dashboard's to-do list, the facilitator's reminders and the
notices when a new version moves a round. A substitute whose delegation is active sees and
receives what the representative does; an expired delegation, or one whose delegator no
longer holds the mandate, gives nothing anywhere."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from consensus import permissions
from consensus.extensions import db
from consensus.models import Delegation, MembershipRole, Notice, Position, RoundType, utcnow
from consensus.permissions import Action
from consensus.services import positions, processes
from tests.endorsement_support import make_world
from tests.factories import make_membership, make_user


def _substitute(w, org, *, start=None, end=None):
    """An observer of `org` made substitute by its representative (observers act for
    nobody on their own, so whatever they see comes from the delegation)."""
    person = make_user(name=f"Plaatsvervanger {org.name[-1]}")
    make_membership(person, org, MembershipRole.OBSERVER)
    now = utcnow()
    db.session.add(
        Delegation(
            organisation_id=org.id,
            delegator_id=w.reps[org.id].id,
            delegate_id=person.id,
            valid_from=start or now - timedelta(minutes=5),
            valid_until=end or now + timedelta(days=3),
        )
    )
    db.session.commit()
    return person


def _notices(user) -> list[Notice]:
    return list(db.session.execute(select(Notice).where(Notice.user_id == user.id)).scalars())


def _version_change_notices(user) -> list[Notice]:
    """The notices the endorsement service writes when a new version moves a round (the
    notification writers' notices, e.g. "round opened", carry a kind)."""
    return [n for n in _notices(user) if n.kind is None]


def _new_version(w):
    position = db.session.execute(
        select(Position).where(Position.process_id == w.process.id)
    ).scalar_one()
    positions.create_version(
        position,
        w.process,
        actor=w.facilitator,
        body="Eerste alinea.\n\nTweede alinea, aangepast.\n",
        change_summary="Tweede alinea aangepast",
    )
    db.session.commit()


def test_an_active_substitute_sees_the_round_on_the_dashboard(app, login_as):
    w = make_world()
    org = w.orgs[0]
    substitute = _substitute(w, org)
    assert permissions.gate(substitute, Action.ENDORSE, w.process, org)
    todo, _ = processes.dashboard_items(substitute)
    assert [(item.round.id, item.organisation.id) for item in todo] == [(w.round.id, org.id)]
    page = login_as(substitute).get("/").text
    assert "Wat uw actie vraagt" in page and w.round.title in page
    assert "Er wacht nu niets op u." not in page


def test_the_reminder_reaches_the_active_substitute(app, login_as):
    w = make_world(n=2)
    org = w.orgs[0]
    substitute = _substitute(w, org)
    response = login_as(w.facilitator).post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/remind"
    )
    assert response.status_code == 302
    reminded = [n for n in _notices(substitute) if n.round_id == w.round.id]
    assert [n.organisation_id for n in reminded] == [org.id]
    # The representative's inbox also holds the round's opening (notifications): the
    # reminder itself reached them once, for their organisation.
    assert [n.organisation_id for n in _notices(w.reps[org.id]) if n.kind == "reminder"] == [org.id]
    assert "Herinnering van de procesbegeleider" in login_as(substitute).get("/").text


def test_expired_substitutes_and_those_of_a_former_representative_get_nothing(app, login_as):
    w = make_world(n=2)
    a, b = w.orgs
    now = utcnow()
    expired = _substitute(w, a, start=now - timedelta(days=3), end=now - timedelta(days=1))
    orphan = _substitute(w, b)
    # B's representative leaves: the delegation they gave ends with their own mandate.
    w.reps[b.id].memberships[0].valid_until = now - timedelta(seconds=1)
    db.session.commit()
    for person, org in ((expired, a), (orphan, b)):
        assert not permissions.gate(person, Action.ENDORSE, w.process, org)
        assert processes.dashboard_items(person)[0] == []
    login_as(w.facilitator).post(f"/processes/{w.process.slug}/rounds/{w.round.id}/remind")
    _new_version(w)
    assert _notices(expired) == [] and _notices(orphan) == []
    # The one query agrees.
    assert permissions.who_can_act(a, w.round) == {w.reps[a.id].id}
    assert permissions.who_can_act(b, w.round) == set()


def test_the_version_change_notice_follows_the_rule_book(app):
    w = make_world(n=2)
    a, b = w.orgs
    substitute = _substitute(w, a)
    orphan = _substitute(w, b)
    w.reps[b.id].memberships[0].valid_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    _new_version(w)
    assert [n.organisation_id for n in _version_change_notices(substitute)] == [a.id]
    assert _notices(orphan) == []
    assert _version_change_notices(w.reps[b.id]) == []
    # Officials act in no endorsement round: they are not told either.
    assert _version_change_notices(w.officials[a.id]) == []


def test_who_can_act_per_round_type(app):
    w = make_world(n=2, round_types=(RoundType.CLEARANCE, RoundType.ENDORSEMENT))
    a, b = w.orgs
    substitute = _substitute(w, a)
    clearance, endorsement = w.process.rounds
    assert permissions.who_can_act(a, clearance) == {w.officials[a.id].id}
    assert permissions.who_can_act(a, endorsement) == {w.reps[a.id].id, substitute.id}
    many = permissions.who_can_act_many([(clearance, a), (endorsement, a), (endorsement, b)])
    assert many == {
        (clearance.id, a.id): {w.officials[a.id].id},
        (endorsement.id, a.id): {w.reps[a.id].id, substitute.id},
        (endorsement.id, b.id): {w.reps[b.id].id},
    }


def test_who_can_act_for_many_pairs_asks_a_fixed_number_of_queries(app, count_queries):
    counts = []
    for n in (2, 8):
        w = make_world(n=n)
        for org in w.orgs:
            _substitute(w, org)
        pairs = [(w.round, org) for org in w.orgs]
        assert all(org.id and w.round.type for org in w.orgs)  # loaded before counting
        with count_queries() as counter:
            result = permissions.who_can_act_many(pairs)
        assert all(len(people) == 2 for people in result.values())
        counts.append(len(counter.statements))
    assert counts[0] == counts[1], counts


def test_the_gate_and_the_query_agree_for_every_member(app):
    """Every member of every organisation, every round type: gate says yes exactly when
    the person is among those who can act."""
    w = make_world(n=2, round_types=(RoundType.CLEARANCE,))
    a, b = w.orgs
    sub = _substitute(w, a)
    _substitute(w, b, start=utcnow() - timedelta(days=2), end=utcnow() - timedelta(days=1))
    action_for = {
        RoundType.CLEARANCE: Action.CLEAR,
        RoundType.ENDORSEMENT: Action.ENDORSE,
        RoundType.CONSULTATION: Action.MARK_INPUT_COMPLETE,
    }
    people = [*w.reps.values(), *w.officials.values(), sub]
    for round_type in action_for:
        w.round.type = round_type
        db.session.flush()
        for org in (a, b):
            expected = permissions.who_can_act(org, w.round)
            allowed = {
                p.id
                for p in people
                if permissions.gate(p, action_for[round_type], w.process, org, round_=w.round)
            }
            assert allowed == expected, (round_type, org.name)
    db.session.rollback()


def test_a_delegation_that_lapses_changes_the_cached_dashboard(app, login_as):
    """The dashboard's to-do part is cached; a delegation ends at its time without
    anything being written, and the substitute's to-do list follows at once."""
    w = make_world()
    org = w.orgs[0]
    substitute = _substitute(w, org)
    client = login_as(substitute)
    page = client.get("/").text
    assert w.process.title in page and "Heeft het mandaat (als plaatsvervanger)" in page
    delegation = db.session.execute(
        select(Delegation).where(Delegation.delegate_id == substitute.id)
    ).scalar_one()
    delegation.valid_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    page = client.get("/").text
    assert w.process.title not in page and "Er wacht nu niets op u." in page
    assert "Geen mandaat" in page
