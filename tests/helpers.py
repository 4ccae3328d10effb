"""Test helpers that are not fixtures."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from flask_login.utils import _create_identifier

from consensus.extensions import db
from consensus.models import User
from consensus.services import sessions
from consensus.web import SESSION_TOKEN_KEY


def give_session(app: Flask, client: FlaskClient, user: User) -> FlaskClient:
    """Give `client` a logged-in session for `user`, as a real login would: a server-side
    session row plus the cookie (including Flask-Login's "strong" session-protection
    identifier of this client)."""
    with app.test_request_context(environ_base=client.environ_base):
        identifier = _create_identifier()
        token = sessions.start(user, method="test")
    db.session.commit()
    with client.session_transaction() as session:
        session.clear()
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session["_id"] = identifier
        session[SESSION_TOKEN_KEY] = token
    return client


# A production environment that consensus.config accepts: every setting production demands,
# each valid. Tests of a single refusal start from this and spoil one variable.
PRODUCTION_ENVIRONMENT = {
    "CONSENSUS_ENV": "production",
    "CONSENSUS_SECRET_KEY": "s" * 48,
    "CONSENSUS_KEY_ENCRYPTION_KEY": "ABEiM0RVZneImaq7zN3u_wARIjNEVWZ3iJmqu8zd7v8=",
    "CONSENSUS_SECURITY_CONTACT": "mailto:security@gemeente.example",
    "CONSENSUS_AUDIT_ORIGIN": "consensus.gemeente.example",
    "CONSENSUS_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
    "CONSENSUS_BASE_URL": "https://consensus.gemeente.example",
}


def set_production_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name, value in PRODUCTION_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
