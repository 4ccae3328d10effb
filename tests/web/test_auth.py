"""Logging in and out, the rate limit, two-factor authentication and passwords."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import AuditEvent, MembershipRole, User
from tests.factories import PASSWORD, make_membership, make_organisation, make_user
from tests.helpers import give_session


def login(client, email: str, password: str = PASSWORD, next: str | None = None):
    url = "/login" + (f"?next={next}" if next else "")
    return client.post(url, data={"email": email, "password": password})


def actions() -> list[str]:
    return list(db.session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def test_login_shows_the_organisation(client):
    organisation = make_organisation("vng", name="Vereniging van Nederlandse Gemeenten")
    user = make_user("rep@example.org", name="Marieke")
    make_membership(user, organisation, MembershipRole.REPRESENTATIVE, title="Voorzitter")

    response = login(client, "REP@example.org ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Vereniging van Nederlandse Gemeenten" in page
    assert "Voorzitter" in page
    assert "user.logged_in" in actions()


@pytest.mark.parametrize(
    ("email", "password"),
    [("rep@example.org", "wrong password!!"), ("nobody@example.org", PASSWORD)],
)
def test_failed_login_gives_one_generic_message(client, email, password):
    make_user("rep@example.org")
    response = login(client, email, password)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Het e-mailadres of wachtwoord is niet juist." in page
    assert client.get("/account").status_code == 302  # still anonymous
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "user.login_failed")
    ).scalar_one()
    assert event.result == "failure"
    assert password not in event.payload


def test_inactive_user_cannot_log_in(client):
    make_user("gone@example.org", active=False)
    response = login(client, "gone@example.org")
    assert "Het e-mailadres of wachtwoord is niet juist." in response.get_data(as_text=True)


def test_login_is_rate_limited(app, client):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    make_user("rep@example.org")
    for _ in range(3):
        assert login(client, "rep@example.org", "wrong password!!").status_code == 200
    response = login(client, "rep@example.org")
    assert response.status_code == 429
    assert "Te veel pogingen" in response.get_data(as_text=True)
    assert client.get("/account").status_code == 302


def test_open_redirect_after_login_is_refused(client):
    make_user("rep@example.org")
    response = login(client, "rep@example.org", next="//evil.example/")
    assert response.headers["Location"] == "/"
    client.post("/logout")
    response = login(client, "rep@example.org", next="/account")
    assert response.headers["Location"] == "/account"


def test_logout_ends_the_session(client, login_as):
    user = make_user()
    login_as(user)
    assert client.get("/account").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 302
    assert client.get("/account").status_code == 302
    assert "user.logged_out" in actions()


def test_logout_needs_post(client, login_as):
    login_as(make_user())
    assert client.get("/logout").status_code == 405
    assert client.get("/account").status_code == 200


def enrol_totp(client) -> tuple[str, list[str]]:
    client.get("/account/2fa")
    with client.session_transaction() as session:
        secret = session["totp_pending"]
    code = pyotp.TOTP(secret).now()
    response = client.post("/account/2fa", data={"code": code})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    codes = re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", page)
    return secret, codes


def test_totp_enrolment_shows_qr_and_recovery_codes(client, login_as):
    user = make_user()
    login_as(user)
    page = client.get("/account/2fa").get_data(as_text=True)
    assert "<svg" in page
    with client.session_transaction() as session:
        secret = session["totp_pending"]
    assert secret in page

    wrong = client.post("/account/2fa", data={"code": "000000"})
    assert "Die code klopt niet" in wrong.get_data(as_text=True)
    assert not db.session.get(User, user.id).totp_enabled

    _, codes = enrol_totp(client)
    assert len(codes) == 10
    db.session.expire_all()
    assert db.session.get(User, user.id).totp_enabled
    assert "user.totp_enabled" in actions()


def test_totp_login_needs_a_fresh_code(client, login_as):
    user = make_user("two@example.org")
    login_as(user)
    secret, recovery_codes = enrol_totp(client)
    client.post("/logout")

    response = login(client, "two@example.org")
    assert response.headers["Location"] == "/login/code"
    assert client.get("/account").status_code == 302  # not logged in yet

    response = client.post("/login/code", data={"code": "123456"})
    assert "Die code is niet juist." in response.get_data(as_text=True)

    # The code used to enrol is spent; the next time step's code works once.
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    response = client.post("/login/code", data={"code": next_code})
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    client.post("/logout")

    login(client, "two@example.org")
    response = client.post("/login/code", data={"code": next_code})
    assert "Die code is niet juist." in response.get_data(as_text=True)

    response = client.post("/login/code", data={"code": recovery_codes[0]})
    assert response.status_code == 302
    client.post("/logout")
    login(client, "two@example.org")
    response = client.post("/login/code", data={"code": recovery_codes[0]})
    assert "Die code is niet juist." in response.get_data(as_text=True)


def test_second_factor_step_needs_the_password_step(client):
    response = client.post("/login/code", data={"code": "123456"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"


def test_required_2fa_sends_representatives_to_enrol(app, client, login_as):
    app.config["REQUIRE_2FA"] = True
    rep = make_user()
    make_membership(rep, make_organisation(), MembershipRole.REPRESENTATIVE)
    official = make_user()
    make_membership(official, make_organisation(), MembershipRole.OFFICIAL)

    login_as(rep)
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/2fa"
    enrol_totp(client)
    assert client.get("/").status_code == 200

    login_as(official)
    assert client.get("/").status_code == 200


def test_password_change_logs_out_other_sessions(app, login_as):
    user = make_user()
    other_device = give_session(app, app.test_client(), user)
    assert other_device.get("/account").status_code == 200

    client = login_as(user)
    response = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": "a much longer secret 42",
            "confirm": "a much longer secret 42",
        },
    )
    assert response.status_code == 302
    assert client.get("/account").status_code == 200  # this session goes on
    assert other_device.get("/account").status_code == 302  # the other one is refused


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "current_password": "not it at all",
                "new_password": "a much longer secret 42",
                "confirm": "a much longer secret 42",
            },
            "Het huidige wachtwoord is niet juist.",
        ),
        (
            {"current_password": PASSWORD, "new_password": "short", "confirm": "short"},
            "Gebruik minstens 12 tekens.",
        ),
        (
            {
                "current_password": PASSWORD,
                "new_password": "a much longer secret 42",
                "confirm": "a much longer secret 43",
            },
            "De twee wachtwoorden zijn niet hetzelfde.",
        ),
    ],
)
def test_password_change_rejects_bad_input(client, login_as, data, message):
    user = make_user()
    login_as(user)
    before = user.password_hash
    response = client.post("/account/password", data=data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash == before


def test_an_anonymous_visitor_gets_the_session_cookie_once(client):
    """The login form's CSRF token is kept in the session: sent once, not with every page."""
    first = client.get("/login")
    assert any(c.startswith("session=") for c in first.headers.getlist("Set-Cookie"))
    for path in ("/login", "/about", "/login"):
        again = client.get(path)
        assert again.status_code == 200
        assert again.headers.getlist("Set-Cookie") == [], path
    # The token still works: the form it came with logs in.
    user = make_user("anon-then-in@example.org")
    assert login(client, user.email).status_code == 302
    assert client.get("/account").status_code == 200


def test_a_logged_in_session_from_another_browser_is_refused(client):
    """Flask-Login's strong protection still holds where there is a login: the session
    cookie of one browser (its User-Agent) does not log in another."""
    make_user("moved@example.org")
    headers = {"User-Agent": "Browser A"}
    assert (
        client.post(
            "/login", data={"email": "moved@example.org", "password": PASSWORD}, headers=headers
        ).status_code
        == 302
    )
    assert client.get("/account", headers=headers).status_code == 200
    stolen = client.get("/account", headers={"User-Agent": "Browser B"})
    assert stolen.status_code == 302 and "/login" in stolen.headers["Location"]
