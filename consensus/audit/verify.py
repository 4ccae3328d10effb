"""Full verification of the audit log: every event, stored node, the head and checkpoints.

One ordered pass over the events recomputes each leaf hash from the stored columns and
compares it with the stored one. The leaves, a chunk of 2**14 at a time (a perfect
subtree), are hashed up level by level; every inner node is compared with the stored
merkle_node row, read through one ordered cursor per level, and the chunk roots are folded
into a running frontier, which gives the root at every checkpoint's tree size. Level-0
nodes repeat the stored leaf hashes, so the database compares those itself. Memory stays
small, nothing is loaded as ORM objects, and for large logs worker processes recompute
the leaves of event ranges in parallel, so a million events take seconds.

What this proves: the stored events are exactly the ones every checkpoint signed (none
altered, removed, inserted or reordered), the stored nodes serve true proofs, and the
checkpoints never fork or rewind. What it cannot prove: events after the last checkpoint
could be rewritten by someone who also recomputes every hash; checkpoints held outside
(members' receipts, the transparency page) are what pin those down.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from typing import Any

from sqlalchemy import Connection, DateTime, Select, and_, create_engine, func, or_, select

from consensus import audit
from consensus.audit.checkpoints import (
    CHECKPOINT_PURPOSE,
    NAMESPACE,
    CheckpointFormatError,
    parse_checkpoint_body,
)
from consensus.audit.entry import format_time, leaf_input
from consensus.crypto import merkle, sshsig
from consensus.extensions import db
from consensus.models import AuditEvent, AuditLogHead, Checkpoint, MerkleNode, PlatformKey

BATCH = 20_000  # rows per fetch
CHUNK_LEVEL = 14
CHUNK = 1 << CHUNK_LEVEL  # events hashed together, level by level: a perfect subtree
JOB_EVENTS = 4 * CHUNK  # events per worker job
PARALLEL_MIN_EVENTS = 400_000  # below this, starting workers costs more than it saves
MAX_WORKERS = 8
_sha256 = hashlib.sha256


@dataclass(frozen=True)
class Problem:
    """One reason the log does not verify; `seq` or `checkpoint_id` says where."""

    message: str
    seq: int | None = None
    checkpoint_id: int | None = None


@dataclass
class VerificationReport:
    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    checkpoints: int = 0
    nodes: int = 0
    workers: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        bad = [p.seq for p in self.problems if p.seq is not None]
        return min(bad) if bad else None


class _Stop(Exception):
    """The pass cannot go on meaningfully: everything after would be noise."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _time_converter(conn: Connection) -> Any:
    """Raw database value of created_at -> the text in the canonical entry.

    SQLite returns the stored text ('YYYY-MM-DD HH:MM:SS.ffffff', as SQLAlchemy writes it),
    which maps onto the canonical form by slicing; anything else is parsed the way the
    application parses it, so a value means here exactly what it means to the application.
    """
    processor = (
        DateTime(timezone=True).dialect_impl(conn.dialect).result_processor(conn.dialect, None)
    )

    def convert(raw: Any) -> str:
        if type(raw) is str:
            if len(raw) == 26 and raw[10] == " " and raw[19] == ".":
                return f"{raw[:10]}T{raw[11:]}Z"
            raw = processor(raw) if processor else datetime.fromisoformat(raw)
        return format_time(raw)

    return convert


# --- Reading ------------------------------------------------------------------------------


@contextmanager
def _snapshot(connection: Connection | None = None) -> Iterator[Connection]:
    """A read-only connection that sees one consistent state while appends go on.

    PostgreSQL: REPEATABLE READ, in UTC. SQLite: an explicit BEGIN, whose first read fixes
    the snapshot (in WAL mode writers carry on meanwhile).
    """
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with (
            engine.connect().execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            ) as conn,
            conn.begin(),
        ):
            conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
            yield conn
    else:
        with engine.connect() as conn:
            _begin_sqlite_read(conn)
            try:
                yield conn
            finally:
                conn.rollback()


def _begin_sqlite_read(conn: Connection) -> None:
    """Open a read transaction whether SQLAlchemy emits BEGIN (the application's engine
    does) or the sqlite3 module's legacy mode would leave SELECTs outside any transaction."""
    conn.begin()
    conn.exec_driver_sql("SELECT 1").all()
    if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN")


def _raw_batches(conn: Connection, statement: Select[Any], name: str) -> Iterator[list[Any]]:
    """Plain tuples in batches straight from the DB-API cursor: row objects and type
    processing would cost more than all the hashing. PostgreSQL streams through a
    server-side cursor, so memory stays flat."""
    sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    if conn.dialect.name == "postgresql":
        cursor = dbapi.cursor(name=name, binary=True)  # no hex-decoding of bytea
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(BATCH):
            yield batch
    finally:
        cursor.close()


def _events_statement(after: int, upto: int) -> Select[Any]:
    e = AuditEvent.__table__.c
    return (
        select(
            e.seq,
            e.created_at,
            e.actor_id,
            e.organisation_id,
            e.action,
            e.object_type,
            e.object_id,
            e.result,
            e.origin,
            e.payload,
            e.leaf_hash,
        )
        .where(e.seq > after, e.seq <= upto)
        .order_by(e.seq)
    )


def _checked_leaves(rows: list[Any], after: int, time_of: Any) -> list[bytes]:
    """Leaf hashes of events after+1, after+2, …: recomputed, and compared with the stored
    ones as whole lists (the loops run in comprehensions, at C speed)."""
    if rows[0][0] != after + 1 or rows[-1][0] != after + len(rows):
        missing = next(
            (after + i + 1 for i, row in enumerate(rows) if row[0] != after + i + 1),
            after + len(rows) + 1,
        )
        raise _Stop(Problem(f"event {missing} is missing", seq=missing))
    sha256, entry = _sha256, leaf_input  # b"\x00" + the canonical entry (audit.entry)
    leaves = [
        sha256(
            entry(seq, time_of(created), actor, org, action, otype, oid, res, origin, payload)
        ).digest()
        for seq, created, actor, org, action, otype, oid, res, origin, payload, _ in rows
    ]
    stored = [bytes(row[10]) for row in rows]
    if leaves != stored:
        offset = next(i for i, (a, b) in enumerate(zip(leaves, stored, strict=True)) if a != b)
        seq = after + offset + 1
        raise _Stop(Problem(f"event {seq} does not match its leaf hash: it was altered", seq=seq))
    return leaves


def _chunks(batches: Iterator[list[Any]], size: int) -> Iterator[list[Any]]:
    """Re-cut batches into lists of exactly `size` items (the last may be shorter)."""
    pending: list[Any] = []
    for batch in batches:
        pending.extend(batch)
        while len(pending) >= size:
            yield pending[:size]
            del pending[:size]
    if pending:
        yield pending


def _leaves_here(conn: Connection, upto: int) -> Iterator[list[bytes]]:
    time_of = _time_converter(conn)
    done = 0
    for rows in _chunks(_raw_batches(conn, _events_statement(0, upto), "audit_events"), CHUNK):
        yield _checked_leaves(rows, done, time_of)
        done += len(rows)


# --- Worker processes for large logs --------------------------------------------------------

_worker: dict[str, Any] = {}


def _worker_start(url: str, snapshot_id: str | None) -> None:
    """Each worker opens its own connection; on PostgreSQL it joins the main snapshot."""
    engine = create_engine(url)
    if snapshot_id is not None:
        conn = engine.connect().execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        conn.begin()
        # The snapshot id comes from the server itself (pg_export_snapshot), not from input.
        statement = f"SET TRANSACTION SNAPSHOT '{snapshot_id}'"  # nosemgrep
        conn.exec_driver_sql(statement)
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
    else:
        # The log is append-only, so rows up to the main snapshot's last event are the
        # same in any later snapshot.
        conn = engine.connect()
        _begin_sqlite_read(conn)
    _worker.update(conn=conn, time_of=_time_converter(conn))


def _worker_job(after: int, upto: int) -> bytes | Problem:
    """Leaf hashes of events after+1..upto, joined; or the first problem among them."""
    conn = _worker["conn"]
    rows = [
        row
        for batch in _raw_batches(conn, _events_statement(after, upto), f"w{after}")
        for row in batch
    ]
    if len(rows) != upto - after:
        missing = next(
            (after + i + 1 for i, row in enumerate(rows) if row[0] != after + i + 1),
            after + len(rows) + 1,
        )
        return Problem(f"event {missing} is missing", seq=missing)
    try:
        return b"".join(_checked_leaves(rows, after, _worker["time_of"]))
    except _Stop as stop:
        return stop.problem


def _leaves_from_workers(conn: Connection, upto: int, workers: int) -> Iterator[list[bytes]]:
    """Leaf chunks in order, recomputed by `workers` processes (a bounded queue of jobs)."""
    snapshot_id = None
    if conn.dialect.name == "postgresql":
        snapshot_id = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
    url = db.engine.url.render_as_string(hide_password=False)
    jobs = iter([(after, min(after + JOB_EVENTS, upto)) for after in range(0, upto, JOB_EVENTS)])
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_worker_start,
        initargs=(url, snapshot_id),
    ) as pool:
        running: deque[Future[bytes | Problem]] = deque()
        try:
            for job in jobs:
                running.append(pool.submit(_worker_job, *job))
                if len(running) >= 2 * workers:
                    break
            while running:
                outcome = running.popleft().result()
                next_job = next(jobs, None)
                if next_job is not None:
                    running.append(pool.submit(_worker_job, *next_job))
                if isinstance(outcome, Problem):
                    raise _Stop(outcome)
                leaves = [outcome[i : i + 32] for i in range(0, len(outcome), 32)]
                for start in range(0, len(leaves), CHUNK):
                    yield leaves[start : start + CHUNK]
        finally:
            for future in running:
                future.cancel()


# --- Stored nodes ---------------------------------------------------------------------------


def _covering(level: int, index: int) -> tuple[int, int]:
    """First and last sequence number under node (level, index)."""
    return index * (1 << level) + 1, (index + 1) * (1 << level)


class _NodeChecker:
    """Compares computed inner nodes (levels >= 1), a batch at a time, with the stored rows
    read through one ordered cursor per level."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pending: list[list[bytes]] = [[] for _ in range(64)]
        self.done = [0] * 64
        self.streams: dict[int, Iterator[list[Any]]] = {}
        self.buffers: dict[int, list[Any]] = {}

    def _take(self, level: int, count: int) -> list[Any]:
        if level not in self.streams:
            self.streams[level] = _raw_batches(
                self.conn,
                select(MerkleNode.index, MerkleNode.hash)
                .where(MerkleNode.level == level)
                .order_by(MerkleNode.index),
                f"audit_nodes_{level}",
            )
            self.buffers[level] = []
        buffer = self.buffers[level]
        while len(buffer) < count:
            batch = next(self.streams[level], None)
            if batch is None:
                break
            buffer.extend(batch)
        taken = buffer[:count]
        del buffer[:count]
        return taken

    def flush(self, level: int) -> None:
        computed = self.pending[level]
        if not computed:
            return
        start, count = self.done[level], len(computed)
        rows = self._take(level, count)
        if not (
            len(rows) == count
            and rows[0][0] == start
            and rows[-1][0] == start + count - 1
            and [bytes(r[1]) for r in rows] == computed
        ):
            for offset, expected in enumerate(computed):
                index = start + offset
                first, last = _covering(level, index)
                where = f"merkle node (level {level}, index {index}) over events {first}-{last}"
                if offset >= len(rows) or rows[offset][0] != index:
                    raise _Stop(Problem(f"{where} is missing", seq=first))
                if bytes(rows[offset][1]) != expected:
                    raise _Stop(Problem(f"{where} does not match the events", seq=first))
        self.done[level] += count
        computed.clear()

    def finish(self, size: int) -> Problem | None:
        """Flush what is left, then look for stored nodes that `size` events cannot have."""
        for level in range(1, len(self.pending)):
            self.flush(level)
        found: list[Problem] = []
        for level, stored in self.conn.execute(
            select(MerkleNode.level, func.count()).group_by(MerkleNode.level)
        ):
            if stored > size >> level:
                index = self.conn.execute(
                    select(MerkleNode.index)
                    .where(MerkleNode.level == level, MerkleNode.index >= size >> level)
                    .order_by(MerkleNode.index)
                    .limit(1)
                ).scalar_one()
                first, last = _covering(level, index)
                # The node needs events that are not there: name the first of those.
                found.append(
                    Problem(
                        f"merkle node (level {level}, index {index}) over events "
                        f"{first}-{last} lies beyond the {size} events of the log",
                        seq=max(first, size + 1),
                    )
                )
        return min(found, key=lambda p: p.seq or 0) if found else None

    @property
    def checked(self) -> int:
        return sum(self.done)


def _check_leaf_nodes(conn: Connection, size: int) -> Problem | None:
    """Level-0 nodes repeat each event's stored leaf hash (checked against the recomputed
    one in the pass): a join compares them all inside the database."""
    e, n = AuditEvent.__table__.c, MerkleNode.__table__.c
    matching = conn.execute(
        select(func.count())
        .select_from(AuditEvent.__table__)
        .join(MerkleNode.__table__, and_(n.level == 0, n.index == e.seq - 1, n.hash == e.leaf_hash))
        .where(e.seq <= size)
    ).scalar_one()
    if matching == size:
        return None
    seq = conn.execute(
        select(e.seq)
        .select_from(AuditEvent.__table__)
        .outerjoin(MerkleNode.__table__, and_(n.level == 0, n.index == e.seq - 1))
        .where(e.seq <= size, or_(n.hash.is_(None), n.hash != e.leaf_hash))
        .order_by(e.seq)
        .limit(1)
    ).scalar()
    return Problem(
        f"merkle node (level 0, index {(seq or 1) - 1}) is missing or does not match event {seq}",
        seq=seq,
    )


# --- Checkpoints ----------------------------------------------------------------------------


@dataclass
class _CheckpointRow:
    id: int
    tree_size: int
    root_hash: bytes
    created_at: datetime
    key_id: int
    body: str
    signature: str


def _load_checkpoints(conn: Connection, report: VerificationReport) -> list[_CheckpointRow]:
    """Check all that needs no events: the note, its signature and key, the order."""
    keys = {
        row.id: row
        for row in conn.execute(
            select(
                PlatformKey.id,
                PlatformKey.purpose,
                PlatformKey.public_key,
                PlatformKey.fingerprint,
                PlatformKey.retired_at,
            )
        )
    }
    rows = [
        _CheckpointRow(
            r.id, r.tree_size, bytes(r.root_hash), r.created_at, r.key_id, r.body, r.signature
        )
        for r in conn.execute(
            select(
                Checkpoint.id,
                Checkpoint.tree_size,
                Checkpoint.root_hash,
                Checkpoint.created_at,
                Checkpoint.key_id,
                Checkpoint.body,
                Checkpoint.signature,
            ).order_by(Checkpoint.id)
        )
    ]
    previous: _CheckpointRow | None = None
    for cp in rows:
        found: list[str] = []
        if previous is not None and cp.tree_size < previous.tree_size:
            found.append(
                f"its tree size {cp.tree_size} is below the {previous.tree_size} of "
                f"the earlier checkpoint #{previous.id}: the log was rewound"
            )
        previous = cp
        key = keys.get(cp.key_id)
        try:
            note = parse_checkpoint_body(cp.body)
            if note.tree_size != cp.tree_size or note.root_hash != cp.root_hash:
                found.append("the stored size or root differs from the signed note")
            if note.time != audit.format_time(cp.created_at):
                found.append("the stored time differs from the signed note")
            if key is None or key.purpose != CHECKPOINT_PURPOSE:
                found.append("its signing key is missing")
            else:
                _, blob, _ = sshsig.parse_openssh_public_key(key.public_key)
                if sshsig.fingerprint(blob) != key.fingerprint:
                    found.append(f"key #{key.id}'s fingerprint does not match its public key")
                sshsig.verify(cp.signature, cp.body.encode(), NAMESPACE, [key.public_key])
                if key.retired_at is not None and cp.created_at > key.retired_at:
                    found.append(f"signed by key #{key.id} after that key was retired")
        except CheckpointFormatError as error:
            found.append(f"the signed note is malformed ({error})")
        except sshsig.SignatureError as error:
            found.append(f"the signature does not verify ({error})")
        report.problems.extend(
            Problem(f"checkpoint #{cp.id}: {message}", checkpoint_id=cp.id) for message in found
        )
    return rows


def _check_consistency(
    conn: Connection, checkpoints: list[_CheckpointRow], report: VerificationReport
) -> None:
    """Consistency proofs between consecutive checkpoints, from the stored nodes, exactly
    as the downloadable checkpoint list carries them."""
    pairs = list(zip(checkpoints, checkpoints[1:], strict=False))
    growing = [(old, new) for old, new in pairs if 0 < old.tree_size < new.tree_size]
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(merkle.HASH_SIZE)

    for old, new in growing:
        merkle.consistency_proof(old.tree_size, new.tree_size, record)
    by_level: dict[int, list[int]] = defaultdict(list)
    for level, index in wanted:
        by_level[level].append(index)
    stored: dict[tuple[int, int], bytes] = {}
    for level, indexes in by_level.items():
        for i in range(0, len(indexes), 500):
            for index, hash_ in conn.execute(
                select(MerkleNode.index, MerkleNode.hash).where(
                    MerkleNode.level == level, MerkleNode.index.in_(indexes[i : i + 500])
                )
            ):
                stored[(level, index)] = bytes(hash_)
    for old, new in growing:
        proof = merkle.consistency_proof(
            old.tree_size, new.tree_size, lambda lv, ix: stored[(lv, ix)]
        )
        if not merkle.verify_consistency(
            old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof
        ):
            report.problems.append(
                Problem(
                    f"checkpoint #{new.id}: not consistent with checkpoint #{old.id}",
                    checkpoint_id=new.id,
                )
            )
    for old, new in pairs:
        if old.tree_size == new.tree_size and old.root_hash != new.root_hash:
            report.problems.append(
                Problem(
                    f"checkpoint #{new.id}: same size as checkpoint #{old.id} but another root",
                    checkpoint_id=new.id,
                )
            )


# --- The tree pass --------------------------------------------------------------------------


def _frontier_root(stack: list[bytes]) -> bytes:
    if not stack:
        return merkle.EMPTY_ROOT
    result = stack[-1]
    for left in reversed(stack[:-1]):
        result = _sha256(b"\x01" + left + result).digest()
    return result


def _decompose(width: int, levels: list[list[bytes]]) -> list[bytes]:
    """The perfect subtrees (largest first) over the first `width` leaves of a chunk."""
    parts, offset = [], 0
    for level in range(len(levels) - 1, -1, -1):
        if width >> level & 1:
            parts.append(levels[level][offset >> level])
            offset += 1 << level
    return parts


def _tree_pass(
    leaf_chunks: Iterator[list[bytes]],
    by_size: dict[int, list[_CheckpointRow]],
    nodes: _NodeChecker,
) -> tuple[int, list[bytes]]:
    """Build each chunk's levels pairwise, queue its inner nodes for comparison, check the
    roots of checkpoints that end inside it, and fold its root into the frontier of chunks.
    Returns the size and the frontier (perfect subtrees, largest first)."""
    sha256, pending = _sha256, nodes.pending
    sizes = sorted(s for s in by_size if s > 0)
    stack: list[bytes] = []
    size = verified_upto = 0
    for leaves in leaf_chunks:
        start, count = size, len(leaves)
        levels = [leaves]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append(
                [
                    sha256(b"\x01" + a + b).digest()
                    for a, b in zip(below[0::2], below[1::2], strict=False)
                ]
            )
        for level in range(1, len(levels)):
            pending[level].extend(levels[level])
            if len(pending[level]) >= BATCH:
                nodes.flush(level)
        while sizes and sizes[0] <= start + count:
            at = sizes.pop(0)
            root = _frontier_root(stack + _decompose(at - start, levels))
            for cp in by_size[at]:
                if cp.root_hash != root:
                    # Every stored hash was recomputed to match: only the signed root can
                    # tell, and only down to the events since the last matching checkpoint.
                    raise _Stop(
                        Problem(
                            f"checkpoint #{cp.id} signed another root for the first {at} events:"
                            f" one of events {verified_upto + 1}-{at} was altered, removed, "
                            "inserted or reordered (and its hashes recomputed)",
                            seq=verified_upto + 1,
                            checkpoint_id=cp.id,
                        )
                    )
            verified_upto = at
        size = start + count
        if count < CHUNK:
            return size, stack + _decompose(count, levels)
        index, level, current = start >> CHUNK_LEVEL, CHUNK_LEVEL, levels[CHUNK_LEVEL][0]
        while index & 1:
            current = sha256(b"\x01" + stack.pop() + current).digest()
            level, index = level + 1, index >> 1
            pending[level].append(current)
        stack.append(current)
    return size, stack


def _first_bad_frontier_seq(size: int, stack: list[bytes], stored: bytes) -> int:
    start = 0
    levels = [lv for lv in range(size.bit_length() - 1, -1, -1) if size >> lv & 1]
    for position, level in enumerate(levels):
        chunk = stored[position * merkle.HASH_SIZE : (position + 1) * merkle.HASH_SIZE]
        if position >= len(stack) or chunk != stack[position]:
            return start + 1
        start += 1 << level
    return max(size, 1)


def default_workers(events: int) -> int:
    """Worker processes worth starting for a log of this size (0: verify in-process).

    Each worker needs about a second to start (a fresh interpreter imports the app), so
    they pay off from a few hundred thousand events, and only on cores that are idle: on
    a busy machine they would just compete with the main process.
    """
    cores = os.cpu_count() or 1
    try:
        idle = round(cores - os.getloadavg()[0])
    except (AttributeError, OSError):  # no load average on this platform
        idle = cores
    workers = min(idle, MAX_WORKERS)
    return workers if events >= PARALLEL_MIN_EVENTS and workers >= 2 else 0


def verify_log(*, workers: int | None = None) -> VerificationReport:
    """Recompute and compare everything; the report lists each problem found.

    `workers`: processes that recompute leaf hashes (None: by log size; 0: none). They are
    started with "spawn", so a script that calls this with workers needs the usual
    `if __name__ == "__main__":` guard (the flask command has it).
    """
    started = time.perf_counter()
    report = VerificationReport()
    with _snapshot() as conn:
        checkpoints = _load_checkpoints(conn, report)
        report.checkpoints = len(checkpoints)
        by_size: dict[int, list[_CheckpointRow]] = defaultdict(list)
        for cp in checkpoints:
            by_size[cp.tree_size].append(cp)
        for cp in by_size.get(0, []):
            if cp.root_hash != merkle.EMPTY_ROOT:
                report.problems.append(
                    Problem(
                        f"checkpoint #{cp.id}: wrong root for the empty log", checkpoint_id=cp.id
                    )
                )
        head = conn.execute(
            select(AuditLogHead.size, AuditLogHead.frontier).where(AuditLogHead.id == 1)
        ).first()
        head_size, head_frontier = (head[0], bytes(head[1])) if head else (0, b"")
        last_seq = conn.execute(select(func.max(AuditEvent.seq))).scalar() or 0

        report.workers = default_workers(last_seq) if workers is None else workers
        leaves = (
            _leaves_from_workers(conn, last_seq, report.workers)
            if report.workers
            else _leaves_here(conn, last_seq)
        )
        size, stack, nodes = 0, [], _NodeChecker(conn)
        try:
            size, stack = _tree_pass(leaves, by_size, nodes)
            for problem in (nodes.finish(size), _check_leaf_nodes(conn, size)):
                if problem is not None:
                    report.problems.append(problem)
        except _Stop as stop:
            report.problems.append(stop.problem)
            size = (stop.problem.seq or 1) - 1
        report.nodes = nodes.checked + size
        report.size = size
        report.root = _frontier_root(stack)

        if not any(p.seq for p in report.problems):
            if head_size != size:
                missing = min(head_size, size) + 1
                state = "missing" if head_size > size else "not in the log head"
                report.problems.append(
                    Problem(
                        f"the log head counts {head_size} events but {size} are stored: "
                        f"event {missing} is {state}",
                        seq=missing,
                    )
                )
            elif head_frontier != b"".join(stack):
                report.problems.append(
                    Problem(
                        "the log head's frontier does not match the events",
                        seq=_first_bad_frontier_seq(size, stack, head_frontier),
                    )
                )
            beyond = [cp for cp in checkpoints if cp.tree_size > size]
            if beyond:
                report.problems.append(
                    Problem(
                        f"checkpoint #{beyond[0].id} signed {beyond[0].tree_size} events but only "
                        f"{size} are stored: event {size + 1} is missing",
                        seq=size + 1,
                        checkpoint_id=beyond[0].id,
                    )
                )
        if not report.problems:
            _check_consistency(conn, checkpoints, report)
    report.seconds = time.perf_counter() - started
    return report
