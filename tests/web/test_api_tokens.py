"""Personal access tokens on the account page and for administrators (issue 18, item 4):
made with a name, scopes and an expiry, shown once, stored hashed, announced by e-mail (a
real SMTP server), revocable by the owner and by administrators, audited."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from consensus.extensions import db
from consensus.models import ApiToken, AuditEvent
from tests.api_support import API, bearer, make_token
from tests.factories import make_user
from tests.helpers import give_session
from tests.security.test_passwords import Inbox, mail_server

SECRET = re.compile(r"cns_[A-Za-z0-9_-]{43}")


def test_a_token_is_made_on_the_account_page_shown_once_and_announced(app, client):
    user = make_user("ilse@example.org", name="Ilse")
    db.session.commit()
    give_session(app, client, user)
    with mail_server(app, Inbox()) as inbox:
        response = client.post(
            "/account/tokens", data={"name": "Zaaksysteem", "scopes": "read write", "days": "30"}
        )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    secrets_shown = SECRET.findall(page)
    assert len(set(secrets_shown)) == 1
    secret = secrets_shown[0]
    token = db.session.execute(select(ApiToken)).scalar_one()
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert (token.name, token.scopes) == ("Zaaksysteem", "read write")
    assert (token.expires_at - token.created_at).days == 30
    # Announced by mail, after the commit, with no secret in it.
    assert [m["To"] for m in inbox.messages] == ["ilse@example.org"]
    assert "toegangstoken" in inbox.messages[0]["Subject"]
    message = inbox.messages[0]
    assert secret not in message.get_body(preferencelist=("plain",)).get_content()
    assert secret not in message.get_body(preferencelist=("html",)).get_content()
    # Audited.
    assert db.session.execute(
        select(AuditEvent.action).where(AuditEvent.object_type == "api_token")
    ).scalars().all() == ["api_token.created"]
    # The account page lists it by its prefix, never the secret again.
    account = client.get("/account").get_data(as_text=True)
    assert "Zaaksysteem" in account and token.prefix in account and secret not in account
    # And the token works.
    assert client.get(f"{API}/me", headers=bearer(secret)).status_code == 200


def test_bad_token_input_is_refused_with_a_message_and_makes_nothing(app, client):
    user = make_user("joop@example.org")
    db.session.commit()
    give_session(app, client, user)
    response = client.post("/account/tokens", data={"name": "", "scopes": "read", "days": "30"})
    assert response.status_code == 422
    assert "Geef het token een naam." in response.get_data(as_text=True)
    response = client.post("/account/tokens", data={"name": "x", "scopes": "all", "days": "30"})
    assert response.status_code == 422
    response = client.post("/account/tokens", data={"name": "x", "scopes": "read", "days": "9999"})
    assert response.status_code == 422
    assert db.session.execute(select(ApiToken)).first() is None


def test_owner_revokes_own_token_but_not_another_persons(app, client):
    owner, other = make_user("kees@example.org"), make_user("lotte@example.org")
    secret = make_token(owner)
    token_id = db.session.execute(select(ApiToken.id)).scalar_one()
    give_session(app, client, other)
    assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 404
    assert client.get(f"{API}/me", headers=bearer(secret)).status_code == 200
    give_session(app, client, owner)
    response = client.post(f"/account/tokens/{token_id}/revoke")
    assert response.status_code == 302
    assert client.get(f"{API}/me", headers=bearer(secret)).status_code == 401
    db.session.expire_all()
    assert db.session.get(ApiToken, token_id).revoked_by_id == owner.id


def test_administrators_see_and_revoke_every_token(app, client):
    admin = make_user("beheer@example.org", is_admin=True)
    owner = make_user("mira@example.org", name="Mira")
    secret = make_token(owner, scopes="read")
    token = db.session.execute(select(ApiToken)).scalar_one()
    give_session(app, client, owner)
    assert client.get("/admin/tokens").status_code == 403
    give_session(app, client, admin)
    page = client.get("/admin/tokens").get_data(as_text=True)
    assert "Mira" in page and token.prefix in page and secret not in page
    assert client.post(f"/admin/tokens/{token.id}/revoke").status_code == 302
    assert client.get(f"{API}/me", headers=bearer(secret)).status_code == 401
    assert db.session.execute(
        select(AuditEvent.action)
        .where(AuditEvent.object_type == "api_token")
        .order_by(AuditEvent.seq)  # without it, PostgreSQL may answer in another order
    ).scalars().all() == ["api_token.created", "api_token.revoked"]
