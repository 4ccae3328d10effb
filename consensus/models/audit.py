"""The audit trail: an append-only, hash-chained (Merkle) log of every change of state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from consensus.models.base import Base, utcnow


class AuditEvent(Base):
    """One change of state. `seq` is 1-based and gap-free; leaf index = seq - 1.

    The columns are what the pages filter on; `leaf_hash` commits to all of them through
    the canonical entry bytes (see audit.entry.canonical_entry), so editing any column
    by hand shows up in `audit verify`.
    """

    __tablename__ = "audit_event"
    __table_args__ = (CheckConstraint("seq > 0", name="seq_positive"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(80), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(80))
    result: Mapped[str] = mapped_column(String(20), default="success")
    origin: Mapped[str] = mapped_column(String(80))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class MerkleNode(Base):
    """A complete, perfect subtree of the log: leaves [index*2^level, (index+1)*2^level)."""

    __tablename__ = "merkle_node"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditLogHead(Base):
    """The single row that serialises appends and holds the log's right edge.

    `frontier` is the concatenation of the hashes of the perfect subtrees that make up the
    tree of `size` leaves, largest first: enough to append and compute the root in O(log n).
    """

    __tablename__ = "audit_log_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer, default=0)
    frontier: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


class PlatformKey(Base):
    """The platform's own signing key (checkpoints), sealed with the key-encryption key."""

    __tablename__ = "platform_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(40), index=True)
    public_key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(80))
    sealed_private_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


class Checkpoint(Base):
    """A signed statement of the log's size and root at a moment (a signed tree head)."""

    __tablename__ = "checkpoint"
    __table_args__ = (CheckConstraint("tree_size >= 0", name="tree_size_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tree_size: Mapped[int] = mapped_column(Integer, index=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    key_id: Mapped[int] = mapped_column(ForeignKey("platform_key.id", ondelete="RESTRICT"))
    body: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)
