"""Domain events and the wiring in create_app: an event recorded in a transaction reaches its
handlers once, after COMMIT, and never when the transaction is rolled back; a failing
handler is logged and the request still succeeds; security mails (a real SMTP server,
aiosmtpd) arrive only after the change was committed; a fresh app has every hook once."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from consensus import create_app, events, notifications
from consensus.extensions import db
from consensus.models import User
from consensus.services import accounts, endorsements, positions, processes
from consensus.signing import cosigning
from tests.conftest import TEST_CONFIG
from tests.factories import PASSWORD, make_user
from tests.security.test_passwords import NEW_PASSWORD, Inbox, mail_server


@contextmanager
def handler_for(app, event_type) -> Iterator[list[events.Event]]:  # type: ignore[no-untyped-def]
    """Register a handler that collects what it receives; removed afterwards (the app is
    shared by the whole run)."""
    received: list[events.Event] = []

    def collect(event: events.Event) -> None:
        received.append(event)

    events.on(app, event_type, collect)
    try:
        yield received
    finally:
        app.extensions["consensus.events"][event_type].remove(collect)


def _opened(n: int = 1) -> events.RoundOpened:
    return events.RoundOpened(round_id=n, process_id=n, round_type="endorsement")


def test_an_event_reaches_its_handler_once_after_commit(app):
    make_user()  # something to commit
    with handler_for(app, events.RoundOpened) as received:
        events.record(_opened())
        db.session.flush()
        assert received == []  # recorded, not yet told
        db.session.commit()
        assert [e.round_id for e in received] == [1]
        make_user()
        db.session.commit()  # a later transaction does not tell it again
        assert len(received) == 1


def test_a_rolled_back_transaction_tells_nobody(app):
    with handler_for(app, events.RoundOpened) as received:
        make_user()
        events.record(_opened())
        db.session.rollback()
        make_user()
        db.session.commit()
        assert received == []
        events.record(_opened(2))
        db.session.close()  # closed without a commit: also did not happen
        make_user()
        db.session.commit()
        assert received == []


def test_a_rolled_back_savepoint_drops_only_its_own_events(app):
    with handler_for(app, events.RoundOpened) as received:
        events.record(_opened(1))
        savepoint = db.session.begin_nested()
        events.record(_opened(2))
        savepoint.rollback()
        with db.session.begin_nested():
            events.record(_opened(3))
        make_user()
        db.session.commit()
        assert [e.round_id for e in received] == [1, 3]


def test_handlers_run_when_the_change_is_durable(app):
    """A handler sees the committed state from any other connection: it is told after the
    COMMIT, never while the change could still be undone."""
    seen = []

    def look(event: events.Event) -> None:
        with db.engine.connect() as other:
            seen.append(
                other.execute(select(User.id).where(User.email == "durable@example.org")).all()
            )

    events.on(app, events.RoundOpened, look)
    try:
        events.record(_opened())
        make_user("durable@example.org")
        db.session.commit()
    finally:
        app.extensions["consensus.events"][events.RoundOpened].remove(look)
    assert len(seen) == 1 and len(seen[0]) == 1


def test_a_failing_handler_is_logged_and_the_request_succeeds(app, client, login_as, caplog):
    user = make_user("anna@example.org")
    db.session.commit()

    def broken(event: events.Event) -> None:
        raise RuntimeError("webhook endpoint down")

    events.on(app, events.SecurityChanged, broken)
    try:
        with (
            mail_server(app, Inbox()) as inbox,
            caplog.at_level(logging.ERROR, logger="consensus.events"),
        ):
            response = login_as(user).post(
                "/account/password",
                data={
                    "current_password": PASSWORD,
                    "new_password": NEW_PASSWORD,
                    "confirm": NEW_PASSWORD,
                },
            )
    finally:
        app.extensions["consensus.events"][events.SecurityChanged].remove(broken)
    assert response.status_code == 302
    db.session.expire_all()
    assert accounts.authenticate("anna@example.org", NEW_PASSWORD) is not None
    assert "webhook endpoint down" in caplog.text and "SecurityChanged" in caplog.text
    # The other handler (the security mail) still ran.
    assert [m["Subject"] for m in inbox.messages] == ["Uw wachtwoord voor Consensus is gewijzigd"]


def test_security_mail_is_sent_only_after_commit(app):
    user = make_user("bert@example.org")
    db.session.commit()
    with mail_server(app, Inbox()) as inbox:
        accounts.change_password(user, current_password=PASSWORD, new_password=NEW_PASSWORD)
        assert inbox.messages == []  # changed in the transaction, not yet told
        db.session.rollback()
        assert inbox.messages == []  # and it never happened
        user = db.session.execute(select(User).where(User.email == "bert@example.org")).scalar_one()
        accounts.change_password(user, current_password=PASSWORD, new_password=NEW_PASSWORD)
        assert inbox.messages == []
        db.session.commit()
        assert [m["To"] for m in inbox.messages] == ["bert@example.org"]
        assert "gewijzigd" in inbox.messages[0]["Subject"]


def test_a_failed_attempt_sends_no_security_mail(app, client, login_as):
    user = make_user("carla@example.org")
    db.session.commit()
    with mail_server(app, Inbox()) as inbox:
        response = login_as(user).post(
            "/account/password",
            data={
                "current_password": "not the password",
                "new_password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        )
    assert response.status_code == 200
    assert inbox.messages == []


@pytest.mark.parametrize("twice", [False, True])
def test_a_fresh_app_has_every_hook_registered_once(app, database_url, twice):
    """Importing the services registers nothing; create_app registers everything, once,
    however many apps a process makes."""
    saved = (
        list(processes.ROUND_CLOSED_HOOKS),
        list(processes.ROUND_OPEN_CHECKS),
        dict(processes.STATUS_PROVIDERS),
        list(positions.VERSION_CREATED_HOOKS),
    )
    processes.ROUND_CLOSED_HOOKS.clear()
    processes.ROUND_OPEN_CHECKS.clear()
    processes.STATUS_PROVIDERS.clear()
    positions.VERSION_CREATED_HOOKS.clear()
    try:
        for _ in range(2 if twice else 1):
            fresh = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
        assert [
            endorsements._on_round_closed,
            cosigning._on_round_closed,
        ] == processes.ROUND_CLOSED_HOOKS
        assert [
            positions._pin_latest_on_open,
            endorsements.require_clearance_before_endorsement,
        ] == processes.ROUND_OPEN_CHECKS
        assert set(processes.STATUS_PROVIDERS) == set(processes.RoundType)
        assert [endorsements.on_version_created] == positions.VERSION_CREATED_HOOKS
        assert events.handlers_for(fresh, events.SecurityChanged) == [
            notifications.send_security_notice
        ]
    finally:
        processes.ROUND_CLOSED_HOOKS[:] = saved[0]
        processes.ROUND_OPEN_CHECKS[:] = saved[1]
        processes.STATUS_PROVIDERS.clear()
        processes.STATUS_PROVIDERS.update(saved[2])
        positions.VERSION_CREATED_HOOKS[:] = saved[3]


def test_importing_the_services_registers_nothing():
    code = (
        "from consensus import signing\n"
        "from consensus.services import endorsements, positions, processes\n"
        "print(len(processes.ROUND_CLOSED_HOOKS), len(processes.ROUND_OPEN_CHECKS),"
        " len(processes.STATUS_PROVIDERS), len(positions.VERSION_CREATED_HOOKS))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["0", "0", "0", "0"]


def test_a_released_savepoint_does_not_dispatch(app):
    """SQLAlchemy signals after_commit for a released SAVEPOINT too; the events wait for
    the outermost COMMIT (a handler must never run while the change can still roll back)."""
    seen: list[events.Event] = []

    def look(event: events.Event) -> None:
        seen.append(event)

    events.on(app, events.RoundOpened, look)
    try:
        make_user("savepoint@example.org")
        with db.session.begin_nested():
            events.record(_opened())
        assert seen == []  # released, not committed
        db.session.rollback()
        assert seen == []  # and it never happened
        make_user("savepoint2@example.org")
        with db.session.begin_nested():
            events.record(_opened())
        db.session.commit()
        assert len(seen) == 1
    finally:
        app.extensions["consensus.events"][events.RoundOpened].remove(look)
