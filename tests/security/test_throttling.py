"""Throttling, not lockout (ASVS 2.2.1, issue 19): an attacked account is slowed down for
the addresses that attack it, across addresses; an office of colleagues behind one address
logs in; the owner's correct password from another address or from a browser that logged
in before is not refused; administrators see the throttled accounts."""

from __future__ import annotations

import json
import time

import pyotp
from sqlalchemy import select

from consensus.extensions import db
from consensus.identity import throttle
from consensus.models import AuditEvent
from tests.factories import PASSWORD, make_user

WRONG = "wrong password, typed on purpose"  # noqa: S105 - test password
OFFICE = "198.51.100.20"
REFUSED = "Er zijn te veel mislukte pogingen om op dit account in te loggen."


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def log_in(client, email: str, password: str = PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def throttled_events() -> list[dict]:
    return [
        json.loads(payload)
        for payload in db.session.scalars(
            select(AuditEvent.payload)
            .where(AuditEvent.action == "user.login_throttled")
            .order_by(AuditEvent.seq)
        )
    ]


def test_guesses_spread_over_addresses_slow_the_account_down(app):
    """Three addresses, two guesses each: after the free failures, an address that
    already failed is refused without its password being checked (even the right one), with
    a clear message and 429; the refusal is audited as an account throttle."""
    app.config["LOGIN_ACCOUNT_FREE_FAILURES"] = 6
    make_user("victim@example.org")
    attackers = [client_at(app, f"203.0.113.{n}") for n in range(1, 4)]
    for attacker in attackers:
        assert log_in(attacker, "victim@example.org", WRONG).status_code == 200
        assert log_in(attacker, "victim@example.org", WRONG).status_code == 200
    # Six failures: the account cools down (2 s, then 4 s, …).
    refused = log_in(attackers[0], "victim@example.org", PASSWORD)
    assert refused.status_code == 429
    page = refused.get_data(as_text=True)
    assert REFUSED in page
    assert attackers[0].get("/account").status_code == 302  # not logged in
    assert throttled_events()[-1] == {
        "email": "victim@example.org",
        "endpoint": "auth.login",
        "scope": "account",
    }
    # The same for another address that failed before.
    assert log_in(attackers[2], "victim@example.org", WRONG).status_code == 429


def test_the_owner_from_another_address_is_not_refused(app):
    app.config["LOGIN_ACCOUNT_FREE_FAILURES"] = 3
    make_user("victim@example.org")
    attacker = client_at(app, "203.0.113.7")
    for _ in range(3):
        assert log_in(attacker, "victim@example.org", WRONG).status_code == 200
    assert log_in(attacker, "victim@example.org").status_code == 429
    owner = client_at(app, "198.51.100.9")
    assert log_in(owner, "victim@example.org").status_code == 302
    assert owner.get("/account").status_code == 200


def test_a_browser_that_logged_in_before_is_not_held_up_behind_the_attackers_address(app):
    """The attacker sits behind the office's address too: the owner's browser carries the
    device cookie of an earlier login and gets in; a browser without it waits."""
    app.config["LOGIN_ACCOUNT_FREE_FAILURES"] = 3
    make_user("victim@example.org")
    owner = client_at(app, OFFICE)
    assert log_in(owner, "victim@example.org").status_code == 302
    assert owner.get_cookie(throttle.DEVICE_COOKIE) is not None
    owner.post("/logout")

    attacker = client_at(app, OFFICE)
    for _ in range(3):
        log_in(attacker, "victim@example.org", WRONG)
    assert log_in(attacker, "victim@example.org").status_code == 429
    assert log_in(owner, "victim@example.org").status_code == 302
    # The cookie is bound to its account: for another account it proves nothing.
    make_user("other@example.org")
    for _ in range(3):
        log_in(attacker, "other@example.org", WRONG)
    owner.post("/logout")
    assert log_in(owner, "other@example.org").status_code == 429


def test_the_account_slows_down_and_recovers(app):
    """Slowing, not locking: once the cooling period has passed, the next attempt is checked
    (and a right password logs in)."""
    app.config["LOGIN_ACCOUNT_FREE_FAILURES"] = 2
    app.config["LOGIN_ACCOUNT_MAX_DELAY_SECONDS"] = 1
    make_user("victim@example.org")
    client = client_at(app, "203.0.113.7")
    for _ in range(2):
        assert log_in(client, "victim@example.org", WRONG).status_code == 200
    assert log_in(client, "victim@example.org").status_code == 429
    time.sleep(1.1)
    assert log_in(client, "victim@example.org").status_code == 302


def test_ten_colleagues_behind_one_address_log_in_while_an_account_is_attacked(app):
    """The default limits: an attacker behind the office's address fails on one account
    until it is slowed down; ten colleagues (each with a typo first) and the attacked
    person's own first try from a fresh browser at home still get in."""
    for n in range(10):
        make_user(f"colleague{n}@example.org")
    make_user("victim@example.org")
    attacker = client_at(app, OFFICE)
    free = app.config["LOGIN_ACCOUNT_FREE_FAILURES"]
    for _ in range(free):
        assert log_in(attacker, "victim@example.org", WRONG).status_code == 200
    assert log_in(attacker, "victim@example.org", WRONG).status_code == 429
    for n in range(10):
        colleague = client_at(app, OFFICE)
        assert log_in(colleague, f"colleague{n}@example.org", WRONG).status_code == 200
        assert log_in(colleague, f"colleague{n}@example.org").status_code == 302
    assert log_in(client_at(app, "192.0.2.44"), "victim@example.org").status_code == 302


def test_the_per_address_limit_still_holds(app):
    """Many accounts guessed from one address: the address limit (429) stops it, whatever
    the accounts; the refusal is audited with its scope."""
    app.config["LOGIN_RATE_LIMIT"] = "5 per minute"
    client = client_at(app, "203.0.113.9")
    for n in range(5):
        assert log_in(client, f"person{n}@example.org", WRONG).status_code == 200
    assert log_in(client, "person9@example.org", WRONG).status_code == 429
    assert throttled_events()[-1]["scope"] == "address"


def test_second_factor_guesses_count_for_the_account(app):
    app.config["LOGIN_ACCOUNT_FREE_FAILURES"] = 3
    user = make_user("rep@example.org")
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled = True
    db.session.commit()
    client = client_at(app, "203.0.113.7")
    assert log_in(client, "rep@example.org").status_code == 302
    for _ in range(3):
        assert client.post("/login/code", data={"code": "000000"}).status_code == 200
    right = pyotp.TOTP(user.totp_secret).now()
    response = client.post("/login/code", data={"code": right})
    assert response.status_code == 429
    assert REFUSED in response.get_data(as_text=True)


def test_administrators_see_throttled_accounts(app, client, login_as):
    app.config["LOGIN_ACCOUNT_FREE_FAILURES"] = 3
    make_user("victim@example.org")
    make_user("fine@example.org")
    attacker = client_at(app, "203.0.113.7")
    for _ in range(3):
        log_in(attacker, "victim@example.org", WRONG)
    log_in(attacker, "fine@example.org", WRONG)
    admin = make_user("admin@example.org", is_admin=True)
    login_as(admin)
    page = client.get("/admin/throttled").get_data(as_text=True)
    assert "victim@example.org" in page
    assert "fine@example.org" not in page
    assert "Geblokkeerd" not in page
    assert client.get("/admin/").get_data(as_text=True).count("/admin/throttled") == 1
    nobody = make_user("official@example.org")
    login_as(nobody)
    assert client.get("/admin/throttled").status_code == 403
