"""Positions (standpunten), their immutable hashed versions, comments and amendments."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.accounts import User
from consensus.models.base import Base, str_enum, utcnow
from consensus.models.organisations import Organisation


class Position(Base):
    """A text the organisations want to adopt jointly, often a letter."""

    __tablename__ = "position"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(
        ForeignKey("process.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    # Letter metadata.
    subject: Mapped[str] = mapped_column(String(300), default="")
    addressee: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str] = mapped_column(String(100), default="")
    letter_date: Mapped[date | None]
    reference: Mapped[str] = mapped_column(String(100), default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[Version]] = relationship(
        back_populates="position",
        order_by="Version.number",
        lazy="selectin",
        cascade="all, delete-orphan",
    )

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
    # NO ACTION (checked at the end of a statement), not RESTRICT: a position's versions
    # refer to each other and must be deletable together when the position is.
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("position_version.id"))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    position: Mapped[Position] = relationship(back_populates="versions")
    paragraphs: Mapped[list[VersionParagraph]] = relationship(
        order_by="VersionParagraph.ordinal", lazy="selectin", cascade="all, delete-orphan"
    )
    created_by: Mapped[User | None] = relationship(lazy="joined")

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    def paragraph(self, anchor: str) -> VersionParagraph | None:
        return next((p for p in self.paragraphs if p.anchor == anchor), None)


class VersionParagraph(Base):
    """One block of a version with its stable anchor (kept across unrelated edits)."""

    __tablename__ = "version_paragraph"
    __table_args__ = (
        UniqueConstraint("version_id", "ordinal"),
        UniqueConstraint("version_id", "anchor"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("position_version.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    anchor: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)


class Comment(Base):
    """A threaded comment on a version, optionally on one paragraph."""

    __tablename__ = "comment"
    __table_args__ = (Index("ix_comment_version_anchor", "version_id", "paragraph_anchor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("position_version.id", ondelete="CASCADE"))
    paragraph_anchor: Mapped[str | None] = mapped_column(String(40))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("comment.id", ondelete="CASCADE"), index=True
    )
    round_id: Mapped[int | None] = mapped_column(ForeignKey("round.id", ondelete="SET NULL"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    author_role: Mapped[str] = mapped_column(String(20), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    deleted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )

    author: Mapped[User | None] = relationship(foreign_keys=[author_id], lazy="raise")
    organisation: Mapped[Organisation | None] = relationship(lazy="raise")
    revisions: Mapped[list[CommentRevision]] = relationship(
        order_by="CommentRevision.id", lazy="raise", cascade="all, delete-orphan"
    )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class CommentRevision(Base):
    """The text a comment had before an edit (edits keep their history)."""

    __tablename__ = "comment_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(
        ForeignKey("comment.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    replaced_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "edit" (the text before an edit) or "removal" (the text when it was removed).
    reason: Mapped[str] = mapped_column(String(20), default="edit")


class AmendmentState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    ACCEPTED_IN_PART = "accepted_in_part"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Amendment(Base):
    """A proposed change to paragraphs of a version, by an organisation, with a rationale.

    It replaces the paragraphs from `paragraph_anchor` through `end_anchor` (the same one
    when None) with `proposed_text` (empty: remove them), or inserts `proposed_text` as
    new paragraphs after `insert_after_anchor`. `original_text` is the text it was written
    against; when the facilitator re-bases it onto a later version, `rebased_on_version_id`
    says which, and `original_text` is that version's text.
    """

    __tablename__ = "amendment"
    __table_args__ = (
        Index("ix_amendment_version_state", "version_id", "state"),
        UniqueConstraint("position_id", "number"),
        CheckConstraint(
            "(paragraph_anchor IS NULL) <> (insert_after_anchor IS NULL)",
            name="replaces_or_inserts",
        ),
        CheckConstraint(
            "state NOT IN ('accepted', 'accepted_in_part', 'rejected') OR "
            "(decision_reason IS NOT NULL AND decision_reason <> '' AND decided_at IS NOT NULL)",
            name="decision_has_reason",
        ),
        CheckConstraint(
            "state NOT IN ('accepted', 'accepted_in_part') OR adopted_text IS NOT NULL",
            name="acceptance_has_text",
        ),
        CheckConstraint(
            "applied_in_version_id IS NULL OR state IN ('accepted', 'accepted_in_part')",
            name="only_accepted_are_applied",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    position_id: Mapped[int] = mapped_column(
        ForeignKey("position.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[int] = mapped_column(ForeignKey("position_version.id", ondelete="CASCADE"))
    round_id: Mapped[int | None] = mapped_column(
        ForeignKey("round.id", ondelete="SET NULL"), index=True
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    # The paragraphs replaced (None: new paragraphs inserted after `insert_after_anchor`).
    paragraph_anchor: Mapped[str | None] = mapped_column(String(40))
    end_anchor: Mapped[str | None] = mapped_column(String(40))
    insert_after_anchor: Mapped[str | None] = mapped_column(String(40))
    original_text: Mapped[str] = mapped_column(Text, default="")
    proposed_text: Mapped[str] = mapped_column(Text)
    rationale: Mapped[str] = mapped_column(Text)
    state: Mapped[AmendmentState] = mapped_column(
        str_enum(AmendmentState), default=AmendmentState.PENDING
    )
    adopted_text: Mapped[str | None] = mapped_column(Text)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    rebased_on_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("position_version.id", ondelete="SET NULL")
    )
    applied_in_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("position_version.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship(lazy="raise")
    author: Mapped[User | None] = relationship(foreign_keys=[author_id], lazy="raise")
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id], lazy="raise")

    @property
    def is_insertion(self) -> bool:
        return self.insert_after_anchor is not None

    @property
    def is_accepted(self) -> bool:
        return self.state in (AmendmentState.ACCEPTED, AmendmentState.ACCEPTED_IN_PART)

    @property
    def base_version_id(self) -> int:
        """The version whose text `original_text` is (the proposal's, or the re-base's)."""
        return self.rebased_on_version_id or self.version_id


@event.listens_for(Version, "before_update")
@event.listens_for(VersionParagraph, "before_update")
def _versions_are_immutable(mapper: object, connection: object, target: object) -> None:
    """A version is a fixed text with a fixed hash; endorsements and signatures point at it.

    Any attempt to change one in the ORM fails loudly instead of silently moving what
    organisations agreed to.
    """
    raise ValueError(f"{type(target).__name__} rows are immutable")
