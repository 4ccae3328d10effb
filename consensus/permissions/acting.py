"""Who can act for organisation X in round R: the rule book's one query.

The gate answers for one person (`core.may_act_for`); this module answers the same rule for
many people at once, in SQL, for the dashboard, the facilitator's reminders, the notices
when a new version moves a round and (later) e-mail. Acting in a round means doing the
round's own action (ROUND_ACTIONS), so the people are:

- holders of a valid membership whose role may do that action (ACTION_ROLES): officials in a
  clearance round, representatives in an endorsement or signing round, officials and
  representatives in drafting and consultation rounds;
- for actions that need the mandate, active substitutes: a delegation not revoked and inside
  its period, the substitute still a member, and the delegator still a representative then
  (a mandate cannot outlive its source, as in `core.mandate_for`).

Only active accounts act. `tests/web/test_who_can_act.py` holds the gate and this query equal
for every member and round type.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import aliased

from consensus.extensions import db
from consensus.models import (
    Delegation,
    Membership,
    MembershipRole,
    Organisation,
    Round,
    RoundType,
    User,
    utcnow,
)
from consensus.permissions.core import (
    ACTION_ROLES,
    MANDATE_ACTIONS,
    Action,
    AnyUser,
    may_act_for,
)

# What "acting in a round" means, per round type: the action a to-do item asks for.
ROUND_ACTIONS: dict[RoundType, Action] = {
    RoundType.DRAFTING: Action.MARK_INPUT_COMPLETE,
    RoundType.CONSULTATION: Action.MARK_INPUT_COMPLETE,
    RoundType.CLEARANCE: Action.CLEAR,
    RoundType.ENDORSEMENT: Action.ENDORSE,
    RoundType.SIGNING: Action.SIGN,
}


def membership_valid_at(membership: type[Membership], moment: datetime) -> ColumnElement[bool]:
    """SQL form of Membership.is_valid_at: from valid_from (inclusive) to valid_until
    (exclusive), open ends allowed."""
    return and_(
        or_(membership.valid_from.is_(None), membership.valid_from <= moment),
        or_(membership.valid_until.is_(None), membership.valid_until > moment),
    )


def _roles_for(action: Action) -> frozenset[MembershipRole]:
    return ACTION_ROLES[action]


def _members_acting(
    organisation_ids: set[int], roles: set[MembershipRole], moment: datetime
) -> list[tuple[int, int, MembershipRole]]:
    """(organisation_id, user_id, role) of valid memberships of active accounts."""
    if not organisation_ids or not roles:
        return []
    rows = db.session.execute(
        select(Membership.organisation_id, Membership.user_id, Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.organisation_id.in_(organisation_ids),
            Membership.role.in_(roles),
            membership_valid_at(Membership, moment),  # type: ignore[arg-type]
            User.active.is_(True),
        )
    ).all()
    return [(org_id, user_id, role) for org_id, user_id, role in rows]


def active_substitutes(
    organisation_ids: Iterable[int], moment: datetime, *, delegate_id: int | None = None
) -> set[tuple[int, int]]:
    """(organisation_id, user_id) of substitutes whose delegation counts at `moment`: the
    SQL form of core.active_delegation (one query for many organisations)."""
    ids = set(organisation_ids)
    if not ids:
        return set()
    delegator_membership = aliased(Membership)
    delegate_membership = aliased(Membership)
    delegator = aliased(User)
    delegate = aliased(User)
    statement = (
        select(Delegation.organisation_id, Delegation.delegate_id)
        .join(delegator, delegator.id == Delegation.delegator_id)
        .join(delegate, delegate.id == Delegation.delegate_id)
        .where(
            Delegation.organisation_id.in_(ids),
            Delegation.revoked_at.is_(None),
            Delegation.valid_from <= moment,
            Delegation.valid_until > moment,
            delegator.active.is_(True),
            delegate.active.is_(True),
            select(delegator_membership.id)
            .where(
                delegator_membership.user_id == Delegation.delegator_id,
                delegator_membership.organisation_id == Delegation.organisation_id,
                delegator_membership.role == MembershipRole.REPRESENTATIVE,
                membership_valid_at(delegator_membership, moment),  # type: ignore[arg-type]
            )
            .exists(),
            select(delegate_membership.id)
            .where(
                delegate_membership.user_id == Delegation.delegate_id,
                delegate_membership.organisation_id == Delegation.organisation_id,
                membership_valid_at(delegate_membership, moment),  # type: ignore[arg-type]
            )
            .exists(),
        )
    )
    if delegate_id is not None:
        statement = statement.where(Delegation.delegate_id == delegate_id)
    return {(org_id, user_id) for org_id, user_id in db.session.execute(statement)}


def who_can_act_many(
    pairs: Iterable[tuple[Round, Organisation | int]], at: datetime | None = None
) -> dict[tuple[int, int], set[int]]:
    """{(round_id, organisation_id): user ids who can act} for many pairs in at most two
    queries (memberships, delegations), however many rounds and organisations. An
    organisation may be given by its id."""
    moment = at or utcnow()
    wanted: dict[tuple[int, int], Action] = {
        (round_.id, organisation if isinstance(organisation, int) else organisation.id): (
            ROUND_ACTIONS[round_.type]
        )
        for round_, organisation in pairs
    }
    result: dict[tuple[int, int], set[int]] = {key: set() for key in wanted}
    if not wanted:
        return result
    organisation_ids = {org_id for _, org_id in wanted}
    roles = {role for action in set(wanted.values()) for role in _roles_for(action)}
    by_organisation: dict[int, list[tuple[int, MembershipRole]]] = {}
    for org_id, user_id, role in _members_acting(organisation_ids, roles, moment):
        by_organisation.setdefault(org_id, []).append((user_id, role))
    mandate_orgs = {org_id for (_, org_id), action in wanted.items() if action in MANDATE_ACTIONS}
    substitutes: dict[int, set[int]] = {}
    for org_id, user_id in active_substitutes(mandate_orgs, moment):
        substitutes.setdefault(org_id, set()).add(user_id)
    for (round_id, org_id), action in wanted.items():
        allowed = _roles_for(action)
        people = {user_id for user_id, role in by_organisation.get(org_id, []) if role in allowed}
        if action in MANDATE_ACTIONS:
            people |= substitutes.get(org_id, set())
        result[(round_id, org_id)] = people
    return result


def who_can_act(organisation: Organisation, round_: Round, at: datetime | None = None) -> set[int]:
    """The ids of the people who can act for `organisation` in `round_` (see the module)."""
    return who_can_act_many([(round_, organisation)], at)[(round_.id, organisation.id)]


def substituting_for(user: AnyUser | None, at: datetime | None = None) -> frozenset[int]:
    """The organisations this person holds the mandate of as an active substitute (and
    does not represent in their own right). No query for someone who represents every
    organisation they belong to: only a member without the mandate can be a substitute."""
    moment = at or utcnow()
    if not isinstance(user, User) or not user.is_authenticated or not user.active:
        return frozenset()
    candidates = {
        m.organisation_id
        for m in user.memberships
        if m.is_valid_at(moment) and m.role != MembershipRole.REPRESENTATIVE
    }
    return frozenset(
        org_id for org_id, _ in active_substitutes(candidates, moment, delegate_id=user.id)
    )


def can_act_in(
    user: AnyUser | None,
    pairs: Iterable[tuple[Round, Organisation]],
    at: datetime | None = None,
) -> set[tuple[int, int]]:
    """The (round_id, organisation_id) pairs among `pairs` this person can act in: the
    person side of who_can_act_many, for one viewer (the dashboard).

    Roles come from the memberships already loaded with the user; only when a round needs
    the mandate and the person is not a representative there does one query look for
    delegations to them (core.may_act_for would ask once per organisation)."""
    moment = at or utcnow()
    pairs = list(pairs)
    if not isinstance(user, User) or not user.is_authenticated or not user.active:
        return set()
    memberships = {m.organisation_id: m for m in user.memberships if m.is_valid_at(moment)}
    if any(ROUND_ACTIONS[round_.type] in MANDATE_ACTIONS for round_, _ in pairs):
        delegated = substituting_for(user, moment)
    else:
        delegated = frozenset()
    acting = set()
    for round_, organisation in pairs:
        membership = memberships.get(organisation.id)
        if membership is None:
            continue
        action = ROUND_ACTIONS[round_.type]
        if membership.role in _roles_for(action) or (
            action in MANDATE_ACTIONS and organisation.id in delegated
        ):
            acting.add((round_.id, organisation.id))
    return acting


def may_act_in_round(
    user: AnyUser | None, organisation: Organisation, round_: Round, at: datetime | None = None
) -> bool:
    """One person, one round: may they do the round's action for this organisation?"""
    return may_act_for(user, organisation, ROUND_ACTIONS[round_.type], at)


def who_takes_part_many(
    organisation_ids: Iterable[int], at: datetime | None = None
) -> dict[int, set[int]]:
    """{organisation_id: user ids} of the people who take part in a process for each
    organisation: those who may contribute to its text (the drafting action's roles,
    officials and representatives) with a valid membership and an active account. News about
    a process (a new version, its outcome, its publication) goes to them; one query."""
    ids = set(organisation_ids)
    result: dict[int, set[int]] = {org_id: set() for org_id in ids}
    roles = set(_roles_for(ROUND_ACTIONS[RoundType.DRAFTING]))
    for org_id, user_id, _ in _members_acting(ids, roles, at or utcnow()):
        result[org_id].add(user_id)
    return result
