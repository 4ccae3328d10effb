"""Reliability (ASVS V1.11, V11): races have one winner and no error page; a killed server
leaves an intact database and audit trail; backups restore exactly; SQLite is tuned."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from consensus import audit
from consensus.audit import verify as audit_verify
from consensus.extensions import db
from consensus.models import (
    AuditEvent,
    Base,
    Clearance,
    Membership,
    MembershipRole,
    RoundCompletion,
    RoundType,
    Stance,
    User,
    utcnow,
)
from tests.endorsement_support import make_world
from tests.factories import make_membership, make_organisation, make_process, make_user
from tests.helpers import give_session
from tests.tools import require_tool

THREADS = 8
REPO = Path(__file__).resolve().parents[2]


def race(clients: list[FlaskClient], request: Callable[[FlaskClient], object]) -> list[int]:
    """Release every client's request at the same moment; return the status codes."""
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def run(client: FlaskClient) -> None:
        try:
            barrier.wait(timeout=10)
            response = request(client)
            statuses.append(response.status_code)  # type: ignore[attr-defined]
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(statuses) == len(clients)
    return statuses


def sessions_for(app: Flask, user: User, count: int) -> list[FlaskClient]:
    return [give_session(app, app.test_client(), user) for _ in range(count)]


def count(model: type, *where: object) -> int:
    db.session.expire_all()
    return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_marking_input_complete_at_the_same_moment_has_one_winner(app):
    facilitator = make_user(is_facilitator=True)
    vng = make_organisation("vng")
    official = make_user()
    make_membership(official, vng, MembershipRole.OFFICIAL)
    now = utcnow()
    process = make_process(
        facilitator,
        [vng],
        rounds=[(RoundType.CONSULTATION, now - timedelta(minutes=1), now + timedelta(days=1))],
    )
    round_id = process.rounds[0].id
    url = f"/processes/{process.slug}/rounds/{round_id}/complete"
    clients = sessions_for(app, official, THREADS)
    db.session.remove()  # the threads use their own sessions; do not hold a transaction

    statuses = race(clients, lambda c: c.post(url, data={"organisation_id": vng.id}))

    assert set(statuses) <= {302, 409}, statuses  # a redirect with a message, or 409
    assert count(RoundCompletion) == 1
    assert count(AuditEvent, AuditEvent.action == "round.input_completed") == 1


def test_adding_the_same_membership_at_the_same_moment_has_one_winner(app):
    admin = make_user(is_admin=True)
    person = make_user()
    organisation = make_organisation("ipo")
    clients = sessions_for(app, admin, THREADS)
    url = f"/admin/users/{person.id}/memberships"
    data = {"m-organisation_id": organisation.id, "m-role": "official", "m-title": "Adviseur"}
    db.session.remove()

    statuses = race(clients, lambda c: c.post(url, data=data))

    assert set(statuses) <= {302, 400, 409}, statuses  # 400: "already a member" on the form
    assert statuses.count(302) == 1
    assert count(Membership, Membership.user_id == person.id) == 1
    assert count(AuditEvent, AuditEvent.action == "membership.created") == 1


def test_the_database_is_tuned_for_concurrent_writers(app):
    """SQLite: WAL, synchronous=FULL (an acknowledged commit survives power loss), a busy
    timeout and foreign keys. PostgreSQL: the READ COMMITTED isolation the row locks
    (SELECT … FOR UPDATE) are written for, and durable commits."""
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        else:
            assert conn.execute(text("SHOW transaction_isolation")).scalar() == "read committed"
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"


def test_twenty_stance_posts_at_once_are_taken_in_turn(app):
    """A representative's double click, twenty times over: twenty stance POSTs for one
    organisation at the same moment, each its own request and database connection. SQLite
    queues them on its write lock, PostgreSQL on a lock per round and organisation: on both,
    every one is accepted in turn and supersedes the one before (never the 409 page), one
    stance stays current, and the audit log verifies."""
    world = make_world()
    organisation = world.orgs[0]
    clients = sessions_for(app, world.reps[organisation.id], 20)
    url = f"/processes/{world.process.slug}/rounds/{world.round.id}/stances"
    data = {"organisation_id": organisation.id, "kind": "endorse"}
    of_organisation = Stance.organisation_id == organisation.id
    db.session.remove()

    statuses = race(clients, lambda c: c.post(url, data=data))

    assert statuses == [302] * 20, statuses
    assert count(Stance, of_organisation) == 20
    assert count(Stance, of_organisation, Stance.superseded_at.is_(None)) == 1
    assert count(AuditEvent, AuditEvent.action == "stance.cast") == 20
    assert audit_verify.verify_log(workers=0).ok


def test_clearances_at_once_are_taken_in_turn(app):
    """The same queue for an official's clearance (the same supersede-and-insert pattern)."""
    world = make_world(round_types=(RoundType.CLEARANCE,))
    organisation = world.orgs[0]
    clients = sessions_for(app, world.officials[organisation.id], THREADS)
    url = f"/processes/{world.process.slug}/rounds/{world.round.id}/clearances"
    data = {"organisation_id": organisation.id, "decision": "cleared"}
    of_organisation = Clearance.organisation_id == organisation.id
    db.session.remove()

    statuses = race(clients, lambda c: c.post(url, data=data))

    assert statuses == [302] * THREADS, statuses
    assert count(Clearance, of_organisation) == THREADS
    assert count(Clearance, of_organisation, Clearance.superseded_at.is_(None)) == 1


# --- Backup and restore ----------------------------------------------------------------------


def snapshot() -> dict[str, list[tuple[str, ...]]]:
    db.session.expire_all()
    result = {}
    for table in Base.metadata.sorted_tables:
        rows = db.session.execute(select(table)).all()
        result[table.name] = sorted(tuple(map(repr, row)) for row in rows)
    return result


def test_backup_and_restore_round_trip(app, runner, tmp_path):
    """The restored database equals the saved one, row for row, with the same audit root."""
    if db.engine.dialect.name == "postgresql":
        require_tool("pg_dump")
        require_tool("pg_restore")
    # A small world through the services (its own data, not the demo's, which others grow).
    facilitator = make_user("facilitator@example.org", is_facilitator=True)
    organisations = [make_organisation(slug) for slug in ("vng", "ipo", "uvw")]
    for organisation in organisations:
        make_membership(make_user(), organisation, MembershipRole.REPRESENTATIVE)
        make_membership(make_user(), organisation, MembershipRole.OBSERVER)
    now = utcnow()
    make_process(
        facilitator,
        organisations,
        rounds=[(RoundType.CONSULTATION, now - timedelta(minutes=1), now + timedelta(days=1))],
    )
    saved = snapshot()
    saved_head = audit.tree_head()
    assert saved_head[0] > 0
    path = tmp_path / "backup.db"
    db.session.remove()
    result = runner.invoke(args=["backup", str(path)])
    assert result.exit_code == 0, result.output
    assert saved_head[1].hex() in result.output
    assert path.stat().st_mode & 0o077 == 0

    # Life goes on: new people, new audit events, a deletion.
    make_user("later@example.org")
    db.session.execute(Membership.__table__.delete().where(Membership.role == "observer"))
    db.session.commit()
    assert audit.tree_head() != saved_head
    db.session.remove()

    result = runner.invoke(args=["restore", "--yes", str(path)])
    assert result.exit_code == 0, result.output
    assert saved_head[1].hex() in result.output
    assert snapshot() == saved
    assert audit.tree_head() == saved_head
    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output


def test_backup_refuses_to_overwrite_and_restore_refuses_garbage(app, runner, tmp_path):
    existing = tmp_path / "exists.db"
    existing.write_text("x")
    assert runner.invoke(args=["backup", str(existing)]).exit_code != 0
    if db.engine.dialect.name == "sqlite":
        assert runner.invoke(args=["restore", "--yes", str(existing)]).exit_code != 0
        empty = tmp_path / "empty.db"
        sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
        assert runner.invoke(args=["restore", "--yes", str(empty)]).exit_code != 0
        assert count(User) == 0 and "user_account" in db.inspect(db.engine).get_table_names()


# --- Crash: kill -9 under write load ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flask(args: list[str], env: dict[str, str], **kwargs: object) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "flask", "--app", "consensus", *args]
    return subprocess.Popen(command, env=env, cwd=REPO, **kwargs)  # type: ignore[call-overload]


def _migrate(url: str) -> None:
    """Create the scratch database in-process (a subprocess would pay the imports again)."""
    from flask_migrate import upgrade

    from consensus import create_app

    scratch = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
    with scratch.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


def _write_load(port: int, stop: threading.Event, done: list[int]) -> None:
    """Failed logins, each an audit event (a write), with a valid CSRF token."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/login")
        response = connection.getresponse()
        page = response.read().decode()
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        body = f"csrf_token={token}&email=nobody%40example.org&password=wrong-password"
        while not stop.is_set():
            connection.request(
                "POST",
                "/login",
                body=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Cookie": cookie,
                },
            )
            response = connection.getresponse()
            response.read()
            done.append(response.status)
    except (OSError, http.client.HTTPException):
        # The server was killed under us (mid-answer: IncompleteRead): that is the point.
        return
    finally:
        connection.close()


@pytest.mark.slow
def _scratch_database(tmp_path: Path, database_url: str) -> str:
    """A fresh database of the same kind as the suite's: a file, or a new PostgreSQL DB."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'crash.sqlite'}"
    from sqlalchemy import create_engine

    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS consensus_crash"))
        conn.execute(text("CREATE DATABASE consensus_crash"))
    admin.dispose()
    return database_url.rsplit("/", 1)[0] + "/consensus_crash"


def test_kill_9_under_write_load_leaves_an_intact_database(tmp_path, database_url):
    """The app server is killed mid-write: afterwards the database is intact (SQLite's
    integrity_check; on PostgreSQL its own consistency) and the audit log verifies."""
    scratch = _scratch_database(tmp_path, database_url)
    port = _free_port()
    env = {
        **os.environ,
        "CONSENSUS_INSTANCE_PATH": str(tmp_path / "instance"),
        "CONSENSUS_DATABASE_URL": scratch,
        "CONSENSUS_RATELIMIT_ENABLED": "0",
        "CONSENSUS_ENV": "development",
    }
    env.pop("CONSENSUS_TEST_DATABASE_URL", None)
    _migrate(scratch)
    server = _flask(
        ["run", "--port", str(port), "--no-reload", "--no-debugger", "--with-threads"],
        env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert server.poll() is None, "the server did not start"
                assert time.monotonic() < deadline, "the server did not start in time"
                time.sleep(0.2)
        stop = threading.Event()
        done: list[int] = []
        workers = [threading.Thread(target=_write_load, args=(port, stop, done)) for _ in range(4)]
        for worker in workers:
            worker.start()
        while len(done) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(server.pid, signal.SIGKILL)  # mid-write, no goodbye
        server.wait(timeout=10)
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    assert len(done) >= 20 and set(done) == {200}, set(done)

    if scratch.startswith("sqlite"):
        connection = sqlite3.connect(scratch.removeprefix("sqlite:///"))
        try:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            events = connection.execute(
                "SELECT count(*) FROM audit_event WHERE action = 'user.login_failed'"
            ).fetchone()[0]
        finally:
            connection.close()
    else:
        from sqlalchemy import create_engine

        engine = create_engine(scratch)
        with engine.connect() as conn:
            # Every committed event is whole; nothing half-written is visible.
            events = conn.execute(
                text("SELECT count(*) FROM audit_event WHERE action = 'user.login_failed'")
            ).scalar_one()
            head = conn.execute(text("SELECT size FROM audit_log_head")).scalar_one()
            assert head == conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one()
        engine.dispose()
    assert events >= 1
    verify = _flask(["audit", "verify"], env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = verify.communicate(timeout=120)
    assert verify.returncode == 0, output.decode()
    assert b"OK:" in output


def test_the_first_events_of_an_empty_log_can_be_written_at_the_same_moment(app):
    """On an empty database several requests may write the very first audit events at
    once (e.g. failed logins right after install): all succeed, the log stays gap-free."""
    assert count(AuditEvent) == 0
    clients = [app.test_client() for _ in range(THREADS)]
    db.session.remove()

    statuses = race(
        clients,
        lambda c: c.post("/login", data={"email": "nobody@example.org", "password": "wrong"}),
    )

    assert statuses == [200] * THREADS, statuses
    assert count(AuditEvent) == THREADS
    seqs = sorted(db.session.execute(select(AuditEvent.seq)).scalars())
    assert seqs == list(range(1, THREADS + 1))
    assert audit.tree_head()[0] == THREADS
