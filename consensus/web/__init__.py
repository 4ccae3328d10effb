"""Blueprints, error pages and the login machinery."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, g, render_template, request
from flask_babel import format_datetime, refresh
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from consensus.extensions import db, login_manager
from consensus.models import User
from consensus.text import render_markdown

log = logging.getLogger("consensus.web")


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Sessions carry "id:generation"; bumping the generation ends them server-side."""
    try:
        raw_id, raw_generation = user_id.split(":", 1)
        wanted_id, generation = int(raw_id), int(raw_generation)
    except ValueError:
        return None
    user = db.session.execute(select(User).where(User.id == wanted_id)).scalar_one_or_none()
    if user is None or not user.active or user.session_generation != generation:
        return None
    return user


# "medium": 9 december 2026, 12:20 — "short": 09-12-2026 12:20 (Europe/Amsterdam).
_MOMENT_PATTERNS = {"medium": "d MMMM y, HH:mm", "short": "dd-MM-y HH:mm", "date": "d MMMM y"}


def format_moment(value: object, fmt: str = "medium") -> str:
    """A timestamp as people here read it, in Amsterdam time and the user's language."""
    if not value:
        return ""
    return format_datetime(value, _MOMENT_PATTERNS.get(fmt, fmt))  # type: ignore[arg-type]


def init_app(app: Flask) -> None:
    from consensus.web import admin, audit, auth, calendar, main, processes

    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # the login page explains itself
    login_manager.session_protection = "strong"

    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(processes.bp)
    app.register_blueprint(calendar.bp)

    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.filters["datetime"] = format_moment

    @app.before_request
    def assign_request_id() -> None:
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex

    @app.teardown_request
    def forget_user(_error: BaseException | None) -> None:
        # The loaded user lives in `g`; when a request runs inside an outer app context
        # (tests, CLI helpers) `g` outlives the request, so forget it explicitly.
        g.pop("_login_user", None)
        refresh()  # likewise Flask-Babel's cached locale

    @app.before_request
    def apply_the_clock() -> None:
        """Rounds open and close at their times even without cron: one cheap query."""
        if request.endpoint == "static":
            return
        from consensus.services import processes

        if processes.something_is_due():
            processes.tick()
            db.session.commit()

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        return render_template("errors/400.html", csrf=True), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int] | HTTPException:
        code = error.code or 500
        if code in {400, 403, 404, 405, 413, 429}:
            return render_template(f"errors/{code}.html", error=error), code
        return error

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> tuple[str, int]:
        db.session.rollback()
        log.exception("unhandled error, request id %s", getattr(g, "request_id", "-"))
        return render_template("errors/500.html", request_id=getattr(g, "request_id", "")), 500

    @app.context_processor
    def inject_user_helpers() -> dict[str, object]:
        from consensus import permissions

        return {"permissions": permissions, "current_user": current_user}
