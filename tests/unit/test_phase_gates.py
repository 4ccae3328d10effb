"""Phase gates: every action × round type × role × time, against an explicit table."""

from __future__ import annotations

from datetime import timedelta

import pytest

from consensus.extensions import db
from consensus.models import MembershipRole, RoundState, RoundType, utcnow
from consensus.permissions import Action, gate
from tests.factories import make_membership, make_organisation, make_process, make_user

D, C, CL, E, S = (
    RoundType.DRAFTING,
    RoundType.CONSULTATION,
    RoundType.CLEARANCE,
    RoundType.ENDORSEMENT,
    RoundType.SIGNING,
)
REP, OFF, OBS = MembershipRole.REPRESENTATIVE, MembershipRole.OFFICIAL, MembershipRole.OBSERVER

# The specification, written out by hand: which (round type, role) may do each action.
ALLOWED = {
    Action.COMMENT: {(D, REP), (D, OFF), (C, REP), (C, OFF)},
    Action.PROPOSE_AMENDMENT: {(C, REP), (C, OFF)},
    Action.MARK_INPUT_COMPLETE: {(D, REP), (D, OFF), (C, REP), (C, OFF)},
    Action.EDIT_DRAFT: {(D, OFF)},
    Action.CLEAR: {(CL, OFF)},
    Action.ENDORSE: {(E, REP)},
    Action.SIGN: {(S, REP)},
}


@pytest.fixture
def world(app):
    facilitator = make_user(is_facilitator=True)
    inside, outside = make_organisation("inside"), make_organisation("outside")
    people = {}
    for role in (REP, OFF, OBS):
        people[role] = make_user()
        make_membership(people[role], inside, role)
    stranger = make_user()
    make_membership(stranger, outside, REP)
    return facilitator, inside, outside, people, stranger


def _process_with_open_round(facilitator, inside, round_type):
    now = utcnow()
    process = make_process(
        facilitator,
        [inside],
        rounds=[(round_type, now - timedelta(hours=1), now + timedelta(hours=1))],
    )
    round_ = process.rounds[0]
    round_.state = RoundState.OPEN
    db.session.commit()
    return process, round_


@pytest.mark.parametrize("round_type", list(RoundType))
def test_every_action_role_and_moment(world, round_type):
    facilitator, inside, outside, people, stranger = world
    process, round_ = _process_with_open_round(facilitator, inside, round_type)
    during = utcnow()
    after = round_.closes_at + timedelta(minutes=1)  # the form was opened before the deadline
    for action in Action:
        for role, person in people.items():
            expected = (round_type, role) in ALLOWED[action]
            assert bool(gate(person, action, process, inside, at=during)) is expected, (
                action,
                role,
                round_type,
            )
            assert not gate(person, action, process, inside, at=after), (action, role)
        # Someone from an organisation that does not take part never may.
        assert not gate(stranger, action, process, outside, at=during)
        # Acting for an organisation you do not belong to never works.
        assert not gate(people[REP], action, process, outside, at=during)


@pytest.mark.parametrize("round_type", list(RoundType))
def test_nothing_is_allowed_before_a_round_opens(world, round_type):
    facilitator, inside, _, people, _ = world
    now = utcnow()
    process = make_process(
        facilitator,
        [inside],
        rounds=[(round_type, now + timedelta(hours=1), now + timedelta(hours=2))],
    )
    assert process.rounds[0].state == RoundState.SCHEDULED
    for action in Action:
        for person in people.values():
            decision = gate(person, action, process, inside)
            assert not decision
            assert decision.reason


def test_a_closed_round_refuses_even_a_valid_member(world):
    facilitator, inside, _, people, _ = world
    process, round_ = _process_with_open_round(facilitator, inside, RoundType.ENDORSEMENT)
    assert gate(people[REP], Action.ENDORSE, process, inside)
    round_.state = RoundState.CLOSED
    db.session.commit()
    decision = gate(people[REP], Action.ENDORSE, process, inside)
    assert not decision and "ronde" in decision.reason.lower()


def test_expired_mandate_refuses(world):
    facilitator, inside, _, people, _ = world
    process, _ = _process_with_open_round(facilitator, inside, RoundType.ENDORSEMENT)
    membership = people[REP].memberships[0]
    membership.valid_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert not gate(people[REP], Action.ENDORSE, process, inside)


def test_facilitator_may_edit_the_draft_but_not_act_for_organisations(world):
    facilitator, inside, _, _, _ = world
    process, _ = _process_with_open_round(facilitator, inside, RoundType.DRAFTING)
    assert gate(facilitator, Action.EDIT_DRAFT, process, None)
    assert not gate(facilitator, Action.COMMENT, process, inside)
