"""Reads that come before a changing request's view, outside SQLite's write lock.

On SQLite a request that may write (POST and the like) begins its transactions with BEGIN
IMMEDIATE: it takes the one write lock at once, so concurrent writers queue instead of
failing on a stale snapshot (see consensus.app._sqlite_begin_statement). Every request first
looks up its session and user and asks the round clock whether something is due; inside the
lock, those reads made every other writer wait for them too (issue 9: stance POSTs).

`reads_before_the_view()` runs such reads in a short deferred transaction of their own and
ends it straight away, before the view begins the transaction that writes. The objects read
stay loaded (they are not expired by that commit): they describe the state a few
milliseconds earlier, exactly as if the request had arrived then. Nothing is written in the
block except the session's best-effort touch, which gives up quietly on a stale snapshot.
Elsewhere (PostgreSQL, GET requests, a session already in a transaction) it does nothing.

`one_writer_at_a_time(*key)` gives PostgreSQL the same queue for one thing (a round and an
organisation) that SQLite's write lock gives every writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app, g, has_request_context, request
from sqlalchemy import bindparam, text

from consensus.extensions import db

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def deferred() -> bool:
    """True inside `reads_before_the_view()`: begin with a plain (deferred) BEGIN."""
    return bool(has_request_context() and g.get("_reads_before_the_view"))


@contextmanager
def reads_before_the_view() -> Iterator[None]:
    if (
        not has_request_context()
        or request.method in SAFE_METHODS
        or g.get("_reads_before_the_view")
        or not current_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    ):
        yield
        return
    session = db.session()
    if session.in_transaction():  # reads of the caller's transaction stay in it
        yield
        return
    g._reads_before_the_view = True
    try:
        yield
    finally:
        g._reads_before_the_view = False
        if session.in_transaction() and not (session.new or session.dirty or session.deleted):
            keep = session.expire_on_commit
            session.expire_on_commit = False
            try:
                session.commit()  # ends the read transaction; nothing to write
            finally:
                session.expire_on_commit = keep


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)").bindparams(bindparam("key"))


def one_writer_at_a_time(*key: object) -> None:
    """Let one transaction at a time change what `key` names (e.g. a round and an
    organisation), until it commits or rolls back.

    Two requests that supersede the same current row (a stance, a clearance) would
    otherwise both find nothing to supersede and both insert; the unique index keeps one and
    the other gets the conflict page. SQLite needs nothing here: a request that may write
    holds the database's one write lock from BEGIN IMMEDIATE on. PostgreSQL takes a
    transaction-scoped advisory lock on a 64-bit hash of the key: the second request waits
    for the first to commit, and its next statement (READ COMMITTED) sees the first one's
    row, exactly as SQLite's queue would. A hash collision only makes two unrelated writers
    wait for each other.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    db.session.execute(_ADVISORY_LOCK, {"key": int.from_bytes(digest, "big", signed=True)})
