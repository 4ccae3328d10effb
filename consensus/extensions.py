"""Flask extensions, created unbound and attached in create_app().

Flask-Migrate (and with it Alembic) is attached there too, but not imported here: models and
services import this module, and a process that only reads (a worker of `flask audit
verify`) should not load Alembic."""

from __future__ import annotations

from flask import session
from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from consensus.models.base import Base


class _LoginManager(LoginManager):
    """Flask-Login with its "strong" session protection only where there is a login.

    Flask-Login counts any non-empty session without its client fingerprint as taken over,
    and an anonymous visitor's session holds only the CSRF token of a form (the login form,
    the language switch): every page they opened then marked the session changed and sent
    it again, together with a cookie clearing "remember me", which Consensus never sets.
    A logged-in session (one with a user id) is checked exactly as before.
    """

    def _session_protection_failed(self) -> bool:
        if "_user_id" not in session:
            return False
        return bool(super()._session_protection_failed())


db = SQLAlchemy(model_class=Base)
login_manager = _LoginManager()
csrf = CSRFProtect()
babel = Babel()
htmx = HTMX()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
