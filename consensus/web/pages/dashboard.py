"""The dashboard (main.index): the person's work — rounds to act in, processes they
facilitate — is one cached part per person, set of memberships valid today and substitutions."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.models import User
from consensus.web.fragments import Part
from consensus.web.pages import CachedPart, declare_key


@declare_key
@dataclass(frozen=True)
class WorkKey:
    """Per person, per set of memberships valid today and per set of organisations the
    person stands in for as a substitute (a membership or a delegation can lapse at a date
    without anything being written)."""

    user_id: int
    membership_ids: frozenset[int]
    substituting: frozenset[int]


WORK = CachedPart("dashboard-work", "main/_dashboard_work.html", WorkKey)


def work(user: User, membership_ids: frozenset[int], substituting: frozenset[int]) -> Part:
    """The work part for `user` (passed explicitly: the part renders without current_user)."""
    from consensus.forms.processes import ROUND_TYPE_LABELS
    from consensus.services import processes

    def context() -> dict[str, object]:
        todo, facilitated = processes.dashboard_items(user)
        return {"todo": todo, "facilitated": facilitated, "round_type_labels": ROUND_TYPE_LABELS}

    return WORK.part(WorkKey(user.id, membership_ids, substituting), context)
