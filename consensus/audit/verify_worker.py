"""What a worker process of `flask audit verify` does: recompute the leaf hashes of a range.

Kept apart from verify.py so that a worker starts in a few hundredths of a second: it
imports the standard library, the database driver and audit.entry, never Flask, the
models or SQLAlchemy (the package `consensus.audit` loads those lazily). The worker reads
through the plain DB-API connection the parent describes, in the parent's snapshot on
PostgreSQL, and hands back the joined leaf hashes or the first problem in its range; the
parent builds the tree and compares everything else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from consensus.audit.entry import format_time, leaf_input

BATCH = 20_000  # rows per fetch
_EVENTS = (
    "SELECT seq, created_at, actor_id, organisation_id, action, object_type, object_id, "
    "result, origin, payload, leaf_hash FROM audit_event WHERE seq > ? AND seq <= ? ORDER BY seq"
)
_EVENTS_SQLITE, _EVENTS_PG = _EVENTS, _EVENTS.replace("?", "%s")
_sha256 = hashlib.sha256
_stored_leaf = itemgetter(10)


class RangeProblem(Exception):
    """The first problem in a range: its message and the sequence number it names."""

    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        self.message = message
        self.seq = seq


def time_converter(dialect: str, processor: Callable[[Any], Any] | None = None) -> Any:
    """Raw database value of created_at -> the text in the canonical entry.

    SQLite returns the stored text ('YYYY-MM-DD HH:MM:SS.ffffff', as SQLAlchemy writes it),
    which maps onto the canonical form by slicing; any other text is parsed the way the
    application parses it (SQLAlchemy's own SQLite DateTime processor, loaded only then), so
    a value means here exactly what it means to the application. PostgreSQL hands back
    timezone-aware datetimes.
    """
    loaded: list[Callable[[Any], Any] | None] = [processor]

    def parse(raw: str) -> Any:
        if loaded[0] is None:
            from sqlalchemy import DateTime
            from sqlalchemy.dialects import sqlite

            sqlite_dialect = sqlite.dialect()
            impl = DateTime(timezone=True).dialect_impl(sqlite_dialect)
            loaded[0] = impl.result_processor(sqlite_dialect, None)
        return loaded[0](raw) if loaded[0] else raw

    def convert(raw: Any) -> str:
        if type(raw) is str:
            if len(raw) == 26 and raw[10] == " " and raw[19] == ".":
                return f"{raw[:10]}T{raw[11:]}Z"
            raw = parse(raw) if dialect == "sqlite" else raw
        return format_time(raw)

    return convert


def missing_seq(rows: list[Any], after: int) -> int:
    """The first sequence number after `after` that the ordered rows skip."""
    return next(
        (after + i + 1 for i, row in enumerate(rows) if row[0] != after + i + 1),
        after + len(rows) + 1,
    )


def checked_leaves(rows: list[Any], after: int, time_of: Any) -> list[bytes]:
    """Leaf hashes of events after+1, after+2, …: recomputed from the stored columns, and
    compared with the stored ones as whole lists (the loops run in comprehensions)."""
    if rows[0][0] != after + 1 or rows[-1][0] != after + len(rows):
        missing = missing_seq(rows, after)
        raise RangeProblem(f"event {missing} is missing", missing)
    sha256, entry = _sha256, leaf_input  # b"\x00" + the canonical entry (audit.entry)
    leaves = [
        sha256(
            entry(seq, time_of(created), actor, org, action, otype, oid, res, origin, payload)
        ).digest()
        for seq, created, actor, org, action, otype, oid, res, origin, payload, _ in rows
    ]
    stored = list(map(_stored_leaf, rows))
    if leaves != stored:
        offset = next(i for i, (a, b) in enumerate(zip(leaves, stored, strict=True)) if a != b)
        seq = after + offset + 1
        raise RangeProblem(f"event {seq} does not match its leaf hash: it was altered", seq)
    return leaves


def fetch_batches(
    dbapi: Any,
    dialect: str,
    query: tuple[str, tuple[Any, ...]],
    name: str,
    size: int = BATCH,
) -> Iterator[list[Any]]:
    """Plain tuples in batches straight from the DB-API cursor. PostgreSQL streams through
    a server-side cursor in binary (bytea arrives as bytes, without hex decoding)."""
    cursor = dbapi.cursor(name=name, binary=True) if dialect == "postgresql" else dbapi.cursor()
    try:
        cursor.execute(*query)
        while batch := cursor.fetchmany(size):
            yield batch
    finally:
        cursor.close()


def events_query(dialect: str, after: int, upto: int) -> tuple[str, tuple[int, int]]:
    """The events after+1..upto in order: SQL text and parameters for the driver."""
    return (_EVENTS_PG if dialect == "postgresql" else _EVENTS_SQLITE), (after, upto)


# --- One range: its events, their leaves and every stored node over them -------------------

_NODES = (
    'SELECT hash FROM merkle_node WHERE level = ? AND "index" >= ? AND "index" < ? ORDER BY "index"'
)
_NODES_INDEXED = (
    'SELECT "index", hash FROM merkle_node WHERE level = ? AND "index" >= ? AND "index" < ? '
    'ORDER BY "index"'
)


def _sql(dialect: str, sql: str) -> str:
    return sql.replace("?", "%s") if dialect == "postgresql" else sql


def _all(dbapi: Any, dialect: str, sql: str, params: tuple[Any, ...]) -> list[Any]:
    cursor = dbapi.cursor(binary=True) if dialect == "postgresql" else dbapi.cursor()
    try:
        cursor.execute(_sql(dialect, sql), params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def covering(level: int, index: int) -> tuple[int, int]:
    """First and last sequence number under node (level, index)."""
    return index * (1 << level) + 1, (index + 1) * (1 << level)


def compare_nodes(
    dbapi: Any, dialect: str, level: int, first: int, computed: list[bytes]
) -> RangeProblem | None:
    """Compare the computed nodes (level, first), (level, first + 1), … with the stored
    rows: one ordered range read, compared as a whole list; the slow path names the
    first node that is missing or differs."""
    if not computed:
        return None
    stop = first + len(computed)
    stored = _all(dbapi, dialect, _NODES, (level, first, stop))
    if len(stored) == len(computed) and list(map(_first, stored)) == computed:
        return None
    rows = dict(_all(dbapi, dialect, _NODES_INDEXED, (level, first, stop)))
    for index, expected in enumerate(computed, start=first):
        low, high = covering(level, index)
        where = f"merkle node (level {level}, index {index}) over events {low}-{high}"
        if index not in rows:
            return RangeProblem(f"{where} is missing", low)
        if bytes(rows[index]) != expected:
            return RangeProblem(f"{where} does not match the events", low)
    raise AssertionError("the stored nodes differ, yet each one matches")  # pragma: no cover


_first = itemgetter(0)


def decompose(width: int, levels: list[list[bytes]]) -> list[bytes]:
    """The perfect subtrees (largest first) over the first `width` leaves of a range."""
    parts, offset = [], 0
    for level in range(len(levels) - 1, -1, -1):
        if width >> level & 1:
            parts.append(levels[level][offset >> level])
            offset += 1 << level
    return parts


@dataclass
class RangeResult:
    """What the tree pass needs of a verified range: the perfect subtrees over all its
    events (one root for a full, aligned range), over the first events up to each
    checkpoint size that ends inside it, and how many stored nodes were compared."""

    parts: list[bytes]
    cuts: dict[int, list[bytes]]
    nodes: int


def verify_range(
    dbapi: Any,
    dialect: str,
    time_of: Any,
    after: int,
    upto: int,
    cuts: tuple[int, ...] = (),
    batch: int = BATCH,
) -> RangeResult:
    """Verify events after+1..upto (`after` a multiple of the range size, a power of two):
    recompute every leaf from the stored columns and compare it with the stored leaf
    hash, hash the levels up pairwise, and compare every complete node over the range
    (level 0 included) with its merkle_node row. Raises RangeProblem for the first
    problem: a missing or altered event, else the node over the earliest events."""
    query = events_query(dialect, after, upto)
    rows = [
        row for rows in fetch_batches(dbapi, dialect, query, f"r{after}", batch) for row in rows
    ]
    if len(rows) != upto - after:
        missing = missing_seq(rows, after)
        raise RangeProblem(f"event {missing} is missing", missing)
    leaves = checked_leaves(rows, after, time_of)
    del rows
    sha256 = _sha256
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append(
            [
                sha256(b"\x01" + a + b).digest()
                for a, b in zip(below[0::2], below[1::2], strict=False)
            ]
        )
    found = [
        problem
        for level, computed in enumerate(levels)
        if (problem := compare_nodes(dbapi, dialect, level, after >> level, computed))
    ]
    if found:
        raise min(found, key=lambda problem: problem.seq)
    return RangeResult(
        parts=decompose(len(leaves), levels),
        cuts={cut: decompose(cut - after, levels) for cut in cuts},
        nodes=sum(map(len, levels)),
    )


# --- The worker process -----------------------------------------------------------------------

_state: dict[str, Any] = {}


def start(dialect: str, args: list[Any], params: dict[str, Any], snapshot_id: str | None) -> None:
    """Open this worker's own read connection; on PostgreSQL it joins the parent's snapshot
    (the log is append-only, so on SQLite any later snapshot holds the same rows up to the
    parent's last event)."""
    if dialect == "postgresql":
        import psycopg

        conn: Any = psycopg.connect(*args, **params)
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        if snapshot_id is not None:
            # The snapshot id comes from the server itself (pg_export_snapshot), not input.
            conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")  # nosemgrep
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
    else:
        import sqlite3

        conn = sqlite3.connect(*args, **params)
        conn.isolation_level = None
        conn.execute("BEGIN")
    _state.update(conn=conn, dialect=dialect, time_of=time_converter(dialect))


def job(after: int, upto: int, cuts: tuple[int, ...]) -> RangeResult | tuple[str, int]:
    """verify_range in a worker: its result, or (message, seq) of the first problem."""
    try:
        return verify_range(_state["conn"], _state["dialect"], _state["time_of"], after, upto, cuts)
    except RangeProblem as problem:
        return (problem.message, problem.seq)
