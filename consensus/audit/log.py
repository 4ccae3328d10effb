"""Writing the audit trail: one event per change of state, in the same transaction.

Each event's canonical bytes (audit.entry) are hashed into an RFC 9162 Merkle tree. The head row is
locked while appending so sequence numbers stay gap-free and the tree stays consistent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import has_request_context, request
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm.util import identity_key

from consensus.audit.entry import Edge, canonical_entry, node_rows
from consensus.crypto import merkle
from consensus.extensions import db
from consensus.models import AuditEvent, AuditLogHead, MerkleNode, User, utcnow

# Keys that must never reach the log, whatever a caller passes in.
_SECRET_KEYS = {"password", "password_hash", "totp_secret", "token", "secret", "private_key"}


def current_origin() -> str:
    """Where the action came from: the client address in a request, else the command line."""
    if has_request_context():
        return (request.remote_addr or "unknown")[:80]
    return "cli"


def _scrub(payload: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in payload.items():
        if key.lower() in _SECRET_KEYS:
            continue
        clean[key] = _scrub(value) if isinstance(value, Mapping) else value
    return clean


# populate_existing: if this session loaded the head earlier (without the lock), its
# identity-map copy may be stale; the locked row's values must win. Built once: every change
# runs it, and a reused statement keeps its cache key.
_HEAD_FOR_UPDATE = (
    select(AuditLogHead)
    .where(AuditLogHead.id == 1)
    .with_for_update()
    .execution_options(populate_existing=True)
)


def _select_head_for_update() -> AuditLogHead | None:
    return db.session.execute(_HEAD_FOR_UPDATE).scalar_one_or_none()


def lock_head() -> AuditLogHead:
    head = _select_head_for_update()
    if head is None:
        # The very first events of an empty log may be written by several requests at
        # once: create the row only if nobody else did (no IntegrityError), then lock it.
        # The dialect's own insert, imported here: PostgreSQL's dialect package is large
        # and a worker on SQLite never needs it.
        if db.session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        db.session.execute(
            insert(AuditLogHead)
            .values(id=1, size=0, frontier=b"")
            .on_conflict_do_nothing(index_elements=["id"])
        )
        head = _select_head_for_update()
        assert head is not None
    return head


# The head's values alone, locked: an append needs no ORM object for the head.
_HEAD_ROW_FOR_UPDATE = (
    select(AuditLogHead.size, AuditLogHead.frontier).where(AuditLogHead.id == 1).with_for_update()
)
_EVENTS = AuditEvent.__table__
_NODES = MerkleNode.__table__
_SET_HEAD = (
    update(AuditLogHead.__table__)
    .where(AuditLogHead.__table__.c.id == 1)
    .values(size=bindparam("b_size"), frontier=bindparam("b_frontier"))
)


def record(
    action: str,
    *,
    actor: User | None,
    object_type: str,
    object_id: object,
    organisation_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
    result: str = "success",
    origin: str | None = None,
) -> int:
    """Append one event to the log and return its sequence number (writes in the caller's
    transaction, never commits: it lives or dies with its change).

    Pending changes of the session are flushed first, then the event, its completed Merkle
    nodes and the head are written as plain rows: every change of the platform runs this
    while holding the write lock, where the ORM's unit of work cost more than the SQL.
    """
    session = db.session
    session.flush()
    row = session.execute(_HEAD_ROW_FOR_UPDATE).first()
    if row is None:
        lock_head()  # the very first event: create the row, then read it locked
        row = session.execute(_HEAD_ROW_FOR_UPDATE).one()
    size, stored_frontier = int(row[0]), bytes(row[1])
    values = {
        "seq": size + 1,
        "created_at": utcnow(),
        "actor_id": actor.id if actor is not None else None,
        "organisation_id": organisation_id,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "result": result,
        "origin": (origin or current_origin())[:80],
        "payload": json.dumps(
            _scrub(payload or {}),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        ),
    }
    leaf = merkle.leaf_hash(canonical_entry(**values))
    edge = Edge(size, stored_frontier)
    completed = edge.append(leaf)
    session.execute(insert(_EVENTS), {**values, "leaf_hash": leaf})
    session.execute(insert(_NODES), node_rows(completed))
    session.execute(_SET_HEAD, {"b_size": edge.size, "b_frontier": edge.frontier()})
    # A copy of the head loaded earlier in this session (tree_head, checkpoints) is stale now.
    loaded = session.identity_map.get(identity_key(AuditLogHead, 1))
    if loaded is not None:
        session.expire(loaded)
    return size + 1


def tree_head() -> tuple[int, bytes]:
    """The current size and root hash of the log, computed from the head row's frontier."""
    head = db.session.get(AuditLogHead, 1)
    if head is None or head.size == 0:
        return 0, merkle.root([])
    return head.size, Edge(head.size, head.frontier).root()
