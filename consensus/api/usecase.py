"""The API's way through the one commit point (consensus.web.usecase.commit): the use case
runs, its answer is made before the COMMIT (while what it names is loaded), and a
DomainError rolls back and becomes a problem with the service's own (translated) message —
the message the page shows next to the form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask_login import current_user
from werkzeug.exceptions import HTTPException

from consensus.api.core import refuse, require_user
from consensus.services.errors import DomainError
from consensus.web.usecase import commit

T = TypeVar("T")


def domain_problem(error: DomainError) -> HTTPException:
    """A refusal of the domain as an HTTP error: 403, 404 and 409 as they are; a rule about
    the input (400) as 422, naming the field when the service named one."""
    status = error.status_code if error.status_code in {403, 404, 409} else 422
    problem = refuse(status, error.message)
    if status == 422 and error.field:
        problem.data = {"messages": {"json": {error.field: [error.message]}}}  # type: ignore[attr-defined]
        problem.api_detail = error.message  # type: ignore[attr-defined]
    return problem


def perform(
    use_case: Callable[..., T], /, *args: Any, present: Callable[[T], Any], **kwargs: Any
) -> Any:
    """Run the use case as the token's person and commit; return `present(value)`, made
    before the commit. Raises the problem for a DomainError (nothing changed)."""
    require_user()
    answer: list[Any] = []
    outcome = commit(
        use_case,
        *args,
        actor=current_user,
        before_commit=lambda v: answer.append(present(v)),
        **kwargs,
    )
    if outcome.error is not None:
        raise domain_problem(outcome.error)
    return answer[0]
