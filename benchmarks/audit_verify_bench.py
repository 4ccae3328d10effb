"""Time `flask audit verify` (audit.verify.verify_log) on a large synthetic log.

Builds a scratch database with N events inserted in bulk (with their leaf hashes, every
stored Merkle node, the log head and ten signed checkpoints), then verifies it.

Usage:
    python benchmarks/audit_verify_bench.py [--events 1000000] [--database-url URL]
        [--workers N] [--runs 2] [--no-build]

Without --database-url a temporary SQLite file is used; pass a PostgreSQL URL (an empty
database you can throw away) to measure there. With --no-build, --database-url names an
existing log, such as the scale world's (benchmarks/.work/scale-1-sqlite/db.sqlite), which
is verified as it is. Each run prints events/s (wall), the CPU time per event over the
parent and its worker processes, and the load average, since on a shared machine the wall
figure says as much about the neighbours as about the verifier.
Target: at least 200,000 events/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("CONSENSUS_INSTANCE_PATH", tempfile.mkdtemp(prefix="audit-bench-"))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from consensus import (
    audit,  # noqa: E402
    create_app,  # noqa: E402
)
from consensus.audit import checkpoints  # noqa: E402
from consensus.audit import verify as audit_verify  # noqa: E402
from consensus.crypto import merkle, sshsig  # noqa: E402
from consensus.extensions import db  # noqa: E402
from consensus.models import AuditEvent, AuditLogHead, Checkpoint, MerkleNode  # noqa: E402

ACTIONS = [
    "user.logged_in",
    "membership.created",
    "endorsement.cast",
    "comment.added",
    "amendment.proposed",
    "round.opened",
    "cosignature.added",
    "version.created",
]
CHUNK = 50_000


def synthetic_events(count: int) -> list[dict[str, object]]:
    """Plausible events: a few hundred actors and organisations, small JSON payloads."""
    rng = random.Random(9162)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = []
    for seq in range(1, count + 1):
        payload = json.dumps(
            {
                "round": rng.randrange(500),
                "stance": rng.choice(["endorse", "abstain"]),
                "note": "ééé" if seq % 1000 == 0 else "ok",
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        event: dict[str, object] = {
            "seq": seq,
            "created_at": start + timedelta(seconds=seq * 7, microseconds=seq % 1_000_000),
            "actor_id": None,
            "organisation_id": None,
            "action": ACTIONS[seq % len(ACTIONS)],
            "object_type": "process",
            "object_id": str(rng.randrange(10_000)),
            "result": "success",
            "origin": f"198.51.100.{seq % 250}",
            "payload": payload,
        }
        event["leaf_hash"] = merkle.leaf_hash(audit.canonical_entry(**event))  # type: ignore[arg-type]
        events.append(event)
    return events


def build(count: int) -> None:
    started = time.perf_counter()
    events = synthetic_events(count)
    tree = merkle.MemoryTree()
    for event in events:
        tree.append_leaf_hash(event["leaf_hash"])  # type: ignore[arg-type]
    print(f"generated {count:,} events and their tree in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    with db.engine.begin() as conn:
        for i in range(0, count, CHUNK):
            conn.execute(insert(AuditEvent.__table__), events[i : i + CHUNK])
        nodes = [
            {"level": level, "index": index, "hash": digest}
            for level, hashes in enumerate(tree._levels)
            for index, digest in enumerate(hashes)
        ]
        for i in range(0, len(nodes), CHUNK):
            conn.execute(insert(MerkleNode.__table__), nodes[i : i + CHUNK])
        frontier = merkle_frontier(tree, count)
        conn.execute(
            insert(AuditLogHead.__table__), [{"id": 1, "size": count, "frontier": frontier}]
        )
    print(
        f"inserted {count:,} events and {len(nodes):,} nodes in "
        f"{time.perf_counter() - started:.1f} s"
    )

    key, _ = checkpoints.init_key()  # appends one real event: the log is now count + 1
    db.session.commit()
    private = checkpoints._private_key(key)
    moment = datetime.now(UTC)
    full = audit.tree_head()[0]
    for size in sorted({max(1, full * k // 10) for k in range(1, 11)}):
        root = tree.root(size) if size <= count else audit.tree_head()[1]
        body = checkpoints.checkpoint_body("bench.example.org", size, root, moment)
        db.session.add(
            Checkpoint(
                tree_size=size,
                root_hash=root,
                created_at=moment,
                key_id=key.id,
                body=body,
                signature=sshsig.sign(private, body.encode(), checkpoints.NAMESPACE),
            )
        )
    db.session.commit()


def merkle_frontier(tree: merkle.MemoryTree, size: int) -> bytes:
    parts, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            parts.append(tree.get_node(level, start >> level))
            start += 1 << level
    return b"".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: as `flask audit verify` chooses; 0: none)",
    )
    parser.add_argument(
        "--no-build",
        action="store_true",
        help="verify the log already in --database-url (from an earlier run) as it is",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "AUDIT_ORIGIN": "bench.example.org"})
    with app.app_context():
        if not args.no_build:
            if url.startswith("postgresql"):
                with db.engine.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
            upgrade()
            build(args.events)
        print(f"database: {url}")
        for run in range(1, args.runs + 1):
            load_before = os.getloadavg()[0]
            before = os.times()
            report = audit_verify.verify_log(workers=args.workers)
            after = os.times()
            if not report.ok:
                raise SystemExit(f"verification failed: {report.problems[0].message}")
            # CPU seconds of this process and of the worker processes it waited for (user +
            # system): a figure that does not depend on what else the machine is doing. On
            # a quiet machine with C free cores the wall time approaches CPU / C.
            cpu = sum(after[i] - before[i] for i in range(4))
            print(
                f"run {run}: verified {report.size:,} events, {report.nodes:,} nodes, "
                f"{report.checkpoints} checkpoints, {report.workers} workers: "
                f"{report.seconds:.2f} s = {report.size / report.seconds:,.0f} events/s; "
                f"CPU {cpu:.2f} s = {cpu / max(report.size, 1) * 1e6:.2f} µs per event "
                f"(all processes); load {load_before:.1f} -> {os.getloadavg()[0]:.1f} "
                f"on {os.cpu_count()} cores; {db.engine.dialect.name}"
            )


if __name__ == "__main__":
    main()
