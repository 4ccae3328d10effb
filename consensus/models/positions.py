"""Positions (standpunten), their immutable hashed versions, comments and amendments."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.base import Base, utcnow


def _enum(cls: type[enum.Enum], length: int = 30) -> Enum:
    return Enum(cls, native_enum=False, length=length, validate_strings=True,
                values_callable=lambda members: [m.value for m in members])


class Position(Base):
    """A text the organisations want to adopt jointly, often a letter."""

    __tablename__ = "position"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("process.id", ondelete="CASCADE"),
                                            index=True)
    title: Mapped[str] = mapped_column(String(200))
    # Letter metadata.
    subject: Mapped[str] = mapped_column(String(300), default="")
    addressee: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str] = mapped_column(String(100), default="")
    letter_date: Mapped[date | None]
    reference: Mapped[str] = mapped_column(String(100), default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[Version]] = relationship(
        back_populates="position", order_by="Version.number", lazy="selectin",
        cascade="all, delete-orphan")

    @property
    def latest(self) -> Version | None:
        return self.versions[-1] if self.versions else None


class Version(Base):
    """An immutable, numbered snapshot of a position's text.

    `body` holds the canonical form (UTF-8, NFC, LF, no trailing spaces) and `sha256`
    its hash, so anyone can recompute it from the download.
    """

    __tablename__ = "position_version"
    __table_args__ = (
        UniqueConstraint("position_id", "number"),
        CheckConstraint("number > 0", name="number_positive"),
        CheckConstraint("length(sha256) = 64", name="sha256_hex"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    position_id: Mapped[int] = mapped_column(ForeignKey("position.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    change_summary: Mapped[str] = mapped_column(Text, default="")
    based_on_id: Mapped[int | None] = mapped_column(
        ForeignKey("position_version.id", ondelete="RESTRICT"))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    position: Mapped[Position] = relationship(back_populates="versions")
    paragraphs: Mapped[list[VersionParagraph]] = relationship(
        order_by="VersionParagraph.ordinal", lazy="selectin", cascade="all, delete-orphan")


class VersionParagraph(Base):
    """One block of a version with its stable anchor (kept across unrelated edits)."""

    __tablename__ = "version_paragraph"
    __table_args__ = (
        UniqueConstraint("version_id", "ordinal"),
        UniqueConstraint("version_id", "anchor"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("position_version.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    anchor: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)


class Comment(Base):
    """A threaded comment on a version, optionally on one paragraph."""

    __tablename__ = "comment"
    __table_args__ = (Index("ix_comment_version_anchor", "version_id", "paragraph_anchor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("position_version.id", ondelete="CASCADE"))
    paragraph_anchor: Mapped[str | None] = mapped_column(String(40))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"),
                                                  index=True)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("round.id", ondelete="SET NULL"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True)
    author_role: Mapped[str] = mapped_column(String(20), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


class CommentRevision(Base):
    """The text a comment had before an edit (edits keep their history)."""

    __tablename__ = "comment_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"),
                                            index=True)
    body: Mapped[str] = mapped_column(Text)
    replaced_at: Mapped[datetime] = mapped_column(default=utcnow)


class AmendmentState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    ACCEPTED_IN_PART = "accepted_in_part"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Amendment(Base):
    """A proposed change to paragraphs of a version, by an organisation, with a rationale."""

    __tablename__ = "amendment"
    __table_args__ = (Index("ix_amendment_version_state", "version_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("position_version.id", ondelete="CASCADE"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("round.id", ondelete="SET NULL"),
                                                 index=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    # The paragraph replaced (None: a new paragraph inserted after `insert_after_anchor`).
    paragraph_anchor: Mapped[str | None] = mapped_column(String(40))
    insert_after_anchor: Mapped[str | None] = mapped_column(String(40))
    original_text: Mapped[str] = mapped_column(Text, default="")
    proposed_text: Mapped[str] = mapped_column(Text)
    rationale: Mapped[str] = mapped_column(Text)
    state: Mapped[AmendmentState] = mapped_column(_enum(AmendmentState),
                                                  default=AmendmentState.PENDING)
    adopted_text: Mapped[str | None] = mapped_column(Text)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    applied_in_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("position_version.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
