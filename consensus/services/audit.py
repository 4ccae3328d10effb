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
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
) -> AuditEvent:
    """Append one event to the log (flushes, never commits: it lives or dies with its change)."""
    head = _lock_head()
    size = head.size
    created_at = utcnow()
    payload_text = json.dumps(
        _scrub(payload or {}),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    event = AuditEvent(
        seq=size + 1,
        created_at=created_at,
        actor_id=actor.id if actor is not None else None,
        organisation_id=organisation_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        result=result,
        origin=(origin or current_origin())[:80],
        payload=payload_text,
        leaf_hash=b"",
    )
    event.leaf_hash = merkle.leaf_hash(event_entry(event))

    frontier = _frontier_nodes(size, head.frontier)
    completed = merkle.nodes_completed_by_append(
        size, event.leaf_hash, lambda level, index: frontier[(level, index)]
    )
    db.session.add(event)
    for level, index, node_hash in completed:
        db.session.add(MerkleNode(level=level, index=index, hash=node_hash))
        frontier[(level, index)] = node_hash
    new_size = size + 1
    head.size = new_size
    head.frontier = b"".join(hash_ for key, hash_ in _frontier_nodes_order(new_size, frontier))
    db.session.flush()
    return event


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
