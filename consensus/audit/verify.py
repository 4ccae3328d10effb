"""Full verification of the audit log: every event, stored node, the head and checkpoints.

The events are cut into aligned ranges of 2**14 (CHUNK): each range is a perfect subtree.
For each range, verify_worker.verify_range reads its events as plain driver tuples,
recomputes every leaf hash from the stored columns (audit.entry, the one writer of the
format) and compares it with the stored one, hashes the levels up pairwise and compares
every complete node over the range, level 0 included, with its merkle_node row (one
ordered range read per level). This pass then takes the ranges in order: it checks the
root of every checkpoint that ends inside one (the frontier so far plus the range's
subtrees up to that size), folds each range's root into the running frontier and
compares the few nodes above the ranges. Memory stays at one range, nothing is loaded as
ORM objects, and the ranges are independent, so on a machine with idle cores worker
processes verify them in parallel (lean processes: no Flask, no models) and hand back only
their subtree roots: the parent does next to nothing per event.

What this proves: the stored events are exactly the ones every checkpoint signed (none
altered, removed, inserted or reordered), the stored nodes serve true proofs, and the
checkpoints never fork or rewind. What it cannot prove: events after the last checkpoint
could be rewritten by someone who also recomputes every hash; checkpoints held outside
(members' receipts, the transparency page) are what pin those down.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from typing import Any

from sqlalchemy import Connection, DateTime, func, select

from consensus import audit
from consensus.audit import verify_worker
from consensus.audit.checkpoints import (
    CHECKPOINT_PURPOSE,
    NAMESPACE,
    CheckpointFormatError,
    parse_checkpoint_body,
)
from consensus.crypto import merkle, sshsig
from consensus.extensions import db
from consensus.models import AuditEvent, AuditLogHead, Checkpoint, MerkleNode, PlatformKey

BATCH = 20_000  # rows per fetch
CHUNK_LEVEL = 14
CHUNK = 1 << CHUNK_LEVEL  # events verified together (a range, one job): a perfect subtree
PARALLEL_MIN_EVENTS = 100_000  # below this, starting workers costs more than it saves
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
    """Raw database value of created_at -> the text in the canonical entry, exactly as the
    application's own DateTime type reads it (see verify_worker.time_converter)."""
    processor = (
        DateTime(timezone=True).dialect_impl(conn.dialect).result_processor(conn.dialect, None)
    )
    return verify_worker.time_converter(conn.dialect.name, processor)


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


Range = tuple[int, int, tuple[int, ...]]  # events after+1..upto, checkpoint sizes inside


def _ranges(upto: int, sizes: list[int]) -> list[Range]:
    """Aligned ranges of CHUNK events (a perfect subtree each; the last may be shorter),
    with the checkpoint sizes that end inside each."""
    ranges = []
    for after in range(0, upto, CHUNK):
        end = min(after + CHUNK, upto)
        ranges.append((after, end, tuple(s for s in sizes if after < s <= end)))
    return ranges


def _stop(problem: verify_worker.RangeProblem) -> _Stop:
    return _Stop(Problem(problem.message, seq=problem.seq))


def _results_here(conn: Connection, ranges: list[Range]) -> Iterator[verify_worker.RangeResult]:
    """Each range verified in this process, in order."""
    dbapi, dialect, time_of = (
        conn.connection.driver_connection,
        conn.dialect.name,
        _time_converter(conn),
    )
    for after, upto, cuts in ranges:
        try:
            yield verify_worker.verify_range(dbapi, dialect, time_of, after, upto, cuts, BATCH)
        except verify_worker.RangeProblem as problem:
            raise _stop(problem) from None


# --- Worker processes for large logs --------------------------------------------------------


def _worker_connection(conn: Connection) -> tuple[str, list[Any], dict[str, Any]]:
    """How a worker opens the same database with the bare driver: the arguments the
    engine's dialect gives the DB-API's connect() (minus the adapters object, which is
    the engine's own and not needed for plain reads)."""
    engine = conn.engine
    args, params = engine.dialect.create_connect_args(engine.url)
    params = {key: value for key, value in params.items() if key != "context"}
    return conn.dialect.name, list(args), params


@contextmanager
def _workers_skip_main_script() -> Iterator[None]:
    """While worker processes start, let `__main__` name the worker module.

    A spawned process first re-runs the parent's main script (as `__mp_main__`) unless
    `__main__` names an importable module: for the `flask` command that means importing
    Flask's CLI, for a script that imports the application at the top the whole
    application, up to a second of CPU per worker before its first job. The workers need
    nothing from it, so they import consensus.audit.verify_worker under that name instead
    (it is light and does nothing on import). Processes are started synchronously inside
    submit(), so the change lasts only while they start.
    """
    main = sys.modules.get("__main__")
    if main is None or getattr(getattr(main, "__spec__", None), "name", None) is not None:
        yield  # started as a module (python -m ...): spawn already skips it
        return
    saved = main.__spec__
    main.__spec__ = importlib.util.find_spec(verify_worker.__name__)
    try:
        yield
    finally:
        main.__spec__ = saved


def _results_from_workers(
    conn: Connection, ranges: list[Range], workers: int
) -> Iterator[verify_worker.RangeResult]:
    """The same ranges verified by `workers` processes, handed back in order (a bounded
    queue of jobs, so memory stays flat).

    The workers run consensus.audit.verify_worker on their own driver connections, started
    with "spawn" (a fresh interpreter: nothing inherited from this process's connections
    or threads); they import no Flask and no models, so each starts in a tenth of a second.
    """
    snapshot_id = None
    if conn.dialect.name == "postgresql":
        snapshot_id = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
    dialect, args, params = _worker_connection(conn)
    jobs = iter(ranges)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=verify_worker.start,
        initargs=(dialect, args, params, snapshot_id),
    ) as pool:
        running: deque[Future[verify_worker.RangeResult | tuple[str, int]]] = deque()
        try:
            with _workers_skip_main_script():  # the first `workers` submits start them
                for job in jobs:
                    running.append(pool.submit(verify_worker.job, *job))
                    if len(running) >= 3 * workers:
                        break
            while running:
                outcome = running.popleft().result()
                next_job = next(jobs, None)
                if next_job is not None:
                    running.append(pool.submit(verify_worker.job, *next_job))
                if isinstance(outcome, tuple):
                    raise _Stop(Problem(outcome[0], seq=outcome[1]))
                yield outcome
        finally:
            for future in running:
                future.cancel()


# --- Stored nodes above the ranges ---------------------------------------------------------


def _check_high_nodes(conn: Connection, high: dict[int, list[bytes]]) -> Problem | None:
    """Nodes above the ranges (folded from their roots) against their stored rows."""
    dbapi, dialect = conn.connection.driver_connection, conn.dialect.name
    found = [
        problem
        for level, computed in sorted(high.items())
        if (problem := verify_worker.compare_nodes(dbapi, dialect, level, 0, computed))
    ]
    if not found:
        return None
    first = min(found, key=lambda problem: problem.seq)
    return Problem(first.message, seq=first.seq)


def _nodes_beyond(conn: Connection, size: int) -> Problem | None:
    """Stored nodes that `size` events cannot have (every node they can have was compared)."""
    found: list[Problem] = []
    for level, stored in conn.execute(
        select(MerkleNode.level, func.count()).group_by(MerkleNode.level)
    ):
        if stored > size >> level:
            index = conn.execute(
                select(MerkleNode.index)
                .where(MerkleNode.level == level, MerkleNode.index >= size >> level)
                .order_by(MerkleNode.index)
                .limit(1)
            ).scalar_one()
            first, last = verify_worker.covering(level, index)
            # The node needs events that are not there: name the first of those.
            found.append(
                Problem(
                    f"merkle node (level {level}, index {index}) over events "
                    f"{first}-{last} lies beyond the {size} events of the log",
                    seq=max(first, size + 1),
                )
            )
    return min(found, key=lambda p: p.seq or 0) if found else None


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


def _tree_pass(
    ranges: list[Range],
    results: Iterator[verify_worker.RangeResult],
    by_size: dict[int, list[_CheckpointRow]],
) -> tuple[int, list[bytes], int, dict[int, list[bytes]]]:
    """Take the verified ranges in order: check the roots of checkpoints that end inside
    each, and fold each range's root into the frontier, collecting the nodes above the
    ranges for comparison. Returns the size, the frontier (perfect subtrees, largest
    first), the nodes compared and the nodes above the ranges by level."""
    sha256 = _sha256
    stack: list[bytes] = []
    high: dict[int, list[bytes]] = defaultdict(list)
    size = verified_upto = nodes = 0
    for (after, upto, cuts), result in zip(ranges, results, strict=False):
        nodes += result.nodes
        for at in cuts:
            root = _frontier_root(stack + result.cuts[at])
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
        size = upto
        if upto - after < CHUNK:
            return size, stack + result.parts, nodes, high
        index, level, current = after >> CHUNK_LEVEL, CHUNK_LEVEL, result.parts[0]
        while index & 1:
            current = sha256(b"\x01" + stack.pop() + current).digest()
            level, index = level + 1, index >> 1
            high[level].append(current)
        stack.append(current)
    return size, stack, nodes, high


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

    A worker starts in about 0.07 s of CPU (a fresh interpreter that imports only
    verify_worker) and then does all the per-event work while this process waits, so
    they pay off from about 100,000 events (a second of work), and only on cores that are
    idle: on a busy machine they would just compete with everything else. This process's
    own core counts as idle: it waits while the workers verify (so on two cores with one
    busy, two workers; the one-minute load average also still holds the last run of this
    very command: scale 10 was verified in-process at load 1.4, 150,711 events/s, against
    282,610 with two workers).
    """
    cores = os.cpu_count() or 1
    try:
        idle = round(cores - os.getloadavg()[0]) + 1
    except (AttributeError, OSError):  # no load average on this platform
        idle = cores
    workers = min(idle, cores, MAX_WORKERS)
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
        if conn.dialect.name == "sqlite" and conn.engine.url.database in (None, "", ":memory:"):
            report.workers = 0  # a database in memory exists only in this process
        ranges = _ranges(last_seq, sorted(s for s in by_size if s > 0))
        results = (
            _results_from_workers(conn, ranges, report.workers)
            if report.workers
            else _results_here(conn, ranges)
        )
        size, stack, nodes = 0, [], 0
        try:
            size, stack, nodes, high = _tree_pass(ranges, results, by_size)
            nodes += sum(map(len, high.values()))
            for problem in (_check_high_nodes(conn, high), _nodes_beyond(conn, size)):
                if problem is not None:
                    report.problems.append(problem)
        except _Stop as stop:
            report.problems.append(stop.problem)
            size = (stop.problem.seq or 1) - 1
        report.nodes = nodes
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
