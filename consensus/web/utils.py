"""Small helpers shared by the blueprints."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import redirect, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from consensus.services.errors import DomainError


def safe_next(target: str | None, fallback_endpoint: str = "main.index") -> str:
    """Only same-site paths may be redirect targets (no open redirects)."""
    if target:
        target = target.strip()
        parts = urlsplit(target)
        if (
            target.startswith("/")
            and not target.startswith("//")
            and "\\" not in target
            and not parts.scheme
            and not parts.netloc
            and not any(ord(ch) < 32 for ch in target)
        ):
            return target
    return url_for(fallback_endpoint)


def redirect_next(target: str | None, fallback_endpoint: str = "main.index") -> Response:
    return redirect(safe_next(target, fallback_endpoint))


def attach_error(form: FlaskForm, error: DomainError) -> None:
    """Show a domain error next to its field, or above the form when it has no field."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)
