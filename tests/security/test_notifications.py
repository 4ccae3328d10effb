"""ASVS 2.2.3 / 2.5.5: security-relevant account changes are announced by e-mail
(real SMTP server on loopback), in the person's language, without secrets in the mail."""

from __future__ import annotations

import pyotp

from consensus.extensions import db
from consensus.models import User
from tests.factories import PASSWORD, make_user
from tests.security.test_passwords import NEW_PASSWORD, inbox  # noqa: F401 - fixture


def _subjects(inbox) -> list[str]:  # noqa: F811
    return [str(m["Subject"]) for m in inbox.messages]


def test_password_change_is_announced(client, login_as, inbox):  # noqa: F811
    user = make_user("mail@example.org")
    login_as(user)
    response = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert _subjects(inbox) == ["Uw wachtwoord voor Consensus is gewijzigd"]
    (message,) = inbox.messages
    assert message["To"] == "mail@example.org"
    # Text and HTML (the outbox sends both): each says it, neither holds the password.
    body = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (body, html):
        assert "Was dit niet u?" in part
        assert NEW_PASSWORD not in part and PASSWORD not in part


def test_two_factor_on_and_off_are_announced_in_the_users_language(client, login_as, inbox):  # noqa: F811
    user = make_user()
    user.locale = "en"
    db.session.commit()
    login_as(user)
    client.get("/account/2fa")
    with client.session_transaction() as session:
        secret = session["totp_pending"]
    client.post("/account/2fa", data={"code": pyotp.TOTP(secret).now()})
    client.post("/account/2fa/off", data={"password": PASSWORD})
    db.session.expire_all()
    assert not db.session.get(User, user.id).totp_enabled
    assert _subjects(inbox) == [
        "Two-factor authentication was turned on for your Consensus account",
        "Two-factor authentication was turned off for your Consensus account",
    ]
    assert secret not in inbox.messages[0].as_string()


def test_a_failed_change_sends_nothing(client, login_as, inbox):  # noqa: F811
    login_as(make_user())
    client.post(
        "/account/password",
        data={
            "current_password": "not the password",
            "new_password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert inbox.messages == []
