"""The application factory: the Flask app with its extensions, blueprints and commands."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import wtforms
from flask import Flask, Response, has_request_context, request, session
from flask_babel import get_locale
from flask_login import current_user

from consensus import cli, transactions
from consensus.config import load_config
from consensus.extensions import babel, csrf, db, htmx, limiter, login_manager
from consensus.resources import resource_path
from consensus.web import fragments, i18n, proxy, security, shared_cache


def select_locale() -> str:
    """The user's saved choice, else the language cookie's (the public pages' switch, see
    consensus.web.shared_cache), else the session's, else Dutch."""
    if not has_request_context():
        return "nl"
    if request.path.startswith("/api/") and request.accept_languages:
        # A program says its language in the request (the API has no cookies of its own);
        # without one, a token's owner gets their own language, anyone else Dutch.
        return request.accept_languages.best_match(["nl", "en"]) or "nl"
    if current_user and current_user.is_authenticated:
        return current_user.locale
    locale = shared_cache.cookie_locale() or session.get("locale")
    return locale if locale in {"nl", "en"} else "nl"


def create_app(test_config: dict[str, Any] | None = None, *, migrations: bool = True) -> Flask:
    """The application. `migrations=False` (consensus.wsgi: the web workers) leaves out
    Flask-Migrate and with it Alembic and Mako, about 11 MiB per worker that only the
    `flask db` commands use (issue 23: lean workers)."""
    app = Flask(
        "consensus",
        template_folder=str(resource_path("templates")),
        static_folder=str(resource_path("static")),
        instance_path=os.environ.get("CONSENSUS_INSTANCE_PATH") or None,
        instance_relative_config=True,
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)

    db.init_app(app)
    if migrations:
        from flask_migrate import Migrate

        Migrate(
            app,
            db,
            directory=str(resource_path("migrations")),
            render_as_batch=True,
            compare_type=True,
        )
    csrf.init_app(app)
    # Our catalog plus WTForms' own, so its built-in messages ("Not a valid choice") are
    # Dutch too.
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=";".join(
            [
                str(Path(__file__).parent / "translations"),
                str(Path(wtforms.__file__).parent / "locale"),
            ]
        ),
        default_domain="messages;wtforms",
    )
    i18n.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    security.init_app(app)
    fragments.init_app(app)
    shared_cache.init_app(app)

    from consensus import hooks
    from consensus.api import init_app as init_api
    from consensus.web import init_app as init_web

    hooks.register(app)
    init_web(app)
    init_api(app)  # the REST API (/api/v1): after the pages, its own errors on its blueprints
    cli.init_app(app)

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        _tune_sqlite(app)

    if app.config.get("INSTANCE_NAME"):
        _name_the_instance(app, str(app.config["INSTANCE_NAME"]))

    @app.context_processor
    def inject_locale() -> dict[str, Any]:
        # The locale as Flask-Babel settled it (not the selector again: a cached part renders
        # without a viewer, and the locale is in its key). Mail rendered by an event handler
        # after a commit outside a request (the CLI, the clock) has no request path.
        path = request.full_path if has_request_context() else ""
        return {"current_locale": str(get_locale()), "request_path": path}

    logging.getLogger("consensus").setLevel(logging.INFO)
    proxy.init_app(app)  # the outermost WSGI layer: client address and our host first
    # Flask gives its logger ("consensus") a stderr handler unless one is configured; reach
    # for it now, so the package's INFO lines (mail written to the console) show from the start.
    app.logger  # noqa: B018
    return app


def _name_the_instance(app: Flask, name: str) -> None:
    """Say which instance answered (X-Consensus-Instance), for operators behind a load
    balancer: which instance served a request, and whether requests are spread."""

    @app.after_request
    def add_instance_header(response: Response) -> Response:
        response.headers["X-Consensus-Instance"] = name
        return response


def _sqlite_begin_statement() -> str:
    """BEGIN IMMEDIATE for requests that may write, plain BEGIN otherwise.

    SQLite allows one writer. A deferred transaction that read first and writes later
    fails at once with "database is locked" when another writer committed in between (the
    busy timeout cannot help: its snapshot is stale). Taking the write lock at BEGIN makes
    concurrent writers queue on the busy timeout instead, so each sees the others' result.
    GET pages keep concurrent reads; their rare writes (session touch, round clock) are
    single statements that wait on the busy timeout too. A changing request's first reads
    (its session and user, the round clock) run deferred in a transaction of their own that
    ends before the view (consensus.transactions).
    """
    if (
        has_request_context()
        and request.method not in transactions.SAFE_METHODS
        and not transactions.deferred()
    ):
        return "BEGIN IMMEDIATE"
    return "BEGIN"


class _WriterQueue:
    """Writers on one SQLite file line up on an exclusive file lock before BEGIN IMMEDIATE.

    SQLite's own busy handler polls with growing sleeps (1, 2, 5, 10 … 100 ms), so under
    concurrent writes from several worker processes a writer often sleeps long after the
    lock became free (issue 9: stance POSTs with a p99 near a second). A blocking flock()
    wakes the next writer as soon as the previous one is done. SQLite's locking still
    guarantees correctness; this only shortens the waits. Not for in-memory databases.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def for_database(cls, database: str | None) -> _WriterQueue | None:
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return cls(database + "-writers")

    def enter(self, connection: Any) -> None:
        import fcntl

        info = connection.connection.info
        if "writer_lock" in info:
            return
        # Held until the transaction ends; owner-only like the database next to it.
        handle = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except BaseException:
            handle.close()
            raise
        info["writer_lock"] = handle

    def leave(self, connection: Any) -> None:
        self.release(connection.connection.info)

    @staticmethod
    def release(info: dict[str, Any]) -> None:
        import fcntl

        handle = info.pop("writer_lock", None)
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def _create_private_file(database: str | None) -> None:
    """A new SQLite database file is created readable by its owner only (mode 0600): it
    holds password hashes and sessions. SQLite gives its -wal and -shm files the same mode.
    An existing file keeps the mode it has."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    # A missing folder is left for SQLite to report when it connects.
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _tune_sqlite(app: Flask) -> None:
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: WAL is synced at every commit, so an acknowledged change survives an OS crash
        # or power loss (NORMAL may roll back the last commits). One fsync per commit.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=10000")
        # Each pooled connection keeps its own page cache (2 MiB by default); the OS keeps
        # the file's pages anyway, so 1 MiB costs no measurable time on warm or cold pages
        # and saves ~3.5 MiB per web worker (issue 23, docs/performance.md).
        cursor.execute("PRAGMA cache_size=-1024")  # KiB, negative: 1 MiB
        cursor.close()

    _create_private_file(engine.url.database)
    writers = _WriterQueue.for_database(engine.url.database)

    @event.listens_for(engine, "begin")
    def begin_transaction(connection: Any) -> None:
        statement = _sqlite_begin_statement()
        if statement == "BEGIN IMMEDIATE" and writers is not None:
            writers.enter(connection)
        # On the driver connection directly: BEGIN is not a query of the application
        # (query-count tests and statement logs should not see it).
        try:
            connection.connection.driver_connection.execute(statement)
        except BaseException:
            if writers is not None:
                writers.leave(connection)
            raise

    if writers is not None:
        # Just before the COMMIT/ROLLBACK itself: the next writer's BEGIN IMMEDIATE may wait
        # on SQLite's busy timeout for that last fraction of a millisecond.
        event.listen(engine, "commit", writers.leave)
        event.listen(engine, "rollback", writers.leave)

        @event.listens_for(engine.pool, "checkin")
        def never_keep_the_queue(_dbapi_connection: Any, record: Any) -> None:
            # A connection that goes back to the pool ends its transaction: never hold on.
            writers.release(record.info)
