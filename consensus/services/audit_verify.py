"""Full verification of the audit log: every event, stored node, the head and checkpoints.

One pass over the events in sequence order recomputes each leaf hash from the stored
columns and folds it into a running frontier (the perfect subtrees of the tree so far).
Every node that becomes complete is compared with the stored merkle_node row at the same
moment, read from one ordered cursor per level, and whenever the running size reaches a
checkpoint's tree size its root is compared with the signed one. Memory stays O(log n)
and nothing is loaded as ORM objects, so a million events take seconds.

What this proves: the stored events are exactly the ones every checkpoint signed (no event
altered, removed, inserted or reordered), the stored nodes serve true proofs, and the
checkpoints never fork or rewind. What it cannot prove: events after the last checkpoint
could be rewritten by someone who recomputes every hash; checkpoints held by outsiders
(receipts, the transparency page) are what pin those down.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Select, and_, func, or_, select

from consensus.crypto import merkle, sshsig
from consensus.extensions import db
from consensus.models import AuditEvent, AuditLogHead, Checkpoint, MerkleNode, PlatformKey
from consensus.services import audit
from consensus.services.checkpoints import (
    CHECKPOINT_PURPOSE,
    NAMESPACE,
    CheckpointFormatError,
    parse_checkpoint_body,
)

BATCH = 20_000
CHUNK_LEVEL = 14
CHUNK = 1 << CHUNK_LEVEL  # events per chunk: a perfect subtree, hashed level by level
_encode_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses
_sha256 = hashlib.sha256
_node_hash = merkle.node_hash


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
    """The event pass cannot go on meaningfully (everything after would be noise)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _json_scalar(value: Any) -> str:
    """json.dumps of one scalar as canonical_entry writes it (the slow, general path)."""
    return json.dumps(value, ensure_ascii=False)


def _time_text(moment: datetime) -> str:
    """audit.format_time, but several times faster (this runs once per event)."""
    if moment.tzinfo is not None:
        if moment.utcoffset():
            moment = moment.astimezone(UTC)
        moment = moment.replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def fast_entry(
    seq: int,
    created_at: str,
    actor_id: int | None,
    organisation_id: int | None,
    action: str,
    object_type: str,
    object_id: str,
    result: str,
    origin: str,
    payload: str,
) -> bytes:
    """Byte-for-byte audit.canonical_entry (keys already in sorted order, `created_at` as
    formatted by format_time), without building a dict for the general JSON encoder.

    A value of an unexpected type (only possible after hand edits) takes the general path;
    tests compare both functions on random input.
    """
    enc = _encode_string
    try:
        return (
            f'{{"action":{enc(action)},"actor":'
            f"{'null' if actor_id is None else _int_text(actor_id)},"
            f'"object_id":{enc(object_id)},"object_type":{enc(object_type)},"organisation":'
            f"{'null' if organisation_id is None else _int_text(organisation_id)},"
            f'"origin":{enc(origin)},"payload":{enc(payload)},"result":{enc(result)},'
            f'"seq":{_int_text(seq)},"time":"{created_at}"}}'
        ).encode()
    except TypeError:
        values = (
            action,
            actor_id,
            object_id,
            object_type,
            organisation_id,
            origin,
            payload,
            result,
            seq,
        )
        names = (
            "action",
            "actor",
            "object_id",
            "object_type",
            "organisation",
            "origin",
            "payload",
            "result",
            "seq",
        )
        body = ",".join(f'"{n}":{_json_scalar(v)}' for n, v in zip(names, values, strict=True))
        return f'{{{body},"time":{_json_scalar(created_at)}}}'.encode("utf-8", "replace")


def _int_text(value: Any) -> str:
    if type(value) is int:
        return str(value)
    raise TypeError("not an int")


def _time_converter(conn: Connection) -> Any:
    """Raw database value of created_at -> the text canonical_entry uses.

    SQLite hands back the stored text ('YYYY-MM-DD HH:MM:SS.ffffff', as SQLAlchemy wrote
    it), which maps onto the canonical form by slicing; anything else is parsed the way
    the application parses it, so a value means here what it means in the application.
    """
    processor = (
        DateTime(timezone=True).dialect_impl(conn.dialect).result_processor(conn.dialect, None)
    )

    def convert(raw: Any) -> str:
        if type(raw) is str:
            if len(raw) == 26 and raw[10] == " " and raw[19] == ".":
                return f"{raw[:10]}T{raw[11:]}Z"
            raw = processor(raw) if processor else datetime.fromisoformat(raw)
            if raw.tzinfo is None:
                raw = raw.replace(tzinfo=UTC)
        return _time_text(raw)

    return convert


def _covering(level: int, index: int) -> tuple[int, int]:
    """First and last sequence number under node (level, index)."""
    return index * (1 << level) + 1, (index + 1) * (1 << level)


@contextmanager
def _snapshot() -> Iterator[Connection]:
    """A read-only connection that sees one consistent state while appends go on.

    PostgreSQL: REPEATABLE READ, in UTC. SQLite: an explicit BEGIN, whose first read fixes
    the snapshot (WAL mode lets writers continue meanwhile).
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
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()


def _raw_batches(conn: Connection, statement: Select[Any], name: str) -> Iterator[list[Any]]:
    """Plain tuples in batches straight from the DB-API cursor: no row objects and no type
    processing, which would cost more than all the hashing. PostgreSQL streams through a
    server-side cursor, so memory stays flat."""
    sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    cursor = dbapi.cursor(name=name) if conn.dialect.name == "postgresql" else dbapi.cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(BATCH):
            yield batch
    finally:
        cursor.close()


class _NodeChecker:
    """Compares the nodes the pass computes, level by level and a batch at a time, with the
    stored merkle_node rows read through one ordered cursor per level (levels >= 1; level 0
    is compared in SQL, see _check_leaf_nodes)."""

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
                f"audit_verify_level_{level}",
            )
            self.buffers[level] = []
        buffer = self.buffers[level]
        while len(buffer) < count:
            batch = next(self.streams[level], None)
            if batch is None:
                break
            buffer.extend(batch)
        taken, self.buffers[level] = buffer[:count], buffer[count:]
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
        """Flush what is left, then look for nodes that `size` events cannot have made."""
        for level in range(1, len(self.pending)):
            self.flush(level)
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
                first, _ = _covering(level, index)
                return Problem(
                    f"merkle node (level {level}, index {index}) lies beyond the {size} "
                    "events of the log",
                    seq=first,
                )
        return None

    @property
    def checked(self) -> int:
        return sum(self.done)


def _check_leaf_nodes(conn: Connection, size: int) -> Problem | None:
    """Level-0 nodes repeat each event's leaf hash: a join compares all of them inside the
    database, which is much faster than moving a million more rows into Python."""
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
        f"merkle node (level 0, index {seq - 1 if seq else '?'}) is missing or does not "
        f"match event {seq}",
        seq=seq,
    )


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
    """Check everything about each checkpoint that needs no events: note, signature, key."""
    keys = {
        row.id: row
        for row in conn.execute(
            select(
                PlatformKey.id,
                PlatformKey.purpose,
                PlatformKey.public_key,
                PlatformKey.fingerprint,
                PlatformKey.created_at,
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

        def bad(message: str, cp: _CheckpointRow = cp) -> None:
            report.problems.append(Problem(f"checkpoint #{cp.id}: {message}", checkpoint_id=cp.id))

        if previous is not None and cp.tree_size < previous.tree_size:
            bad(
                f"its tree size {cp.tree_size} is smaller than that of the earlier "
                f"checkpoint #{previous.id} ({previous.tree_size}): the log was rewound"
            )
        previous = cp
        try:
            note = parse_checkpoint_body(cp.body)
        except CheckpointFormatError as error:
            bad(f"the signed note is malformed ({error})")
            continue
        if note.tree_size != cp.tree_size or note.root_hash != cp.root_hash:
            bad("the stored size or root differs from the signed note")
        if note.time != audit.format_time(cp.created_at):
            bad("the stored time differs from the signed note")
        key = keys.get(cp.key_id)
        if key is None or key.purpose != CHECKPOINT_PURPOSE:
            bad("its signing key is missing")
            continue
        try:
            _, blob, _ = sshsig.parse_openssh_public_key(key.public_key)
            if sshsig.fingerprint(blob) != key.fingerprint:
                bad(f"the fingerprint of key #{key.id} does not match its public key")
            sshsig.verify(cp.signature, cp.body.encode(), NAMESPACE, [key.public_key])
        except sshsig.SignatureError as error:
            bad(f"the signature does not verify ({error})")
        if key.retired_at is not None and cp.created_at > key.retired_at:
            bad(f"signed by key #{key.id} after that key was retired")
    return rows


def _frontier_root(stack: list[bytes]) -> bytes:
    if not stack:
        return merkle.EMPTY_ROOT
    result = stack[-1]
    for left in reversed(stack[:-1]):
        result = _node_hash(left, result)
    return result


def _check_consistency(
    conn: Connection, checkpoints: list[_CheckpointRow], report: VerificationReport
) -> None:
    """Consistency proofs between consecutive checkpoints, built from the stored nodes,
    exactly as a downloaded checkpoint list would carry them."""
    pairs = [
        (old, new)
        for old, new in zip(checkpoints, checkpoints[1:], strict=False)
        if 0 < old.tree_size < new.tree_size
    ]
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(merkle.HASH_SIZE)

    for old, new in pairs:
        merkle.consistency_proof(old.tree_size, new.tree_size, record)
    stored: dict[tuple[int, int], bytes] = {}
    by_level: dict[int, list[int]] = defaultdict(list)
    for level, index in wanted:
        by_level[level].append(index)
    conditions = [
        and_(MerkleNode.level == level, MerkleNode.index.in_(indexes[i : i + 500]))
        for level, indexes in by_level.items()
        for i in range(0, len(indexes), 500)
    ]
    for i in range(0, len(conditions), 20):
        for level, index, hash_ in conn.execute(
            select(MerkleNode.level, MerkleNode.index, MerkleNode.hash).where(
                or_(*conditions[i : i + 20])
            )
        ):
            stored[(level, index)] = bytes(hash_)
    for old, new in pairs:
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
    for old, new in zip(checkpoints, checkpoints[1:], strict=False):
        if old.tree_size == new.tree_size and old.root_hash != new.root_hash:
            report.problems.append(
                Problem(
                    f"checkpoint #{new.id}: same size as checkpoint #{old.id} but another root",
                    checkpoint_id=new.id,
                )
            )


def verify_log() -> VerificationReport:
    """Recompute and compare everything; the report lists each problem found."""
    started = time.perf_counter()
    report = VerificationReport()
    with _snapshot() as conn:
        checkpoints = _load_checkpoints(conn, report)
        report.checkpoints = len(checkpoints)
        by_size: dict[int, list[_CheckpointRow]] = defaultdict(list)
        for cp in checkpoints:
            by_size[cp.tree_size].append(cp)
        head = conn.execute(
            select(AuditLogHead.size, AuditLogHead.frontier).where(AuditLogHead.id == 1)
        ).first()
        head_size, head_frontier = (head[0], bytes(head[1])) if head else (0, b"")

        size, stack, nodes = 0, [], _NodeChecker(conn)
        try:
            size, stack = _event_pass(conn, by_size, nodes, report)
            for problem in (nodes.finish(size), _check_leaf_nodes(conn, size)):
                if problem is not None:
                    report.problems.append(problem)
        except _Stop as stop:
            report.problems.append(stop.problem)
            size = stop.problem.seq - 1 if stop.problem.seq else size
        report.nodes = nodes.checked + size
        report.size = size

        if not report.problems:
            if head_size != size:
                missing = min(head_size, size) + 1
                report.problems.append(
                    Problem(
                        f"the log head counts {head_size} events but {size} are stored: event "
                        f"{missing} is {'missing' if head_size > size else 'not in the log'}",
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
        for cp in checkpoints:
            if cp.tree_size > size and not any(p.seq for p in report.problems):
                report.problems.append(
                    Problem(
                        f"checkpoint #{cp.id} signed {cp.tree_size} events but only {size} "
                        f"are stored: event {size + 1} is missing",
                        seq=size + 1,
                        checkpoint_id=cp.id,
                    )
                )
                break
        if not report.problems:
            _check_consistency(conn, checkpoints, report)
        report.root = _frontier_root(stack)
    report.seconds = time.perf_counter() - started
    return report


def _first_bad_frontier_seq(size: int, stack: list[bytes], stored: bytes) -> int:
    start = 0
    for position, level in enumerate(
        lv for lv in range(size.bit_length() - 1, -1, -1) if size >> lv & 1
    ):
        chunk = stored[position * merkle.HASH_SIZE : (position + 1) * merkle.HASH_SIZE]
        if position >= len(stack) or chunk != stack[position]:
            return start + 1
        start += 1 << level
    return size


def _chunks(batches: Iterator[list[Any]], size: int) -> Iterator[list[Any]]:
    """Re-cut the cursor's batches into lists of exactly `size` rows (the last may be short)."""
    pending: list[Any] = []
    for batch in batches:
        pending.extend(batch)
        while len(pending) >= size:
            yield pending[:size]
            del pending[:size]
    if pending:
        yield pending


def _decompose(width: int, levels: list[list[bytes]], top: int) -> list[bytes]:
    """Perfect subtrees (largest first) covering the first `width` leaves of a chunk."""
    parts, offset = [], 0
    for level in range(top, -1, -1):
        if width >> level & 1:
            parts.append(levels[level][offset >> level])
            offset += 1 << level
    return parts


def _first_gap(rows: list[Any], start: int) -> int:
    for offset, row in enumerate(rows):
        if row[0] != start + offset + 1:
            return start + offset + 1
    return start + len(rows) + 1


def _leaf_hashes(rows: list[Any], time_of: Any) -> list[bytes]:
    """Leaf hashes of a chunk of raw event rows, computed in comprehensions (C-level loops)."""
    sha256, entry_of = _sha256, fast_entry
    entries = [
        entry_of(seq, time_of(created), actor, org, action, otype, oid, res, origin, payload)
        for seq, created, actor, org, action, otype, oid, res, origin, payload, _ in rows
    ]
    return [sha256(b"\x00" + entry).digest() for entry in entries]


def _event_pass(
    conn: Connection,
    by_size: dict[int, list[_CheckpointRow]],
    nodes: _NodeChecker,
    report: VerificationReport,
) -> tuple[int, list[bytes]]:
    """The hot loop, a chunk of 2**CHUNK_LEVEL events at a time.

    Each chunk is a perfect subtree (except perhaps the last): its leaves are recomputed
    and compared with the stored leaf hashes as whole lists, its inner levels are built
    pairwise, and its root is folded into the frontier of chunks. Checkpoint roots inside
    a chunk come from the frontier plus the chunk's own perfect subtrees up to that size.
    """
    for cp in by_size.get(0, []):
        if cp.root_hash != merkle.EMPTY_ROOT:
            report.problems.append(
                Problem(f"checkpoint #{cp.id}: wrong root for the empty log", checkpoint_id=cp.id)
            )
    e = AuditEvent.__table__.c
    statement = select(
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
    ).order_by(e.seq)
    sha256, time_of, pending = _sha256, _time_converter(conn), nodes.pending
    sizes = sorted(by_size)
    stack: list[bytes] = []  # the frontier of whole chunks, largest first
    size = verified_upto = 0
    batches = _raw_batches(conn, statement, "audit_verify_events")
    for rows in _chunks(batches, CHUNK):
        start, count = size, len(rows)
        if rows[0][0] != start + 1 or rows[-1][0] != start + count:
            missing = _first_gap(rows, start)
            raise _Stop(Problem(f"event {missing} is missing", seq=missing))
        leaves = _leaf_hashes(rows, time_of)
        stored = [bytes(row[10]) for row in rows]
        if leaves != stored:
            seq = start + 1 + next(i for i, (a, b) in enumerate(zip(leaves, stored)) if a != b)
            raise _Stop(
                Problem(f"event {seq} does not match its leaf hash: it was altered", seq=seq)
            )
        levels = [leaves]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append(
                [sha256(b"\x01" + a + b).digest() for a, b in zip(below[0::2], below[1::2])]
            )
        for level in range(1, len(levels)):
            queue = pending[level]
            queue.extend(levels[level])
            if len(queue) >= BATCH:
                nodes.flush(level)
        while sizes and sizes[0] <= start + count:
            at = sizes.pop(0)
            root = _frontier_root(stack + _decompose(at - start, levels, CHUNK_LEVEL))
            for cp in by_size[at]:
                if cp.root_hash != root:
                    # Every hash was recomputed to match: only the signed root can tell, and
                    # it narrows the change down to the events since the last checkpoint
                    # that still matched.
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
            return size, stack + _decompose(count, levels, CHUNK_LEVEL)
        index, level, current = start >> CHUNK_LEVEL, CHUNK_LEVEL, levels[CHUNK_LEVEL][0]
        while index & 1:
            current = sha256(b"\x01" + stack.pop() + current).digest()
            level, index = level + 1, index >> 1
            pending[level].append(current)
        stack.append(current)
    return size, stack


def count_events() -> int:
    return int(db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
