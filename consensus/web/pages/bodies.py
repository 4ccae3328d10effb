"""Cached parts of standing bodies on other pages: the process page's follow-up (the way
through the bodies, the actions, the letter) and the dashboard's meetings and overdue
actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from markupsafe import Markup

from consensus.models import Process, User
from consensus.web.pages import CachedPart, declare_key


@declare_key
@dataclass(frozen=True)
class ProcessFollowUpKey:
    """The same for everyone who may see the process, but for the link to manage it."""

    process_id: int
    can_follow: bool


@declare_key
@dataclass(frozen=True)
class DashboardBodiesKey:
    """Per person, per set of memberships valid today (they decide which bodies and actions
    the person sees) and per day (what is upcoming and what is overdue)."""

    user_id: int
    membership_ids: frozenset[int]
    today: date


PROCESS_FOLLOW_UP = CachedPart(
    "process-follow-up", "bodies/_process_follow_up.html", ProcessFollowUpKey
)
DASHBOARD = CachedPart("dashboard-bodies", "bodies/_dashboard.html", DashboardBodiesKey)


def process_follow_up(process: Process, *, can_follow: bool, today: date) -> Markup:
    from consensus.services import bodies

    def context() -> dict[str, object]:
        summary = bodies.process_follow_up(process.id)  # one statement
        return {
            "process": process,
            "chain": summary.chain,
            "actions": summary.actions,
            "dispatches": summary.dispatches,
            "can_follow": can_follow,
            "today": today,
        }

    return PROCESS_FOLLOW_UP.html(ProcessFollowUpKey(process.id, can_follow), context)


def dashboard(user: User, membership_ids: frozenset[int], today: date) -> Markup:
    """Upcoming meetings of the person's bodies and overdue actions they can see (`user`
    passed explicitly: the part renders without current_user)."""
    from consensus import permissions
    from consensus.domain.timeutil import start_of_day
    from consensus.services import bodies

    def context() -> dict[str, object]:
        meetings, overdue = bodies.dashboard_summary(  # one statement
            permissions.visible_bodies(user),
            permissions.action_filter(user),
            since=start_of_day(today),
            today=today,
        )
        return {"meetings": meetings, "overdue": overdue, "today": today}

    return DASHBOARD.html(DashboardBodiesKey(user.id, membership_ids, today), context)
