"""Blueprints, error pages and the login machinery."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    flash,
    g,
    has_request_context,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_datetime, get_locale, get_timezone, refresh
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from consensus import transactions
from consensus.extensions import db, login_manager
from consensus.formats.cldr import write_moment
from consensus.formats.markdown import excerpt, render_markdown, visible
from consensus.models import User

log = logging.getLogger("consensus.web")


SESSION_TOKEN_KEY = "sid"  # noqa: S105 - the name of a session key, not a secret  # nosec B105


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """A request is logged in only while its server-side session is open and current.

    The signed cookie says "id:generation" (Flask-Login) plus a session token; the token
    must match an open row for the same user (see consensus.services.sessions), and the
    generation must still match, so logout, password change, expiry and deactivation all
    take effect on the server, even for a replayed cookie.
    """
    from consensus.services import sessions

    try:
        raw_id, raw_generation = user_id.split(":", 1)
        wanted_id, generation = int(raw_id), int(raw_generation)
    except ValueError:
        return None
    with transactions.reads_before_the_view():
        user_session = sessions.find_current(session.get(SESSION_TOKEN_KEY))
        user = user_session.user if user_session is not None else None
    if (
        user_session is None
        or user is None
        or user.id != wanted_id
        or not user.active
        or user.session_generation != generation
    ):
        for key in ("_user_id", "_fresh", "_id", SESSION_TOKEN_KEY):
            session.pop(key, None)
        flash(_("Your session has ended. Log in again, please."), "info")
        return None
    g.user_session = user_session
    return user


# "medium": 9 december 2026, 12:20 — "short": 09-12-2026 12:20 (Europe/Amsterdam).
_MOMENT_PATTERNS = {"medium": "d MMMM y, HH:mm", "short": "dd-MM-y HH:mm", "date": "d MMMM y"}


def format_moment(value: object, fmt: str = "medium") -> str:
    """A timestamp as people here read it, in Amsterdam time and the user's language (the
    patterns the pages use without Babel's formatter and locale data: formats.cldr)."""
    if not value:
        return ""
    pattern = _MOMENT_PATTERNS.get(fmt, fmt)
    if not has_request_context():
        return format_datetime(value, pattern)  # type: ignore[arg-type]
    # Long pages show the same moments many times: format each once per request. The locale
    # and time zone are part of the key, as they may change mid-request.
    locale, zone = get_locale(), get_timezone()
    memo = g.setdefault("_moment_memo", {})
    key = (value, pattern, str(locale), str(zone))
    text = memo.get(key)
    if text is None:
        text = write_moment(value, pattern, str(locale), zone)  # type: ignore[arg-type]
        if text is None:
            text = format_datetime(value, pattern)  # type: ignore[arg-type]
        memo[key] = text
    return text


_FIXED_URLS: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = {}


def fixed_url(endpoint: str, **values: str) -> str:
    """`url_for` for the addresses every page repeats (the layout's style sheets, scripts
    and navigation): built once per mount point instead of on every request."""
    if not has_request_context():
        return url_for(endpoint, **values)
    key = (request.script_root, endpoint, tuple(sorted(values.items())))
    found = _FIXED_URLS.get(key)
    if found is None:
        found = _FIXED_URLS[key] = url_for(endpoint, **values)
    return found


def _came_from() -> str | None:
    """The page of this site the person came from (Referer), for an error page's way back;
    None for another site, no referrer, or the very page that failed."""
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if not referrer or parts.netloc != request.host or parts.scheme not in {"http", "https"}:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    here = request.full_path.rstrip("?")
    if path == here or not path.startswith("/") or path.startswith("//"):
        return None
    return path


def init_app(app: Flask) -> None:
    from consensus.web import (
        admin,
        api_tokens,
        audit,
        auth,
        bodies,
        calendar,
        endorsements,
        identity,
        main,
        notifications,
        ops,
        passkeys,
        positions,
        processes,
        public,
        signing,
        wellknown,
    )

    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # the login page explains itself
    login_manager.session_protection = "strong"

    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(processes.bp)
    app.register_blueprint(positions.bp)
    app.register_blueprint(calendar.bp)
    app.register_blueprint(endorsements.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(wellknown.bp)
    app.register_blueprint(signing.bp)
    app.register_blueprint(api_tokens.bp)
    app.register_blueprint(identity.bp)
    app.register_blueprint(passkeys.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(bodies.bp)
    ops.init_app(app)

    # What you see is what you sign: no output value may hide a character or reorder what
    # is shown (consensus.formats.markdown.visible). Set before any template is compiled.
    app.jinja_env.finalize = visible
    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.filters["excerpt"] = excerpt
    app.jinja_env.filters["datetime"] = format_moment
    app.jinja_env.globals["fixed_url"] = fixed_url
    from consensus.web.pages import layout

    app.jinja_env.globals["layout_header"] = layout.header
    app.jinja_env.globals["layout_footer"] = layout.footer

    @app.before_request
    def assign_request_id() -> None:
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex

    @app.teardown_request
    def forget_user(_error: BaseException | None) -> None:
        # The loaded user lives in `g`; when a request runs inside an outer app context
        # (tests, CLI helpers) `g` outlives the request, so forget it explicitly.
        g.pop("_login_user", None)
        g.pop("user_session", None)
        g.pop("_moment_memo", None)
        g.pop("csrf_token", None)  # Flask-WTF keeps the signed token of this request here
        refresh()  # likewise Flask-Babel's cached locale

    @app.before_request
    def apply_the_clock() -> None:
        """Rounds open and close at their times even without cron: one cheap query."""
        if request.endpoint == "static" or request.blueprint == "ops":
            return  # files, and probes that must not depend on (or wait for) the clock
        from consensus.models import utcnow
        from consensus.services import processes
        from consensus.web import usecase
        from consensus.web.pages import clock as clock_page

        # The next due moment only moves with an audited change: cached by the log's head for
        # pages, and for at most a minute (a deadline edited outside the application is
        # still honoured). Requests that change things always look afresh.
        if request.method in {"GET", "HEAD"}:
            due = clock_page.next_due_at()
        else:
            with transactions.reads_before_the_view():
                due = processes.next_due_at()
        if due is not None and due <= utcnow():
            # The clock service, not the view: its own transaction, committed before the
            # view runs (consensus.web.usecase.run_the_clock).
            usecase.run_the_clock()

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        return render_template("errors/400.html", csrf=True), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int] | HTTPException | Response:
        from consensus.api.core import on_routing_error

        as_problem = on_routing_error(error)  # /api/v1/…: no route or method there
        if as_problem is not None:
            return as_problem
        code = error.code or 500
        if code in {400, 403, 404, 405, 413, 429}:
            return render_template(f"errors/{code}.html", error=error, back=_came_from()), code
        return error

    @app.errorhandler(IntegrityError)
    def lost_a_race(error: IntegrityError) -> tuple[str, int]:
        """Two people did the same thing at the same moment and the database kept one.

        The constraint is the referee; the loser sees a calm explanation, never a 500.
        """
        db.session.rollback()
        log.info("integrity conflict, request id %s: %s", g.get("request_id", "-"), error.orig)
        return render_template("errors/409.html"), 409

    @app.errorhandler(OperationalError)
    def database_unavailable(error: OperationalError) -> tuple[str, int, dict[str, str]]:
        """The database is busy or unreachable: say "try again", log the cause."""
        db.session.rollback()
        log.exception("database error, request id %s", g.get("request_id", "-"))
        return _fallback_error_page(503), 503, {"Retry-After": "5"}

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> tuple[str, int]:
        log.exception("unhandled error, request id %s", g.get("request_id", "-"))
        try:
            db.session.rollback()
        except Exception:  # the database may be what broke
            log.exception("rollback failed, request id %s", g.get("request_id", "-"))
        return _fallback_error_page(500), 500

    @app.context_processor
    def inject_user_helpers() -> dict[str, object]:
        from consensus import permissions

        # The user itself, not the proxy: a page reads it dozens of times, and each read
        # through the proxy looks the user up again. A cached part's own render_template
        # runs this while its stand-in is in place (consensus.web.fragments.viewerless), so
        # the part gets the stand-in, as before.
        return {"permissions": permissions, "current_user": current_user._get_current_object()}


_PLAIN_ERROR = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>{code}</title></head>
<body><h1>{code}</h1>
<p>Er ging iets mis. Probeer het later opnieuw. / Something went wrong. Try again later.</p>
<p>Request id: {request_id}</p></body></html>
"""


def _fallback_error_page(code: int) -> str:
    """The styled error page, or plain HTML when rendering it fails too.

    The page template reads the current user, which needs the database; when the database
    is what broke, the template would raise again and Flask would show its own page.
    """
    request_id = str(g.get("request_id", ""))
    try:
        return render_template(f"errors/{code}.html", request_id=request_id)
    except Exception:
        log.exception("error page %s could not be rendered, request id %s", code, request_id)
        escaped = "".join(ch for ch in request_id if ch.isalnum() or ch in "-_")
        return _PLAIN_ERROR.format(code=code, request_id=escaped)
