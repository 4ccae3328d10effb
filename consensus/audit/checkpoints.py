"""Signed checkpoints of the audit log, the platform key that signs them, and proofs.

A checkpoint is a small text note (origin, tree size, base64 root hash, time) signed in
OpenSSH's SSHSIG format, so anyone can check it with `ssh-keygen -Y verify` and hold the
platform to it: once a root is signed, rewriting any event it covers shows.

Decisions:
- Making a checkpoint writes no audit event. A checkpoint is a statement *about* the log,
  self-authenticating by its signature and checked by `audit verify`; recording it as an
  event would mean no checkpoint could ever cover the log as it stands (and a cron job would
  grow the log by itself). It signs the tree including every event so far.
- Creating or rotating the platform key *is* audited (an operator action), and
  `make_checkpoint` creates the key on first use, so the demo and tests need no manual step.
  The key event is appended before signing, so the first checkpoint covers it.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from flask import current_app
from sqlalchemy import and_, or_, select

from consensus import audit
from consensus.audit.log import lock_head
from consensus.crypto import merkle, sshsig
from consensus.crypto.keystore import load_kek, open_ed25519, seal
from consensus.extensions import db
from consensus.models import AuditEvent, Checkpoint, MerkleNode, PlatformKey, User, utcnow

if TYPE_CHECKING:  # cryptography is loaded where a checkpoint is signed (lean web workers)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

CHECKPOINT_PURPOSE = "checkpoint"
NAMESPACE = "checkpoint@consensus"
RECEIPT_FORMAT = "consensus-audit-receipt/1"
CHECKPOINTS_FORMAT = "consensus-checkpoints/1"
DEFAULT_PRINCIPAL = "audit@consensus"
_IN_CHUNK = 500  # bound parameters per IN list: far below every database's limit

T = TypeVar("T")


class CheckpointFormatError(ValueError):
    """A checkpoint body that does not follow the note format."""


# --- The platform key -------------------------------------------------------------------


def _kek() -> bytes:
    return load_kek(current_app.config["KEY_ENCRYPTION_KEY"], current_app.instance_path)


def associated_data(key: PlatformKey) -> bytes:
    """Binds a sealed key to its row and purpose: a ciphertext copied elsewhere won't open."""
    return f"platform-key:{key.purpose}:{key.id}".encode()


def active_key(purpose: str = CHECKPOINT_PURPOSE) -> PlatformKey | None:
    """The newest unretired key for a purpose (there is at most one unless rows were edited)."""
    return db.session.execute(
        select(PlatformKey)
        .where(PlatformKey.purpose == purpose, PlatformKey.retired_at.is_(None))
        .order_by(PlatformKey.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def init_key(
    *, actor: User | None = None, rotate: bool = False, purpose: str = CHECKPOINT_PURPOSE
) -> tuple[PlatformKey, bool]:
    """Make sure an active signing key exists: (key, created?). Idempotent unless `rotate`.

    Rotation retires the old key but keeps it: old checkpoints name their key and stay
    verifiable. The log head is locked first, so two processes cannot both create a key.
    """
    lock_head()  # serialises with appends and with other key creations
    current = active_key(purpose)
    if current is not None and not rotate:
        return current, False
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    public_line = sshsig.openssh_public_key_line(private.public_key())
    key = PlatformKey(
        purpose=purpose,
        public_key=public_line,
        fingerprint=sshsig.fingerprint(sshsig.public_key_blob(private.public_key())),
        sealed_private_key="",
        created_at=utcnow(),
    )
    db.session.add(key)
    db.session.flush()  # the id is part of the associated data
    key.sealed_private_key = seal(_kek(), private.private_bytes_raw(), associated_data(key))
    if current is not None:
        current.retired_at = key.created_at
        audit.record(
            "platform_key.retired",
            actor=actor,
            object_type="platform_key",
            object_id=current.id,
            payload={"purpose": purpose, "fingerprint": current.fingerprint, "replaced_by": key.id},
        )
    audit.record(
        "platform_key.created",
        actor=actor,
        object_type="platform_key",
        object_id=key.id,
        payload={
            "purpose": purpose,
            "fingerprint": key.fingerprint,
            "public_key": public_line,
            "replaces": current.id if current is not None else None,
        },
    )
    db.session.flush()
    return key, True


def _private_key(key: PlatformKey) -> Ed25519PrivateKey:
    return open_ed25519(_kek(), key.sealed_private_key, associated_data(key))


def principal() -> str:
    """The name in allowed_signers lines: the log's origin when it is a usable token."""
    origin = current_app.config["AUDIT_ORIGIN"]
    try:
        sshsig._check_token(origin, "principal")
    except sshsig.KeyFormatError:
        return DEFAULT_PRINCIPAL
    return str(origin)


def allowed_signers_line(key: PlatformKey) -> str:
    return sshsig.allowed_signers_line(principal(), NAMESPACE, key.public_key)


def all_keys(purpose: str = CHECKPOINT_PURPOSE) -> list[PlatformKey]:
    return list(
        db.session.execute(
            select(PlatformKey).where(PlatformKey.purpose == purpose).order_by(PlatformKey.id)
        ).scalars()
    )


def allowed_signers_file(purpose: str = CHECKPOINT_PURPOSE) -> str:
    """Every key that ever signed checkpoints, retired ones included (old ones still verify)."""
    return "".join(f"{allowed_signers_line(key)}\n" for key in all_keys(purpose))


# --- The checkpoint note ----------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointNote:
    origin: str
    tree_size: int
    root_hash: bytes
    time: str


def checkpoint_body(origin: str, tree_size: int, root_hash: bytes, moment: datetime) -> str:
    """The signed text: origin, size, base64 root, UTC time; one per line (C2SP-style note)."""
    if not origin or "\n" in origin or origin != origin.strip():
        raise CheckpointFormatError("the origin must be one line without outer spaces")
    root_b64 = base64.b64encode(root_hash).decode()
    return f"{origin}\n{tree_size}\n{root_b64}\n{audit.format_time(moment)}\n"


def parse_checkpoint_body(body: str) -> CheckpointNote:
    """Strict inverse of `checkpoint_body`: anything else is refused."""
    lines = body.split("\n")
    if len(lines) != 5 or lines[-1] != "":
        raise CheckpointFormatError("a checkpoint has exactly four lines")
    origin, size_text, root_text, time_text = lines[:4]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointFormatError("the tree size is not a decimal number")
    try:
        root_hash = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointFormatError("the root hash is not base64") from exc
    if len(root_hash) != merkle.HASH_SIZE or not origin or not time_text:
        raise CheckpointFormatError("malformed checkpoint")
    return CheckpointNote(origin, int(size_text), root_hash, time_text)


def latest_checkpoint() -> Checkpoint | None:
    return db.session.execute(
        select(Checkpoint).order_by(Checkpoint.id.desc()).limit(1)
    ).scalar_one_or_none()


def make_checkpoint(actor: User | None = None, *, reuse_unchanged: bool = True) -> Checkpoint:
    """Sign the log as it stands (flush only; the caller commits with its own change).

    Called on every outcome and co-signature and by `flask audit checkpoint`. With
    `reuse_unchanged`, an unchanged log signed by the current key returns the latest
    checkpoint instead of signing the same tree again.
    """
    key = active_key() or init_key(actor=actor)[0]
    lock_head()  # size and root must belong together
    size, root_hash = audit.tree_head()
    if reuse_unchanged:
        latest = latest_checkpoint()
        if latest is not None and latest.tree_size == size and latest.key_id == key.id:
            return latest
    moment = utcnow()
    body = checkpoint_body(current_app.config["AUDIT_ORIGIN"], size, root_hash, moment)
    checkpoint = Checkpoint(
        tree_size=size,
        root_hash=root_hash,
        created_at=moment,
        key_id=key.id,
        body=body,
        signature=sshsig.sign(_private_key(key), body.encode(), NAMESPACE),
    )
    db.session.add(checkpoint)
    db.session.flush()
    return checkpoint


# --- Proofs from the stored nodes -------------------------------------------------------


class StoredNodes:
    """A merkle.NodeGetter over merkle_node rows, fetched in bulk.

    The proof functions only ever ask for nodes, never branch on their values, so a dry run
    with placeholder hashes names every node a proof needs; one query then fetches them all.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int], bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._cache:
            self.fetch([key])
        try:
            return self._cache[key]
        except KeyError:
            raise LookupError(f"merkle node {key} is not stored") from None

    def fetch(self, keys: Iterable[tuple[int, int]]) -> None:
        by_level: dict[int, list[int]] = defaultdict(list)
        for level, index in set(keys) - self._cache.keys():
            by_level[level].append(index)
        conditions = [
            and_(MerkleNode.level == level, MerkleNode.index.in_(indexes[i : i + _IN_CHUNK]))
            for level, indexes in by_level.items()
            for i in range(0, len(indexes), _IN_CHUNK)
        ]
        for i in range(0, len(conditions), 20):
            rows = db.session.execute(
                select(MerkleNode.level, MerkleNode.index, MerkleNode.hash).where(
                    or_(*conditions[i : i + 20])
                )
            )
            for level, index, hash_ in rows:
                self._cache[(level, index)] = bytes(hash_)

    def prepared(self, compute: Callable[[merkle.NodeGetter], T]) -> T:
        """Run `compute(get_node)` after fetching, in one go, every node it will ask for."""
        wanted: list[tuple[int, int]] = []

        def record(level: int, index: int) -> bytes:
            wanted.append((level, index))
            return bytes(merkle.HASH_SIZE)

        compute(record)
        self.fetch(wanted)
        return compute(self)


def inclusion_proof(seq: int, tree_size: int, nodes: StoredNodes | None = None) -> list[bytes]:
    """Audit path of event `seq` (1-based) in the tree of `tree_size` events."""
    nodes = nodes or StoredNodes()
    return nodes.prepared(lambda get: merkle.inclusion_proof(seq - 1, tree_size, get))


def consistency_proof(
    old_size: int, new_size: int, nodes: StoredNodes | None = None
) -> list[bytes]:
    nodes = nodes or StoredNodes()
    return nodes.prepared(lambda get: merkle.consistency_proof(old_size, new_size, get))


# --- What is handed out: receipts and the checkpoint list -------------------------------


def _hex(hashes: Sequence[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def checkpoint_dict(checkpoint: Checkpoint, key: PlatformKey) -> dict[str, Any]:
    return {
        "id": checkpoint.id,
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash.hex(),
        "created_at": audit.format_time(checkpoint.created_at),
        "key_id": key.id,
        "key_fingerprint": key.fingerprint,
        "body": checkpoint.body,
        "signature": checkpoint.signature,
    }


def key_dict(key: PlatformKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "public_key": key.public_key,
        "fingerprint": key.fingerprint,
        "created_at": audit.format_time(key.created_at),
        "retired_at": audit.format_time(key.retired_at) if key.retired_at else None,
        "allowed_signers": allowed_signers_line(key),
    }


def receipt(event: AuditEvent) -> dict[str, Any]:
    """Everything needed to prove later that this event is in the log, without the platform.

    The proof is against the latest checkpoint when it covers the event (a signed root);
    otherwise against the current head, unsigned until the next checkpoint.
    """
    checkpoint = latest_checkpoint()
    covered = checkpoint is not None and checkpoint.tree_size >= event.seq
    if covered:
        assert checkpoint is not None
        tree_size, root_hash = checkpoint.tree_size, checkpoint.root_hash
    else:
        tree_size, root_hash = audit.tree_head()
    return {
        "format": RECEIPT_FORMAT,
        "origin": current_app.config["AUDIT_ORIGIN"],
        "seq": event.seq,
        "leaf_index": event.seq - 1,
        "entry": audit.event_entry(event).decode("utf-8"),
        "leaf_hash": event.leaf_hash.hex(),
        "tree_size": tree_size,
        "root_hash": root_hash.hex(),
        "inclusion_proof": _hex(inclusion_proof(event.seq, tree_size)),
        "checkpoint": (
            checkpoint_dict(checkpoint, db.session.get_one(PlatformKey, checkpoint.key_id))
            if covered and checkpoint is not None
            else None
        ),
        "namespace": NAMESPACE,
        "principal": principal(),
    }


def checkpoint_list(*, after_id: int | None = None, limit: int = 500) -> dict[str, Any]:
    """Checkpoints in the order they were made, each with a consistency proof from the one
    before it, so a verifier can check that no checkpoint forks or rewinds the log.

    Without `after_id` the latest `limit` are listed; with it, up to `limit` made after
    that checkpoint (follow `next_after_id` for more).
    """
    if after_id is None:
        rows = list(
            db.session.execute(
                select(Checkpoint).order_by(Checkpoint.id.desc()).limit(limit + 1)
            ).scalars()
        )[::-1]
        previous, listed = (rows[0], rows[1:]) if len(rows) > limit else (None, rows)
        more = False
    else:
        rows = list(
            db.session.execute(
                select(Checkpoint)
                .where(Checkpoint.id > after_id)
                .order_by(Checkpoint.id)
                .limit(limit + 1)
            ).scalars()
        )
        more, listed = len(rows) > limit, rows[:limit]
        previous = db.session.execute(
            select(Checkpoint)
            .where(Checkpoint.id <= after_id)
            .order_by(Checkpoint.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    keys = {key.id: key for key in all_keys()}
    pairs = list(zip([previous, *listed], listed, strict=False))  # (one before, each)
    nodes = StoredNodes()
    proofs = nodes.prepared(
        lambda get: [
            # A shrinking pair gets an empty proof, which no verifier accepts.
            merkle.consistency_proof(old.tree_size, new.tree_size, get)
            if old is not None and old.tree_size <= new.tree_size
            else []
            for old, new in pairs
        ]
    )
    entries = []
    for (old, new), proof in zip(pairs, proofs, strict=True):
        entry = checkpoint_dict(new, keys[new.key_id])
        entry["consistency"] = (
            None
            if old is None
            else {
                "from_id": old.id,
                "from_tree_size": old.tree_size,
                "from_root_hash": old.root_hash.hex(),
                "proof": _hex(proof),
            }
        )
        entries.append(entry)
    return {
        "format": CHECKPOINTS_FORMAT,
        "origin": current_app.config["AUDIT_ORIGIN"],
        "namespace": NAMESPACE,
        "principal": principal(),
        "hash": "sha256 (RFC 9162 Merkle tree hashes, hex)",
        "keys": [key_dict(key) for key in keys.values()],
        "checkpoints": entries,
        "next_after_id": listed[-1].id if more and listed else None,
    }
