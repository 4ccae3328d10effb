"""Helpers for the REST API's tests: tokens, and requests that carry one."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from consensus.extensions import db
from consensus.models import User
from consensus.services import api_tokens

API = "/api/v1"


def make_token(user: User, scopes: str = "read write", days: int = 30) -> str:
    """A token for `user` (committed); returns the secret."""
    _token, secret = api_tokens.create_token(user, name=f"test {scopes}", scopes=scopes, days=days)
    db.session.commit()
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class TokenClient:
    """A script's view of the API: only the token, never a cookie."""

    def __init__(self, client: FlaskClient, secret: str | None) -> None:
        self.client = client
        self.headers = bearer(secret) if secret else {}

    def get(self, path: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.client.get(API + path, headers=self.headers, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any):  # type: ignore[no-untyped-def]
        return self.client.post(API + path, headers=self.headers, json=json, **kwargs)
