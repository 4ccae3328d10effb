"""The core of the rule book: memberships, the mandate, processes and the phase gate.

Predicates are named can_* and take the acting user first. `require()` turns a refusal
into a 403 so a view never forgets to stop.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from flask import abort
from flask_babel import lazy_gettext as _l
from flask_login import AnonymousUserMixin
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import (
    Delegation,
    Membership,
    MembershipRole,
    Organisation,
    Process,
    ProcessState,
    Round,
    RoundState,
    RoundType,
    User,
    utcnow,
)

AnyUser = User | AnonymousUserMixin


def require(allowed: bool) -> None:
    """Stop the request with 403 unless the predicate allowed it."""
    if not allowed:
        abort(403)


def _is_user(user: AnyUser | None) -> bool:
    # Flask-Login's `current_user` is a proxy that looks the user up again on every
    # attribute: resolved once here (a page asks this some fifty times).
    real = getattr(user, "_get_current_object", None)
    if real is not None:
        user = real()
    return isinstance(user, User) and user.is_authenticated and user.active


def can_administer(user: AnyUser | None) -> bool:
    """Only platform administrators manage organisations, people and memberships."""
    return _is_user(user) and bool(user.is_admin)  # type: ignore[union-attr]


def valid_memberships(user: AnyUser | None, at: datetime | None = None) -> list[Membership]:
    """The memberships that count at a moment (default: now)."""
    if not _is_user(user):
        return []
    moment = at or utcnow()
    return [m for m in user.memberships if m.is_valid_at(moment)]  # type: ignore[union-attr]


def membership_in(
    user: AnyUser | None, organisation: Organisation, at: datetime | None = None
) -> Membership | None:
    for membership in valid_memberships(user, at):
        if membership.organisation_id == organisation.id:
            return membership
    return None


@dataclass(frozen=True)
class Mandate:
    """How someone holds an organisation's mandate: their own representative membership,
    or (as a substitute) a delegation from a representative."""

    membership: Membership
    delegation: Delegation | None = None

    @property
    def is_substitute(self) -> bool:
        return self.delegation is not None


def active_delegation(
    user: AnyUser | None, organisation: Organisation, at: datetime | None = None
) -> Delegation | None:
    """A delegation to `user` that counts at the moment: not revoked, inside its period,
    and its delegator still a representative then (a mandate cannot outlive its source)."""
    if not _is_user(user):
        return None
    moment = at or utcnow()
    candidates = db.session.execute(
        select(Delegation)
        .where(
            Delegation.delegate_id == user.id,  # type: ignore[union-attr]
            Delegation.organisation_id == organisation.id,
            Delegation.revoked_at.is_(None),
            Delegation.valid_from <= moment,
            Delegation.valid_until > moment,
        )
        .order_by(Delegation.valid_until.desc(), Delegation.id)
    ).scalars()
    for delegation in candidates:
        if _representative_membership(delegation.delegator, organisation, moment) is not None:
            return delegation
    return None


def _representative_membership(
    user: AnyUser | None, organisation: Organisation, moment: datetime
) -> Membership | None:
    membership = membership_in(user, organisation, moment)
    if membership is not None and membership.role == MembershipRole.REPRESENTATIVE:
        return membership
    return None


def mandate_for(
    user: AnyUser | None, organisation: Organisation, at: datetime | None = None
) -> Mandate | None:
    """The one place that decides who holds an organisation's mandate at a moment.

    A representative membership valid then holds it. Otherwise a member of the same
    organisation holds it as a substitute through an active delegation. Nobody else.
    """
    moment = at or utcnow()
    membership = membership_in(user, organisation, moment)
    if membership is None:
        return None
    if membership.role == MembershipRole.REPRESENTATIVE:
        return Mandate(membership)
    delegation = active_delegation(user, organisation, moment)
    return Mandate(membership, delegation) if delegation is not None else None


def holds_mandate(
    user: AnyUser | None, organisation: Organisation, at: datetime | None = None
) -> bool:
    """A representative membership, or an active delegation, valid at the moment of acting."""
    return mandate_for(user, organisation, at) is not None


def can_view_organisation(user: AnyUser | None, organisation: Organisation) -> bool:
    """Members see their own organisation; administrators see every organisation."""
    return can_administer(user) or membership_in(user, organisation) is not None


# --- Processes and phase gates ----------------------------------------------------------------
#
# One table says, for every action inside a process, which round type must be open and
# which membership role may act for an organisation. `gate()` applies it; views,
# templates and services all ask `gate()` (or a can_* wrapper), nothing else decides.


class Action(enum.StrEnum):
    COMMENT = "comment"
    PROPOSE_AMENDMENT = "propose_amendment"
    MARK_INPUT_COMPLETE = "mark_input_complete"
    EDIT_DRAFT = "edit_draft"
    CLEAR = "clear"
    ENDORSE = "endorse"
    SIGN = "sign"


ACTION_ROUND_TYPES: dict[Action, frozenset[RoundType]] = {
    Action.COMMENT: frozenset({RoundType.DRAFTING, RoundType.CONSULTATION}),
    Action.PROPOSE_AMENDMENT: frozenset({RoundType.CONSULTATION}),
    Action.MARK_INPUT_COMPLETE: frozenset({RoundType.DRAFTING, RoundType.CONSULTATION}),
    Action.EDIT_DRAFT: frozenset({RoundType.DRAFTING}),
    Action.CLEAR: frozenset({RoundType.CLEARANCE}),
    Action.ENDORSE: frozenset({RoundType.ENDORSEMENT}),
    Action.SIGN: frozenset({RoundType.SIGNING}),
}

_WRITERS = frozenset({MembershipRole.OFFICIAL, MembershipRole.REPRESENTATIVE})
ACTION_ROLES: dict[Action, frozenset[MembershipRole]] = {
    Action.COMMENT: _WRITERS,
    Action.PROPOSE_AMENDMENT: _WRITERS,
    Action.MARK_INPUT_COMPLETE: _WRITERS,
    Action.EDIT_DRAFT: frozenset({MembershipRole.OFFICIAL}),
    Action.CLEAR: frozenset({MembershipRole.OFFICIAL}),
    # Endorsing and signing need the organisation's mandate: a representative, or a
    # substitute through a delegation (see mandate_for).
    Action.ENDORSE: frozenset({MembershipRole.REPRESENTATIVE}),
    Action.SIGN: frozenset({MembershipRole.REPRESENTATIVE}),
}
MANDATE_ACTIONS = frozenset({Action.ENDORSE, Action.SIGN})


@dataclass(frozen=True)
class Gate:
    """The answer to "may I, now?" with a reason a person can read when it is no."""

    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


def _no(message: str) -> Gate:
    return Gate(False, message)


def is_facilitator_of(user: AnyUser | None, process: Process) -> bool:
    """Facilitators of this process run it; the capability alone is not enough."""
    return _is_user(user) and user.id in process.facilitator_ids  # type: ignore[union-attr]


def can_create_process(user: AnyUser | None) -> bool:
    return _is_user(user) and bool(user.is_facilitator)  # type: ignore[union-attr]


def can_manage_process(user: AnyUser | None, process: Process) -> bool:
    return is_facilitator_of(user, process) and process.state in {
        ProcessState.DRAFT,
        ProcessState.ACTIVE,
    }


def can_view_process(user: AnyUser | None, process: Process) -> bool:
    """Facilitators, administrators and members of participating organisations.

    Anyone else gets a 404 from the views, so a participants-only process does not
    even leak its existence. `permissions.processes.viewable_clause` is the same rule as
    SQL for lists (a property test holds them equal).
    """
    return can_administer(user) or is_involved_in(user, process)


def is_involved_in(user: AnyUser | None, process: Process, at: datetime | None = None) -> bool:
    """Its facilitators, and members (a membership valid at `at`, default now) of an
    organisation that takes part (a removed participation no longer counts).
    `permissions.processes.involved_clause` is the same rule as SQL for lists."""
    if not _is_user(user):
        return False
    if is_facilitator_of(user, process):
        return True
    return bool(process.participating(m.organisation_id for m in valid_memberships(user, at)))


def can_see_tally(user: AnyUser | None, process: Process, round_: Round) -> bool:
    """Everyone who may see the process sees the stances of others, unless the process
    hides them until the round closes (then each organisation sees only its own)."""
    if not can_view_process(user, process):
        return False
    return round_.state == RoundState.CLOSED or not process.hide_tally_until_closed


def acting_organisations(
    user: AnyUser | None, process: Process, action: Action, at: datetime | None = None
) -> list[Organisation]:
    """The participating organisations this user may do `action` for, by role (and, for
    actions that need the mandate, by delegation)."""
    memberships = valid_memberships(user, at)
    participants = process.participating(m.organisation_id for m in memberships)
    return [
        m.organisation
        for m in memberships
        if m.organisation_id in participants and may_act_for(user, m.organisation, action, at)
    ]


def gate(
    user: AnyUser | None,
    action: Action,
    process: Process,
    organisation: Organisation | None,
    *,
    round_: Round | None = None,
    at: datetime | None = None,
) -> Gate:
    """May `user`, acting for `organisation`, do `action` in `process` now?

    Checks, in order: the process is active; the right kind of round is open and its
    deadline has not passed (a form opened before the deadline is still refused after
    it); the organisation takes part; the user holds a valid membership with a role
    that may do this (for endorsing and signing: the mandate).
    """
    moment = at or utcnow()
    if not _is_user(user):
        return _no(str(_l("Log in first.")))
    if process.state != ProcessState.ACTIVE:
        return _no(str(_l("This process is not active.")))
    current = round_ if round_ is not None else process.open_round()
    if current is None or current.process_id != process.id or not current.is_open_at(moment):
        return _no(str(_l("No round is open for this now.")))
    if current.type not in ACTION_ROUND_TYPES[action]:
        return _no(str(_l("The open round does not allow this.")))
    if action == Action.EDIT_DRAFT and is_facilitator_of(user, process):
        return Gate(True)
    if organisation is None:
        return _no(str(_l("Choose the organisation you act for.")))
    if not process.participates(organisation.id):
        return _no(str(_l("This organisation does not take part in this process.")))
    membership = membership_in(user, organisation, moment)
    if membership is None:
        return _no(str(_l("You are not a member of this organisation.")))
    if not may_act_for(user, organisation, action, moment):
        if action in MANDATE_ACTIONS:
            return _no(
                str(_l("Only a representative with the organisation's mandate may do this."))
            )
        return _no(str(_l("Your role in this organisation does not allow this.")))
    return Gate(True)


def may_act_for(
    user: AnyUser | None, organisation: Organisation, action: Action, at: datetime | None = None
) -> bool:
    """The one rule "may this person do `action` for this organisation" (the person side
    of the gate, without the process and round checks).

    A valid membership whose role may do it (ACTION_ROLES); for actions that need the
    mandate, a substitute through an active delegation as well (mandate_for).
    `permissions.acting.who_can_act` is the same rule as a query: a test holds them equal.
    """
    moment = at or utcnow()
    membership = membership_in(user, organisation, moment)
    if membership is None:
        return False
    if action in MANDATE_ACTIONS:
        return mandate_for(user, organisation, moment) is not None
    return membership.role in ACTION_ROLES[action]
