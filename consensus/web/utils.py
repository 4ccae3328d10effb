"""Small helpers shared by the blueprints."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from flask import after_this_request, copy_current_request_context, g, redirect, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from consensus.extensions import db
from consensus.models import Process, Round, RoundState, RoundType, utcnow
from consensus.services.errors import DomainError

log = logging.getLogger("consensus.web")


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


def after_the_response(job: Callable[[], None], *, what: str) -> None:
    """Run `job` once this request's answer has been sent, in a copy of the request's
    context (its client address, session and language; its own database transaction).

    The WSGI server calls it when it closes the response, which gunicorn and Werkzeug do
    after the last byte has been written: the client neither waits for the job nor can time
    it (issue 25: whether a reset address is known must not show in the answer's timing).
    The job commits itself; if it fails, its transaction is rolled back and the error is
    logged with the request id, never shown (the answer is already out).
    """
    request_id = str(g.get("request_id", "-"))

    def guarded() -> None:
        g.request_id = request_id
        try:
            job()
        except Exception:
            db.session.rollback()
            log.exception("%s failed after the response, request id %s", what, request_id)

    run = copy_current_request_context(guarded)

    def on_close() -> None:
        try:
            run()
        except Exception:  # entering the copied context failed; nothing to roll back
            log.exception("%s failed after the response, request id %s", what, request_id)

    @after_this_request
    def attach(response: Response) -> Response:
        response.call_on_close(on_close)
        return response
