"""Small helpers shared by the blueprints."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import redirect, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from consensus.models import Process, Round, RoundState, RoundType, utcnow
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


def too_late(round_: Round | None, not_recorded: str) -> str | None:
    """What happened, when an honest form arrives after its round closed: "“Round 2”
    closed at 6 Dec 2026 14:05. Your stance was not recorded." `None` while the round is
    open or has not opened yet (then a refusal is about the person: the gate says why)."""
    from consensus.web import format_moment  # the |datetime filter, in the user's zone

    if round_ is None:
        return None
    now = utcnow()
    if round_.is_open_at(now):
        return None
    if round_.state == RoundState.SCHEDULED:
        return None  # nobody had a form for a round that never opened
    when = min(round_.closed_at or round_.closes_at, round_.closes_at)
    said = _(
        "“%(round)s” closed at %(when)s.", round=round_.title, when=format_moment(when, "short")
    )
    return f"{said} {not_recorded}"


def latest_started_round(process: Process, types: Iterable[RoundType]) -> Round | None:
    """The round of these types that opened last (open or closed): the one a late form
    was meant for."""
    wanted = set(types)
    started = [r for r in process.rounds if r.type in wanted and r.state != RoundState.SCHEDULED]
    return max(started, key=lambda r: r.opens_at, default=None)


def round_closed_page(message: str, back_url: str, title: str | None = None) -> Response:
    """The answer to a form that came too late: what happened and a way back, 409."""
    from flask import make_response, render_template

    return make_response(
        render_template(
            "errors/round_closed.html",
            message=message,
            back_url=back_url,
            title=title or _("This round has closed"),
        ),
        409,
    )
