"""The one writer of the audit log's format: an event's canonical bytes and the tree's edge.

Recording (audit.log.record), the scale world's bulk append (worlds.scale) and verifying
(audit.verify) all build an event's bytes with `leaf_input` / `canonical_entry` here, and
append to the tree through `Edge`, so the format exists once. docs/audit.md describes it
for people who re-implement it (tools/verify_audit.py is such an independent reading).

The canonical entry is JSON with sorted keys and no whitespace, strings as
`json.dumps(ensure_ascii=False)` writes them; the payload is embedded as its stored text so
that verification never depends on re-serialising it. It is built with one f-string rather
than a dict and the general JSON encoder because the verifier runs it for every event; a
value of an unexpected type (only possible after a hand edit) takes the general path and so
yields exactly what json.dumps would (tests compare both on random input).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from consensus.crypto import merkle

if TYPE_CHECKING:
    from consensus.models import AuditEvent

HASH_SIZE = 32
FIELDS = (
    "action",
    "actor",
    "object_id",
    "object_type",
    "organisation",
    "origin",
    "payload",
    "result",
    "seq",
    "time",
)
_encode_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses
_ENCODED: dict[str, str] = {}


def format_time(moment: datetime) -> str:
    """The one textual form of a timestamp inside the log (UTC, microseconds, 'Z').

    A naive moment is taken as UTC (that is how the database hands them back)."""
    if moment.tzinfo is not None:
        if moment.utcoffset():
            moment = moment.astimezone(UTC)
        moment = moment.replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def _remember(value: str) -> str:
    """The JSON form of a string field value, kept for the next events (a bounded memo)."""
    text: str = _encode_string(value)  # TypeError for anything but a string
    if type(value) is str and len(_ENCODED) < 10_000:
        _ENCODED[value] = text
    return text


def leaf_input(
    seq: int,
    time_text: str,
    actor_id: int | None,
    organisation_id: int | None,
    action: str,
    object_type: str,
    object_id: str,
    result: str,
    origin: str,
    payload: str,
) -> bytes:
    """b"\\x00" + the canonical entry: what RFC 9162 hashes as a leaf (`time_text` as
    format_time writes it)."""
    enc = _encode_string
    memo = _ENCODED
    try:
        # Action, object type, result and origin repeat endlessly: encode each value once.
        action_text = memo.get(action) or _remember(action)
        type_text = memo.get(object_type) or _remember(object_type)
        result_text = memo.get(result) or _remember(result)
        origin_text = memo.get(origin) or _remember(origin)
        if type(seq) is not int:
            raise TypeError("seq")
        if actor_id is None:
            actor_text = "null"
        elif type(actor_id) is int:
            actor_text = str(actor_id)
        else:
            raise TypeError("actor")
        if organisation_id is None:
            organisation_text = "null"
        elif type(organisation_id) is int:
            organisation_text = str(organisation_id)
        else:
            raise TypeError("organisation")
        return (
            f'\x00{{"action":{action_text},"actor":{actor_text},'
            f'"object_id":{enc(object_id)},"object_type":{type_text},'
            f'"organisation":{organisation_text},'
            f'"origin":{origin_text},"payload":{enc(payload)},"result":{result_text},'
            f'"seq":{seq},"time":"{time_text}"}}'
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
            time_text,
        )
        body = ",".join(
            f'"{name}":{json.dumps(value, ensure_ascii=False)}'
            for name, value in zip(FIELDS, values, strict=True)
        )
        return f"\x00{{{body}}}".encode("utf-8", "replace")


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
    **_: Any,
) -> bytes:
    """The exact bytes that are hashed into the log for one event (keyword form of the
    event's columns; other columns, such as a stored leaf hash, are ignored)."""
    return leaf_input(
        seq,
        format_time(created_at),
        actor_id,
        organisation_id,
        action,
        object_type,
        object_id,
        result,
        origin,
        payload,
    )[1:]


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


class Edge:
    """The right edge of the tree (its frontier: one perfect subtree hash per bit of the
    size, largest first), as the head row stores it. Appending a leaf returns the nodes that
    became complete, which the caller stores in merkle_node."""

    def __init__(self, size: int, frontier: bytes) -> None:
        self.size = size
        self._nodes: dict[int, tuple[int, bytes]] = {}  # level -> (index, hash)
        start = offset = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size & (1 << level):
                self._nodes[level] = (start >> level, frontier[offset : offset + HASH_SIZE])
                offset += HASH_SIZE
                start += 1 << level

    def _get(self, level: int, index: int) -> bytes:
        stored_index, hash_ = self._nodes[level]
        if stored_index != index:
            raise ValueError(f"the edge has no node ({level}, {index})")
        return hash_

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; (level, index, hash) of every node it completed."""
        completed = merkle.nodes_completed_by_append(self.size, leaf, self._get)
        for level, index, hash_ in completed:
            self._nodes[level] = (index, hash_)
        self.size += 1
        return completed

    def hashes(self) -> list[bytes]:
        """The frontier's subtree hashes, largest subtree first."""
        return [
            self._nodes[level][1]
            for level in range(self.size.bit_length() - 1, -1, -1)
            if self.size & (1 << level)
        ]

    def frontier(self) -> bytes:
        return b"".join(self.hashes())

    def root(self) -> bytes:
        hashes = self.hashes()
        if not hashes:
            return merkle.root([])
        root = hashes[-1]
        for left in reversed(hashes[:-1]):
            root = merkle.node_hash(left, root)
        return root


def node_rows(completed: Iterable[tuple[int, int, bytes]]) -> list[dict[str, Any]]:
    return [{"level": level, "index": index, "hash": hash_} for level, index, hash_ in completed]
