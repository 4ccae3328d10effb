"""Writing the audit trail: one event per change of state, in the same transaction.

Each event's canonical bytes are hashed into an RFC 9162 Merkle tree. The head row is
locked while appending so sequence numbers stay gap-free and the tree stays consistent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import has_request_context, request
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.util import identity_key

from consensus.crypto import merkle
from consensus.extensions import db
from consensus.models import AuditEvent, AuditLogHead, MerkleNode, User, utcnow

HASH_SIZE = 32
# Keys that must never reach the log, whatever a caller passes in.
_SECRET_KEYS = {"password", "password_hash", "totp_secret", "token", "secret", "private_key"}


def format_time(moment: datetime) -> str:
    """The one textual form of a timestamp inside the log (UTC, microseconds, 'Z')."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_entry(
    *,
    seq: int,
    created_at: datetime,
    actor_id: int | None,
    organisation_id: int | None,
    action: str,
    object_type: str,
    object_id: str,
    result: str,
    origin: str,
    payload: str,
) -> bytes:
    """The exact bytes that are hashed into the log for one event.

    JSON with sorted keys and no whitespace; the payload is embedded as its stored text so
    that verification never depends on re-serialising it.
    """
    return json.dumps(
        {
            "action": action,
            "actor": actor_id,
            "object_id": object_id,
            "object_type": object_type,
            "organisation": organisation_id,
            "origin": origin,
            "payload": payload,
            "result": result,
            "seq": seq,
            "time": format_time(created_at),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def event_entry(event: AuditEvent) -> bytes:
    return canonical_entry(
        seq=event.seq,
        created_at=event.created_at,
        actor_id=event.actor_id,
        organisation_id=event.organisation_id,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        result=event.result,
        origin=event.origin,
        payload=event.payload,
    )


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


def _frontier_nodes(size: int, frontier: bytes) -> dict[tuple[int, int], bytes]:
    """Map the frontier bytes to (level, index) of the perfect subtrees they hash."""
    nodes: dict[tuple[int, int], bytes] = {}
    start = 0
    offset = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            nodes[(level, start >> level)] = frontier[offset : offset + HASH_SIZE]
            offset += HASH_SIZE
            start += 1 << level
    return nodes


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


def _lock_head() -> AuditLogHead:
    head = _select_head_for_update()
    if head is None:
        # The very first events of an empty log may be written by several requests at
        # once: create the row only if nobody else did (no IntegrityError), then lock it.
        dialect = db.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
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
        _lock_head()  # the very first event: create the row, then read it locked
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
    frontier = _frontier_nodes(size, stored_frontier)
    completed = merkle.nodes_completed_by_append(
        size, leaf, lambda level, index: frontier[(level, index)]
    )
    session.execute(insert(_EVENTS), {**values, "leaf_hash": leaf})
    if completed:
        session.execute(
            insert(_NODES),
            [{"level": level, "index": index, "hash": node} for level, index, node in completed],
        )
    for level, index, node in completed:
        frontier[(level, index)] = node
    new_frontier = b"".join(hash_ for _, hash_ in _frontier_nodes_order(size + 1, frontier))
    session.execute(_SET_HEAD, {"b_size": size + 1, "b_frontier": new_frontier})
    # A copy of the head loaded earlier in this session (tree_head, checkpoints) is stale now.
    loaded = session.identity_map.get(identity_key(AuditLogHead, 1))
    if loaded is not None:
        session.expire(loaded)
    return size + 1


def _frontier_nodes_order(
    size: int, known: dict[tuple[int, int], bytes]
) -> list[tuple[tuple[int, int], bytes]]:
    ordered = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            key = (level, start >> level)
            ordered.append((key, known[key]))
            start += 1 << level
    return ordered


def tree_head() -> tuple[int, bytes]:
    """The current size and root hash of the log, computed from the head row's frontier."""
    head = db.session.get(AuditLogHead, 1)
    if head is None or head.size == 0:
        return 0, merkle.root([])
    hashes = [
        h for _, h in _frontier_nodes_order(head.size, _frontier_nodes(head.size, head.frontier))
    ]
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = merkle.node_hash(left, root)
    return head.size, root
