"""Test helpers that are not fixtures."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from flask_login.utils import _create_identifier

from consensus.models import User


def give_session(app: Flask, client: FlaskClient, user: User) -> FlaskClient:
    """Give `client` a logged-in session for `user`, as Flask-Login would after a login
    (including the "strong" session-protection identifier of this client)."""
    with app.test_request_context(environ_base=client.environ_base):
        identifier = _create_identifier()
    with client.session_transaction() as session:
        session.clear()
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session["_id"] = identifier
    return client
