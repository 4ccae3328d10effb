"""The one commit point of the web layer.

A view loads what it needs, checks who may act, and then hands the change to a service
(a use case) through `run`: the use case runs, the transaction commits when it succeeds and
rolls back when it raises a DomainError (the error goes next to the form's field, above the
form, or into a flashed message). Any other exception propagates untouched: the
application's error handlers roll back and answer 409, 503 or 500.

Nothing else in consensus/web/ commits or writes an audit event (tests/web/
test_commit_point.py greps for it). The other transactions the web layer ends are named here
too, so they are found in one place:

- `run_the_clock`: the round clock's own short write transaction, before the view (see
  docs/architecture.md, "One commit point").
- `transactions.reads_before_the_view` ends a read-only transaction (SQLite writers' queue)
  and `services.sessions.find_current` commits the session's best-effort touch.

`run` adds no statement of its own: a changing request's transaction (on SQLite begun with
BEGIN IMMEDIATE, on PostgreSQL perhaps holding `transactions.one_writer_at_a_time`'s lock)
is exactly the use case's statements plus COMMIT. The success message is made before the
commit, while everything it names is still loaded: after the commit the objects are expired
and reading them again would begin a new transaction (on SQLite: take the write lock again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import abort, flash
from flask_wtf import FlaskForm

from consensus.extensions import db
from consensus.services.errors import DomainError
from consensus.web.utils import attach_error

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What `run` did: the use case's value, or the domain error it was refused with.
    True when the change was committed."""

    value: T | None = None
    error: DomainError | None = None

    def __bool__(self) -> bool:
        return self.error is None


def run(
    use_case: Callable[..., T],
    /,
    *args: Any,
    form: FlaskForm | None = None,
    success: str | Callable[[T], str] | None = None,
    category: str = "success",
    forbidden_is_403: bool = False,
    **kwargs: Any,
) -> Outcome[T]:
    """Run `use_case(*args, **kwargs)` and commit; on a DomainError roll back instead.

    - `form`: where a domain error is shown (its field, or above the form); without a form
      the error is flashed.
    - `success`: the message flashed after the commit (or a function of the use case's
      value that makes it, called before the commit).
    - `forbidden_is_403`: a DomainError with status 403 (the service's own permission
      check) answers 403 instead of a message.
    """
    messages: list[str] = []

    def make_message(value: T) -> None:
        if success is not None:
            messages.append(success(value) if callable(success) else success)

    outcome = commit(use_case, *args, before_commit=make_message, **kwargs)
    if outcome.error is not None:
        error = outcome.error
        if forbidden_is_403 and error.status_code == 403:
            abort(403)
        if form is None:
            flash(error.message, "error")
        else:
            attach_error(form, error)
        return outcome
    for message in messages:
        if message:
            flash(message, category)
    return outcome


def commit(
    use_case: Callable[..., T],
    /,
    *args: Any,
    before_commit: Callable[[T], object] | None = None,
    **kwargs: Any,
) -> Outcome[T]:
    """The commit point itself: run `use_case(*args, **kwargs)`, commit when it succeeds,
    roll back on a DomainError (returned in the Outcome). `before_commit(value)` runs just
    before the COMMIT, while what the value names is still loaded (a success message, or
    the REST API's answer, consensus.api.usecase). `run` is this plus the page's ways of
    showing the answer."""
    try:
        value = use_case(*args, **kwargs)
    except DomainError as error:
        db.session.rollback()
        return Outcome(error=error)
    if before_commit is not None:
        before_commit(value)
    db.session.commit()
    return Outcome(value=value)


def run_the_clock() -> None:
    """Let the round clock open and close what is due, as its own transaction, committed
    before the view begins (a GET view itself never writes). The commit also makes the
    fragment cache read the new audit head."""
    from consensus.services import processes

    if processes.something_is_due():
        processes.tick()
        db.session.commit()
