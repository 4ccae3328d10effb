"""Standing bodies, meetings, follow-up actions and the letter's dispatch: who may see and
who may do what.

- A body is seen by its **members**: people with a valid membership of a member
  organisation, its seat holders and substitutes, its secretary, and administrators.
  Everyone else gets 404 (a body's existence does not leak).
- An **administrator** creates a body and sets its composition (seats, secretary, links).
- The **secretary** (or an administrator) runs its meetings: plans them, prepares and
  publishes the agenda, records decisions, drafts and approves minutes, forwards a
  cleared position, creates follow-up actions from decisions.
- Members see an agenda once it is published; the secretary sees it while preparing it.
  The documents uploaded to its items are seen by exactly the same people.
- An **archived** body is read-only: it keeps its whole history and is seen as before, but
  nobody runs meetings there or changes its composition any more.
- The people **told** about a meeting (its agenda published, its cancellation) are the ones
  who attend: the seat holders and substitutes (who_attends).
- A follow-up action is seen by whoever sees where it came from (the process or the body)
  and by the members of its owner organisation; its progress is reported by the owner's
  officials and representatives, the secretary, the process's facilitators and admins.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, false, or_, select, true

from consensus.extensions import db
from consensus.models import (
    BodySeat,
    FollowUpAction,
    Meeting,
    MembershipRole,
    Process,
    StandingBody,
)
from consensus.permissions.core import (
    AnyUser,
    _is_user,
    can_administer,
    can_view_process,
    is_facilitator_of,
    valid_memberships,
)


def _organisation_ids(user: AnyUser | None) -> set[int]:
    return {m.organisation_id for m in valid_memberships(user)}


def is_secretary(user: AnyUser | None, body: StandingBody) -> bool:
    return _is_user(user) and body.secretary_id == user.id  # type: ignore[union-attr]


def holds_seat(user: AnyUser | None, body: StandingBody) -> bool:
    """A seat holder or a substitute of one of the body's seats."""
    if not _is_user(user):
        return False
    return any(user.id in (seat.seat_holder_id, seat.substitute_id) for seat in body.seats)  # type: ignore[union-attr]


def can_view_body(user: AnyUser | None, body: StandingBody) -> bool:
    """Members of its member organisations, seat holders, substitutes, the secretary and
    administrators."""
    if not _is_user(user):
        return False
    if can_administer(user) or is_secretary(user, body) or holds_seat(user, body):
        return True
    return bool(_organisation_ids(user) & body.organisation_ids)


def can_manage_body(user: AnyUser | None, body: StandingBody | None = None) -> bool:
    """Creating a body and setting its composition is the administrators' work; an
    archived body's composition no longer changes."""
    if body is not None and body.is_archived:
        return False
    return can_administer(user)


def can_archive_body(user: AnyUser | None, body: StandingBody) -> bool:
    """Closing a body (it stays, read-only) is the administrators' work."""
    return can_manage_body(user, body)


def can_run_meetings(user: AnyUser | None, body: StandingBody) -> bool:
    """The secretary facilitates the body's meetings; an administrator may stand in. Not at
    an archived body: it holds no more meetings."""
    if body.is_archived:
        return False
    return is_secretary(user, body) or can_administer(user)


def can_see_agenda(user: AnyUser | None, meeting: Meeting) -> bool:
    """Members see the agenda once it is published; the secretary while preparing it."""
    body = meeting.body
    if is_secretary(user, body) or can_administer(user):
        return True
    return meeting.is_agenda_published and can_view_body(user, body)


def can_download_document(user: AnyUser | None, meeting: Meeting) -> bool:
    """An agenda item's document: whoever sees the agenda (else 404, like the agenda)."""
    return can_see_agenda(user, meeting)


def who_attends(body: StandingBody) -> list[tuple[int, int]]:
    """The people told about a meeting of `body` (its agenda published, its cancellation):
    each seat's holder and substitute, with the organisation whose seat it is. Inactive
    accounts are left out by the outbox."""
    people = set()
    for seat in body.seats:
        for user_id in (seat.seat_holder_id, seat.substitute_id):
            if user_id is not None:
                people.add((user_id, seat.organisation_id))
    return sorted(people)


def visible_bodies(user: AnyUser | None) -> Select[tuple[int]]:
    """The ids of the bodies `user` may see, as a statement to run or to use as a subquery
    (the same rule as can_view_body, for lists, the dashboard and the calendar feed)."""
    if not _is_user(user):
        return select(StandingBody.id).where(false())
    if can_administer(user):
        return select(StandingBody.id)
    organisation_ids = _organisation_ids(user)
    uid = user.id  # type: ignore[union-attr]
    seated = select(BodySeat.body_id).where(
        or_(
            BodySeat.seat_holder_id == uid,
            BodySeat.substitute_id == uid,
            BodySeat.organisation_id.in_(organisation_ids or {0}),
        )
    )
    return select(StandingBody.id).where(
        or_(StandingBody.secretary_id == uid, StandingBody.id.in_(seated))
    )


def visible_body_ids(user: AnyUser | None) -> set[int]:
    """The bodies `user` may see, as one query."""
    return set(db.session.execute(visible_bodies(user)).scalars())


def can_view_action(user: AnyUser | None, action: FollowUpAction) -> bool:
    """Who sees where it came from, and the owner organisation's members."""
    if not _is_user(user):
        return False
    if can_administer(user) or action.owner_organisation_id in _organisation_ids(user):
        return True
    if action.process_id is not None:
        process = db.session.get(Process, action.process_id)
        if process is not None and can_view_process(user, process):
            return True
    if action.body_id is not None:
        body = db.session.get(StandingBody, action.body_id)
        if body is not None and can_view_body(user, body):
            return True
    return False


def can_update_action(user: AnyUser | None, action: FollowUpAction) -> bool:
    """The owner's officials and representatives report progress, as do the people who
    created such actions: the body's secretary, the process's facilitators, admins."""
    if not _is_user(user):
        return False
    if can_administer(user):
        return True
    for membership in valid_memberships(user):
        if membership.organisation_id == action.owner_organisation_id and membership.role in (
            MembershipRole.OFFICIAL,
            MembershipRole.REPRESENTATIVE,
        ):
            return True
    if action.body_id is not None:
        body = db.session.get(StandingBody, action.body_id)
        if body is not None and is_secretary(user, body):
            return True
    if action.process_id is not None:
        process = db.session.get(Process, action.process_id)
        if process is not None and is_facilitator_of(user, process):
            return True
    return False


def can_follow_up_process(user: AnyUser | None, process: Process) -> bool:
    """Creating actions from an outcome or a letter, recording that the letter was sent and
    the reply: the process's facilitators, also after the process concluded (that is when
    a letter goes out and its reply comes back)."""
    return is_facilitator_of(user, process)


def action_filter(user: AnyUser | None) -> object:
    """A WHERE clause for the follow-up actions `user` may see (lists, the dashboard): the
    rule of can_view_action as SQL, without a statement of its own."""
    from consensus.permissions.processes import involved_processes

    if can_administer(user):
        return true()
    organisation_ids = _organisation_ids(user) or {0}
    return or_(
        FollowUpAction.owner_organisation_id.in_(organisation_ids),
        FollowUpAction.body_id.in_(visible_bodies(user)),
        FollowUpAction.process_id.in_(involved_processes(user)),
    )


def who_reports_on(action: FollowUpAction, at: datetime | None = None) -> set[int]:
    """The people told about an action (its overdue notice): the owner organisation's
    officials and representatives with a membership valid now, and the secretary of the
    body it came from. One query (can_update_action's rule for these people, as SQL)."""
    from consensus.models import Membership, User, utcnow

    moment = at or utcnow()
    found = set(
        db.session.execute(
            select(Membership.user_id)
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.organisation_id == action.owner_organisation_id,
                Membership.role.in_([MembershipRole.OFFICIAL, MembershipRole.REPRESENTATIVE]),
                or_(Membership.valid_from.is_(None), Membership.valid_from <= moment),
                or_(Membership.valid_until.is_(None), Membership.valid_until > moment),
                User.active.is_(True),
            )
        ).scalars()
    )
    if action.body_id is not None:
        body = db.session.get(StandingBody, action.body_id)
        if body is not None and body.secretary_id is not None:
            found.add(body.secretary_id)
    return found
