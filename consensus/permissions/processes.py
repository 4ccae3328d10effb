"""Who may see a process: one rule, as a check for one process and as SQL for lists.

- **Involved**: the process's facilitators, and the people with a membership valid now in
  an organisation that takes part now (a removed participation no longer counts). Their
  own lists (dashboard, calendar feed) show these processes.
- **May view** (`can_view_process`, core.py): the involved, and administrators. They see
  the participants' pages; everyone else gets 404 (a participants-only process does not
  leak its existence).
- **May see** (`can_see_process`): also anyone, logged in or not, once the process is
  published (visibility "published" and a publication moment); that is the public side
  and the API's list.

Each rule comes twice: `can_*` for one process at hand, and a WHERE clause over `Process`
(`*_clause`) or a statement of process ids (`*_processes`) for lists, so a list filters,
counts and cuts its page in the database instead of asking the check for every process.
Both forms take the person's valid memberships and their account state from the same
helpers (`valid_memberships`, `can_administer`); a property test over generated worlds
(tests/web/test_process_visibility.py) holds the SQL equal to the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select, true

from consensus.models import Participation, Process, ProcessFacilitator, Visibility
from consensus.permissions.core import (
    AnyUser,
    _is_user,
    can_administer,
    can_view_process,
    valid_memberships,
)


def published_clause() -> ColumnElement[bool]:
    """`Process.is_published` as SQL: visibility "published" and a publication moment (a
    scheduled publication, `publish_at` alone, is not one yet)."""
    return and_(Process.visibility == Visibility.PUBLISHED, Process.published_at.is_not(None))


def involved_clause(user: AnyUser | None, at: datetime | None = None) -> ColumnElement[bool]:
    """The processes `user` runs or takes part in, as a WHERE clause over `Process`: the
    facilitators, and members (a membership valid at `at`, default now) of an organisation
    whose participation is not removed. Administrators are not involved by their role."""
    if not _is_user(user):
        return false()
    return _involved(user.id, _organisation_ids(user, at))  # type: ignore[union-attr]


def _organisation_ids(user: AnyUser | None, at: datetime | None = None) -> frozenset[int]:
    """The organisations of the person's memberships valid at `at` (now)."""
    return frozenset(m.organisation_id for m in valid_memberships(user, at))


def _involved(user_id: int, organisation_ids: frozenset[int]) -> ColumnElement[bool]:
    facilitating = exists().where(
        ProcessFacilitator.process_id == Process.id,
        ProcessFacilitator.user_id == user_id,
    )
    if not organisation_ids:
        return facilitating
    participating = exists().where(
        Participation.process_id == Process.id,
        Participation.removed_at.is_(None),
        Participation.organisation_id.in_(sorted(organisation_ids)),
    )
    return or_(participating, facilitating)


def viewable_clause(user: AnyUser | None) -> ColumnElement[bool]:
    """`can_view_process` as a WHERE clause over `Process`: administrators see every
    process, the involved theirs, nobody else any."""
    if can_administer(user):
        return true()
    return involved_clause(user)


@dataclass(frozen=True)
class Sight:
    """Everything `visible_clause` asks of a reader, as a value (a cache key may hold it):
    "all" (an administrator), "published" (anyone not logged in), or "involved" (a person:
    the published processes and those they facilitate, `user_id`, or take part in through
    a membership valid now, `organisation_ids`)."""

    kind: str
    user_id: int | None = None
    organisation_ids: frozenset[int] = frozenset()


def sight(user: AnyUser | None) -> Sight:
    if can_administer(user):
        return Sight("all")
    if not _is_user(user):
        return Sight("published")
    return Sight("involved", user.id, _organisation_ids(user))  # type: ignore[union-attr]


def sight_clause(seen: Sight) -> ColumnElement[bool]:
    """The processes a reader with this sight may see, as a WHERE clause over `Process`."""
    if seen.kind == "all":
        return true()
    if seen.kind == "published" or seen.user_id is None:
        return published_clause()
    return or_(published_clause(), _involved(seen.user_id, seen.organisation_ids))


def visible_clause(user: AnyUser | None) -> ColumnElement[bool]:
    """`can_see_process` as a WHERE clause over `Process`: the published processes for
    everyone, and the ones `user` may view."""
    return sight_clause(sight(user))


def visible_processes(user: AnyUser | None) -> Select[tuple[int]]:
    """The ids of the processes `user` (or an anonymous reader) may see, as a statement to
    run or to use as a subquery."""
    return select(Process.id).where(visible_clause(user))


def viewable_processes(user: AnyUser | None) -> Select[tuple[int]]:
    """The ids of the processes whose participants' pages `user` may view."""
    return select(Process.id).where(viewable_clause(user))


def involved_processes(user: AnyUser | None, at: datetime | None = None) -> Select[tuple[int]]:
    """The ids of the processes `user` runs or takes part in (their dashboard, their
    calendar feed, the follow-up actions they see)."""
    return select(Process.id).where(involved_clause(user, at))


def can_see_process(user: AnyUser | None, process: Process) -> bool:
    """A published process is there for everyone; any other for the people who may view
    it (404 for the rest, no leak)."""
    return process.is_published or can_view_process(user, process)
