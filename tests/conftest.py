"""Fixtures: a real database (SQLite by default, PostgreSQL when
CONSENSUS_TEST_DATABASE_URL is set), migrated once per run and emptied after each test."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, current_app, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import event, text

_INSTANCE = tempfile.mkdtemp(prefix="consensus-test-instance-")
os.environ["CONSENSUS_INSTANCE_PATH"] = _INSTANCE

from hypothesis import settings  # noqa: E402

from consensus import create_app  # noqa: E402
from consensus.extensions import db, limiter  # noqa: E402
from consensus.models import Base, User  # noqa: E402
from tests.helpers import give_session  # noqa: E402

# Hypothesis's per-example deadline (200 ms) measures the machine, not the rule: with the
# suite on every core next to browsers and servers, one example of a fast rule took 320 ms.
# The properties are checked in full all the same; speed has tests of its own.
settings.register_profile("consensus", deadline=None)
settings.load_profile("consensus")


def test_database_url(tmp_dir: str) -> str:
    """SQLite in the run's temporary directory, or CONSENSUS_TEST_DATABASE_URL.

    Under pytest-xdist every worker has a database of its own: SQLite files are apart by
    their temporary directories; on PostgreSQL each worker creates `<name>_<worker>` next to
    the given database (dropped and created anew), so workers never empty each other's
    tables."""
    url = os.environ.get("CONSENSUS_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{Path(tmp_dir) / 'test.sqlite'}"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and url.startswith("postgresql"):
        url = _worker_database(url, worker)
    return url


def _worker_database(url: str, worker: str) -> str:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    given = make_url(url)
    own = given.set(database=f"{given.database}_{worker}")
    engine = create_engine(given, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{own.database}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{own.database}"')
    finally:
        engine.dispose()
    return own.render_as_string(hide_password=False)


TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    "WTF_CSRF_ENABLED": False,
    "RATELIMIT_ENABLED": True,
}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate a fresh database once for the whole run (this also proves upgrade works)."""
    from flask_migrate import upgrade

    url = test_database_url(str(tmp_path_factory.mktemp("db")))
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        if url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()
    return url


def _empty_all_tables() -> None:
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # DELETE (children first) and sequences back to 1, in one round trip: TRUNCATE
            # gives every table new files, which cost ~0.1-0.2 s per test; this costs ~3 ms.
            deletes = "".join(
                f'DELETE FROM "{t.name}";' for t in reversed(Base.metadata.sorted_tables)
            )
            conn.exec_driver_sql(
                deletes + "SELECT setval(c.oid, 1, false) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'S' AND n.nspname = current_schema();"
            )
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    # An emptied database repeats the audit log's head of the last one: what the fragment
    # cache keeps under that head is another database's (as after restoring a backup).
    if has_app_context():
        fragments = current_app.extensions.get("consensus.web.fragments")
        if fragments is not None:
            fragments.clear()


@pytest.fixture(scope="session")
def _shared_app(database_url: str) -> Flask:
    """One application for the run: building one compiles ~120 URL rules (~0.1 s), which
    per test was a minute and more of every suite. Each test gets it back as new (below)."""
    return create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})


@pytest.fixture
def app(_shared_app: Flask) -> Iterator[Flask]:
    """The application, as if just created: the test's own app context, its configuration
    restored afterwards, rate limits and the fragment cache (keyed by the audit log's head,
    which repeats in every emptied database) empty."""
    app = _shared_app
    config = dict(app.config)
    limiter.reset()
    # The limiter is one object for every app: an app a test built with limits off
    # (create_app → limiter.init_app) switched it off for the tests after it too.
    limiter.enabled = bool(app.config["RATELIMIT_ENABLED"])
    fragments = app.extensions.get("consensus.web.fragments")
    if fragments is not None:
        fragments.clear()
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            _empty_all_tables()
            db.engine.dispose()
            app.config.clear()
            app.config.update(config)


@pytest.fixture
def fresh_app(app: Flask, database_url: str) -> Iterator[Flask]:
    """An application of its own, for a test that adds routes (the shared one has already
    served requests, after which Flask refuses new ones). Same database, same cleaning."""
    own = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    with own.app_context():
        try:
            yield own
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


@pytest.fixture
def login_as(app: Flask, client: FlaskClient) -> Callable[[User], FlaskClient]:
    """Log a user in by giving the test client that user's session."""

    def _login(user: User) -> FlaskClient:
        return give_session(app, client, user)

    return _login


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app: Flask) -> Callable[[], object]:
    """Usage: `with count_queries() as counter: ...; counter.count`."""

    @contextmanager
    def _count() -> Iterator[QueryCounter]:
        counter = QueryCounter()

        def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            counter.statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            yield counter
        finally:
            event.remove(db.engine, "before_cursor_execute", before)

    return _count


@pytest.fixture
def page_queries(count_queries: Callable[[], Any]) -> Callable[[FlaskClient, str], QueryCounter]:
    """Count the statements of a warm GET: `page_queries(client, url)` -> QueryCounter.

    The page is fetched once to warm the caches, then again under the counter. Work that
    happens at most once a minute (the session's last-seen time, the round clock's next due
    moment) would land in a measurement only when a minute boundary passes, so warm-up and
    measurement are repeated until both happen within one clock minute.
    """

    def _measure(client: FlaskClient, url: str) -> QueryCounter:
        while True:
            minute = int(time.time() // 60)
            client.get(url)
            with count_queries() as counter:
                response = client.get(url)
                response.get_data()
            assert response.status_code == 200, (url, response.status_code)
            if int(time.time() // 60) == minute:
                return counter  # type: ignore[no-any-return]

    return _measure


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """CONSENSUS_TEST_DATABASE_ONLY=1 (.ci/run's PostgreSQL pass): run only the tests that use
    the database under test.

    A test reaches CONSENSUS_TEST_DATABASE_URL only through the `database_url` fixture (every
    app, client and browser fixture stands on it). A test without it in its fixture closure
    — a pure rule, a subprocess with its own SQLite file, the scale-out test with its own
    PostgreSQL cluster — does exactly the same in both passes, so the first pass (README's
    command, every test) has run it already; the second would only repeat it."""
    if os.environ.get("CONSENSUS_TEST_DATABASE_ONLY") != "1":
        return
    if not os.environ.get("CONSENSUS_TEST_DATABASE_URL"):
        raise pytest.UsageError(
            "CONSENSUS_TEST_DATABASE_ONLY=1 is for a second pass on CONSENSUS_TEST_DATABASE_URL"
        )
    kept = [item for item in items if "database_url" in getattr(item, "fixturenames", ())]
    dropped = [item for item in items if "database_url" not in getattr(item, "fixturenames", ())]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
