"""Rules of drafting as partner organisations do it (issue 21): who sees an organisation's
space of contributions in preparation, who prepares, clears and submits them, and
whether a process takes individual contributions at all."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import (
    Contribution,
    ContributionKind,
    ContributionState,
    DraftingSettings,
    MembershipRole,
    Organisation,
    Process,
    Round,
    User,
)
from consensus.permissions.acting import who_can_act_many
from consensus.permissions.core import (
    Action,
    AnyUser,
    Gate,
    can_manage_process,
    gate,
    membership_in,
)

_WRITERS = {MembershipRole.OFFICIAL, MembershipRole.REPRESENTATIVE}


def individual_contributions_allowed(process: Process) -> bool:
    """Does this process take comments and amendments from individual people (as before),
    or only organisation contributions, cleared inside the organisation? Allowed unless a
    facilitator turned it off (DraftingSettings)."""
    allowed = db.session.execute(
        select(DraftingSettings.individual_contributions).where(
            DraftingSettings.process_id == process.id
        )
    ).scalar_one_or_none()
    return True if allowed is None else bool(allowed)


def may_see_space(user: AnyUser | None, organisation: Organisation) -> bool:
    """Only the organisation's own officials and representatives see its contributions in
    preparation and their internal notes; everyone else (facilitators and administrators
    too) gets a 404, as if there were nothing."""
    if not isinstance(user, User):
        return False
    membership = membership_in(user, organisation)
    return membership is not None and membership.role in _WRITERS


def _action(kind: ContributionKind) -> Action:
    return Action.PROPOSE_AMENDMENT if kind == ContributionKind.AMENDMENT else Action.COMMENT


def may_prepare(
    user: AnyUser | None, process: Process, organisation: Organisation, kind: ContributionKind
) -> Gate:
    """Preparing (and editing) a contribution: whoever may make that kind of input for the
    organisation now (the phase gate: the round, the role)."""
    return gate(user, _action(kind), process, organisation)


def may_clear(user: AnyUser | None, contribution: Contribution, process: Process) -> Gate:
    """An officer of the organisation — an official or representative there — clears a
    contribution, but not the person who wrote it or last changed it (four eyes: the
    organisation speaks once, so two of its people have seen the text)."""
    if contribution.state != ContributionState.DRAFT:
        return Gate(False, str(_l("Only a draft can be cleared.")))
    decision = gate(user, _action(contribution.kind), process, contribution.organisation)
    if not decision:
        return decision
    assert isinstance(user, User)
    if user.id in {contribution.created_by_id, contribution.updated_by_id}:
        return Gate(False, str(_l("Another officer of your organisation clears what you wrote.")))
    return Gate(True)


def may_submit(user: AnyUser | None, contribution: Contribution, process: Process) -> Gate:
    """Submitting a cleared contribution, once: anyone who may make that input for the
    organisation now."""
    if contribution.state != ContributionState.CLEARED:
        return Gate(False, str(_l("Only a cleared contribution can be submitted.")))
    return gate(user, _action(contribution.kind), process, contribution.organisation)


def who_answers_disposition_many(
    round_: Round, organisation_ids: Iterable[int], at: datetime | None = None
) -> dict[int, set[int]]:
    """{organisation_id: user ids} of the people who agree with or contest the proposed
    disposition of `round_` for each organisation: those who can act for it in that
    drafting or consultation round (the rule book's query: its officials and
    representatives with a valid membership and an active account), the same people
    `may_see_space` lets onto the organisation's feedback page."""
    acting = who_can_act_many(((round_, org_id) for org_id in set(organisation_ids)), at)
    return {org_id: ids for (_, org_id), ids in acting.items()}


# The phases of a proposed disposition (consensus.services.drafting.review_phase) in which
# the report is not yet out.
_NOT_YET_PUBLISHED = frozenset({"feedback", "waiting"})


def may_read_disposition(user: AnyUser | None, process: Process, phase: str) -> bool:
    """The disposition report of a round, for someone who may see the process: while the
    organisations give feedback on the proposed disposition, and until its publication
    time, only those who manage the process read it; everyone else sees when it comes. The
    page, its CSV and PDF and the API ask this one rule."""
    return phase not in _NOT_YET_PUBLISHED or can_manage_process(user, process)
