"""Security events (ASVS V7.1, V7.2; BIO): what must be logged is logged, with actor,
action, object, result, origin and time, and no secret ever reaches the audit trail or the
application log."""

from __future__ import annotations

import logging
import re
import time

import pyotp
from sqlalchemy import select

from consensus.audit import checkpoints
from consensus.extensions import db
from consensus.models import AuditEvent, MembershipRole
from consensus.services import accounts, organisations
from consensus.web import SESSION_TOKEN_KEY
from tests.factories import PASSWORD, make_membership, make_organisation, make_user

NEW_PASSWORD = "a much longer secret 42"  # noqa: S105 - test password
WRONG_PASSWORD = "wrong password, typed on purpose"  # noqa: S105 - test password


def test_security_events_are_logged_without_secrets(app, client, caplog):
    app.config["LOGIN_RATE_LIMIT"] = "4 per minute"
    admin = make_user("admin@example.org", is_admin=True)
    user = make_user("rep@example.org")
    secrets: list[str] = [PASSWORD, NEW_PASSWORD, WRONG_PASSWORD]

    with caplog.at_level(logging.DEBUG):
        # Failed login, then the throttle (our lockout).
        for _ in range(4):
            client.post("/login", data={"email": "rep@example.org", "password": WRONG_PASSWORD})
        assert (
            client.post(
                "/login", data={"email": "rep@example.org", "password": WRONG_PASSWORD}
            ).status_code
            == 429
        )
        app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"

        # Log in, enrol TOTP, use a code and a recovery code.
        client.post("/login", data={"email": "rep@example.org", "password": PASSWORD})
        with client.session_transaction() as session:
            secrets.append(session[SESSION_TOKEN_KEY])
        secrets.append(client.get_cookie("session").value)
        client.get("/account/2fa")
        with client.session_transaction() as session:
            totp_secret = session["totp_pending"]
        secrets.append(totp_secret)
        code = pyotp.TOTP(totp_secret).now()
        secrets.append(code)
        page = client.post("/account/2fa", data={"code": code}).get_data(as_text=True)
        recovery = re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", page)
        assert recovery
        secrets.extend(recovery)
        client.post("/logout")
        client.post("/login", data={"email": "rep@example.org", "password": PASSWORD})
        next_code = pyotp.TOTP(totp_secret).at(time.time() + 30)
        secrets.append(next_code)
        client.post("/login/code", data={"code": next_code})
        client.post(
            "/account/password",
            data={
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        )
        client.post("/account/calendar")
        db.session.expire_all()
        secrets.append(db.session.get(type(user), user.id).calendar_token)
        issued = accounts.request_password_reset("rep@example.org", minutes=30)
        db.session.commit()
        secrets.append(issued[1])

        # Role and mandate changes, key changes.
        accounts.update_user(
            user,
            actor=admin,
            email=user.email,
            display_name=user.display_name,
            is_admin=False,
            is_facilitator=True,
            active=True,
        )
        organisation = make_organisation("vng")
        membership = make_membership(user, organisation, MembershipRole.OFFICIAL)
        organisations.update_membership(
            membership,
            actor=admin,
            role=MembershipRole.REPRESENTATIVE,
            title="Voorzitter",
            valid_from=None,
            valid_until=None,
        )
        checkpoints.init_key(actor=admin)
        checkpoints.init_key(actor=admin, rotate=True)
        db.session.commit()

    events = list(db.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())
    actions = {e.action for e in events}
    for required in [
        "user.login_failed",
        "user.login_throttled",
        "user.logged_in",
        "user.logged_out",
        "user.totp_enabled",
        "user.password_changed",
        "user.password_reset_requested",
        "user.calendar_token_reset",
        "user.roles_changed",
        "membership.created",
        "membership.updated",
        "platform_key.created",
        "platform_key.retired",
    ]:
        assert required in actions, required
    failed = next(e for e in events if e.action == "user.login_failed")
    assert failed.result == "failure" and failed.origin == "127.0.0.1"
    assert failed.created_at is not None and failed.object_id == str(user.id)

    haystack = "\n".join(
        [e.payload + e.object_id + e.origin for e in events]
        + [record.getMessage() for record in caplog.records]
        + [caplog.text]
    )
    leaked = [s for s in secrets if s and s in haystack]
    assert not leaked, leaked
