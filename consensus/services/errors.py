"""Domain errors, turned into HTTP responses or form messages at the edge."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused the action. `message` is shown to the user (translated)."""

    status_code = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    status_code = 404


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409
