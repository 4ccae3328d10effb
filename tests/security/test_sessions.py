"""Server-side sessions (ASVS V3): new id at login, revocation on the server, timeouts."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from consensus.extensions import db
from consensus.models import AuditEvent, User, UserSession, utcnow
from consensus.services import accounts
from consensus.web import SESSION_TOKEN_KEY
from tests.factories import PASSWORD, make_user
from tests.helpers import give_session, set_production_environment

NEW_PASSWORD = "a much longer secret 42"  # noqa: S105 - test password


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def replay(app: Flask, cookie: str) -> FlaskClient:
    """A different client (an attacker) presenting a copied session cookie."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def token_of(client: FlaskClient) -> str | None:
    with client.session_transaction() as session:
        return session.get(SESSION_TOKEN_KEY)


def test_login_issues_a_new_session_id(client):
    """3.2.1: a token planted before login (session fixation) is not the one used after."""
    make_user("rep@example.org")
    with client.session_transaction() as session:
        session[SESSION_TOKEN_KEY] = "planted-by-an-attacker"
        session["something"] = "left over"
    login(client, "rep@example.org")
    token = token_of(client)
    assert token and token != "planted-by-an-attacker"
    with client.session_transaction() as session:
        assert "something" not in session
    login_again = cookie_of(client)
    client.post("/logout")
    login(client, "rep@example.org")
    assert token_of(client) != token
    assert cookie_of(client) != login_again


def test_the_token_is_stored_hashed(client):
    """3.2.2/3.2.3: the database never holds the cookie's token itself."""
    make_user("rep@example.org")
    login(client, "rep@example.org")
    token = token_of(client)
    stored = db.session.execute(select(UserSession.token_hash)).scalar_one()
    assert token not in stored and len(stored) == 64
    assert len(token) >= 40  # 32 random bytes, url-safe base64


def test_logout_invalidates_a_replayed_cookie(app, client):
    """3.3.1: after logout the old cookie is refused by the server."""
    make_user("rep@example.org")
    login(client, "rep@example.org")
    stolen = cookie_of(client)
    assert replay(app, stolen).get("/account").status_code == 200
    client.post("/logout")
    assert replay(app, stolen).get("/account").status_code == 302
    row = db.session.execute(select(UserSession)).scalar_one()
    assert row.ended_at is not None and row.end_reason == "logout"


def test_password_change_ends_every_session_and_continues_this_one(app, client):
    """3.3.3: a password change ends all sessions, replayed old cookies included."""
    user = make_user("rep@example.org")
    other_device = give_session(app, app.test_client(), user)
    login(client, "rep@example.org")
    stolen = cookie_of(client)
    response = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    assert other_device.get("/account").status_code == 302
    assert replay(app, stolen).get("/account").status_code == 302


def test_idle_timeout(app, client):
    """3.3.2: a session unused for longer than CONSENSUS_SESSION_IDLE_MINUTES ends."""
    assert app.config["SESSION_IDLE_MINUTES"] == 30
    user = make_user()
    give_session(app, client, user)
    db.session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=29)))
    db.session.commit()
    assert client.get("/account").status_code == 200  # activity renews it
    row = db.session.execute(select(UserSession)).scalar_one()
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)
    db.session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    db.session.commit()
    response = client.get("/account")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_short_idle_timeout_does_not_end_an_active_session(app, client):
    """3.3.2 with CONSENSUS_SESSION_IDLE_MINUTES=1: a request every 20 seconds keeps the
    session alive for as long as it goes on (the last-used time is refreshed after a tenth
    of the timeout, not once a minute); a minute without one ends it."""
    app.config["SESSION_IDLE_MINUTES"] = 1
    give_session(app, client, make_user())

    def time_passes(seconds: int) -> None:
        row = db.session.execute(select(UserSession)).scalar_one()
        row.created_at -= timedelta(seconds=seconds)
        row.last_seen_at -= timedelta(seconds=seconds)
        db.session.commit()

    for _ in range(6):  # two minutes of activity, a request every 20 seconds
        time_passes(20)
        assert client.get("/account").status_code == 200
    time_passes(61)
    response = client.get("/account")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_absolute_lifetime(app, client):
    """3.3.2: even an active session ends CONSENSUS_SESSION_MAX_HOURS after login."""
    app.config["SESSION_MAX_HOURS"] = 12
    give_session(app, client, make_user())
    db.session.execute(
        update(UserSession).values(created_at=utcnow() - timedelta(hours=12, minutes=1))
    )
    db.session.commit()
    assert client.get("/account").status_code == 302


def test_log_out_all_other_sessions(app, client):
    """3.3.4: the user sees their sessions and can end all the others."""
    user = make_user("rep@example.org")
    laptop = give_session(app, app.test_client(), user)
    phone = give_session(app, app.test_client(), user)
    login(client, "rep@example.org")
    page = client.get("/account").get_data(as_text=True)
    assert page.count("<tr>") >= 3
    response = client.post("/account/sessions/end-others")
    assert response.status_code == 302
    assert laptop.get("/account").status_code == 302
    assert phone.get("/account").status_code == 302
    assert client.get("/account").status_code == 200
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "user.other_sessions_ended")
    ).scalar_one()
    assert '"count":2' in event.payload


def test_deactivation_ends_sessions(app, client):
    admin = make_user(is_admin=True)
    user = make_user()
    give_session(app, client, user)
    assert client.get("/account").status_code == 200
    accounts.update_user(
        user,
        actor=admin,
        email=user.email,
        display_name=user.display_name,
        is_admin=False,
        is_facilitator=False,
        active=False,
    )
    db.session.commit()
    assert client.get("/account").status_code == 302
    row = db.session.execute(select(UserSession)).scalar_one()
    assert row.end_reason == "deactivated"


def test_a_cookie_without_a_server_session_is_refused(app, client):
    """A validly signed cookie naming a user is not enough: the server must know it."""
    user = make_user()
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    assert client.get("/account").status_code == 302
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session[SESSION_TOKEN_KEY] = "x" * 43
    assert client.get("/account").status_code == 302


def test_a_session_of_another_user_does_not_log_in_as_this_user(app, client):
    victim = make_user()
    attacker = make_user()
    give_session(app, client, attacker)
    with client.session_transaction() as session:
        session["_user_id"] = victim.get_id()
    assert client.get("/account").status_code == 302


def test_authenticated_pages_are_not_cached(client, login_as):
    """8.2.1: Cache-Control: no-store on every page of a logged-in person."""
    login_as(make_user())
    for url in ["/", "/account", "/processes/"]:
        assert client.get(url).headers["Cache-Control"] == "no-store"


def test_session_cookie_attributes_in_production(monkeypatch, tmp_path):
    """3.4.1-3.4.3: Secure, HttpOnly and SameSite on the session cookie."""
    from consensus.config import load_config

    set_production_environment(monkeypatch)
    monkeypatch.setenv("CONSENSUS_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("CONSENSUS_BASE_URL", "https://consensus.example.org")
    config = load_config(str(tmp_path))
    assert config["SESSION_COOKIE_SECURE"] and config["SESSION_COOKIE_HTTPONLY"]
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_user_of_session_is_gone(app, client):
    user = make_user()
    give_session(app, client, user)
    db.session.delete(db.session.get(User, user.id))
    db.session.commit()
    assert client.get("/account").status_code == 302
