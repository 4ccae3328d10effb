"""SQLite writers line up on a file lock (consensus.app._WriterQueue): a writer waits exactly as
long as the one before it holds the database, and never keeps the lock after its
transaction."""

from __future__ import annotations

import fcntl
import threading
import time

import pytest
from sqlalchemy import text

from consensus import create_app
from consensus.extensions import db
from tests.conftest import TEST_CONFIG


def _free(path: str) -> bool:
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


@pytest.fixture
def file_app(tmp_path):
    database = tmp_path / "w.sqlite"
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"})
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    return app, str(database) + "-writers"


def test_a_write_request_holds_the_queue_only_during_its_transaction(file_app):
    app, lock = file_app
    with app.test_request_context("/", method="POST"):
        db.session.execute(text("INSERT INTO t VALUES (1)"))
        assert not _free(lock), "a writer holds the queue from BEGIN IMMEDIATE"
        db.session.commit()
        assert _free(lock)
        db.session.execute(text("INSERT INTO t VALUES (2)"))
        db.session.rollback()
        assert _free(lock)
    with app.test_request_context("/", method="GET"):
        db.session.execute(text("SELECT count(*) FROM t")).scalar_one()
        assert _free(lock), "readers do not queue"
        db.session.remove()


def test_the_next_writer_goes_as_soon_as_the_first_is_done(file_app):
    app, _ = file_app
    started = threading.Event()
    order: list[str] = []

    def first() -> None:
        with app.app_context(), app.test_request_context("/", method="POST"):
            db.session.execute(text("INSERT INTO t VALUES (1)"))
            started.set()
            time.sleep(0.3)
            order.append("first commits")
            db.session.commit()
            db.session.remove()

    thread = threading.Thread(target=first)
    thread.start()
    started.wait(5)
    with app.app_context(), app.test_request_context("/", method="POST"):
        began = time.perf_counter()
        db.session.execute(text("INSERT INTO t VALUES (2)"))
        waited = time.perf_counter() - began
        order.append("second writes")
        db.session.commit()
        db.session.remove()
    thread.join(5)
    assert order == ["first commits", "second writes"]
    assert 0.2 < waited < 1.5  # it waited for the first writer, and not for ever
