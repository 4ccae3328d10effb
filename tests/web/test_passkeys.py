"""Passkeys through the app (the ceremonies themselves run in chromium:
tests/e2e/test_passkeys.py): rename, remove, another person's passkey, answers without a
ceremony, the second-factor page, and the administrator's reset."""

from __future__ import annotations

import json
import secrets

from sqlalchemy import select

from consensus.extensions import db
from consensus.models import AuditEvent, Passkey
from tests.factories import PASSWORD, make_user


def make_passkey(user, name: str = "Werklaptop") -> Passkey:
    passkey = Passkey(
        user_id=user.id,
        credential_id=secrets.token_bytes(32),
        public_key=b"not used in these tests",
        sign_count=0,
        name=name,
    )
    db.session.add(passkey)
    db.session.commit()
    return passkey


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_the_account_page_lists_renames_and_removes_passkeys(client, login_as):
    user = make_user("rep@example.org")
    laptop = make_passkey(user, "Werklaptop")
    make_passkey(user, "Telefoon")
    login_as(user)
    page = client.get("/account").get_data(as_text=True)
    assert "Werklaptop" in page and "Telefoon" in page and "nooit" in page
    response = client.post(
        f"/account/passkeys/{laptop.id}/rename", data={f"pk{laptop.id}-name": "Laptop thuis"}
    )
    assert response.status_code == 302
    assert "De naam van de passkey is gewijzigd." in client.get("/account").get_data(as_text=True)
    empty = client.post(f"/account/passkeys/{laptop.id}/rename", data={f"pk{laptop.id}-name": " "})
    assert empty.status_code == 302
    db.session.expire_all()
    assert db.session.get(Passkey, laptop.id).name == "Laptop thuis"
    client.post(f"/account/passkeys/{laptop.id}/remove")
    db.session.expire_all()
    assert [p.name for p in db.session.scalars(select(Passkey))] == ["Telefoon"]
    assert "user.passkey_renamed" in actions() and "user.passkey_removed" in actions()


def test_another_persons_passkey_is_not_found(client, login_as):
    owner = make_user("owner@example.org")
    passkey = make_passkey(owner)
    login_as(make_user("other@example.org"))
    assert client.post(f"/account/passkeys/{passkey.id}/remove").status_code == 404
    assert client.post(f"/account/passkeys/{passkey.id}/rename", data={}).status_code == 404
    assert db.session.get(Passkey, passkey.id) is not None


def test_answers_without_a_ceremony_are_refused(client, login_as):
    """Bad input: no options asked first, or nonsense as the credential."""
    user = make_user("rep@example.org")
    make_passkey(user)
    refused = client.post("/login/passkey", json={"credential": {"rawId": "AAAA"}})
    assert refused.status_code == 403
    assert refused.get_json() == {"error": "De passkey is niet aanvaard."}
    assert client.get("/account").status_code == 302
    client.post("/login/passkey/options")
    assert client.post("/login/passkey", data="not json").status_code == 403
    assert actions().count("user.passkey_refused") == 2
    login_as(user)
    added = client.post("/account/passkeys", json={"name": "Nieuw", "credential": {}})
    assert added.status_code == 400
    assert "kon niet worden gecontroleerd" in added.get_json()["error"]
    nameless = client.post("/account/passkeys", json={"name": "", "credential": {}})
    assert nameless.get_json() == {"error": "Vul een naam in, zoals “laptop van het werk”."}
    assert len(db.session.scalars(select(Passkey)).all()) == 1


def test_the_second_factor_page_offers_the_passkey(client):
    user = make_user("rep@example.org")
    make_passkey(user)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.headers["Location"] == "/login/code"
    page = client.get("/login/code").get_data(as_text=True)
    assert "Een passkey gebruiken" in page
    assert 'name="code"' not in page  # no authenticator app: the code form is not offered
    assert client.get("/account").status_code == 302
    options = client.post("/login/code/passkey/options").get_json()
    assert options["publicKey"]["userVerification"] == "required"
    assert len(options["publicKey"]["allowCredentials"]) == 1


def test_an_administrator_removes_every_passkey_of_someone(client, login_as):
    user = make_user("rep@example.org")
    make_passkey(user, "A")
    make_passkey(user, "B")
    login_as(make_user("official@example.org"))
    assert client.post(f"/admin/users/{user.id}/passkeys-reset").status_code == 403
    login_as(make_user("admin@example.org", is_admin=True))
    assert "A, B" in client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert client.post(f"/admin/users/{user.id}/passkeys-reset").status_code == 302
    assert db.session.scalars(select(Passkey)).all() == []
    reset = db.session.scalar(
        select(AuditEvent.payload).where(AuditEvent.action == "user.passkeys_reset")
    )
    assert json.loads(reset) == {"passkeys": ["A", "B"]}
