"""Drafting as partner organisations do it (issue 21): consolidations of overlapping
amendments (a compromise text of the facilitator's own), organisation contributions
prepared in the organisation's own space, and the process's drafting settings."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.accounts import User
from consensus.models.base import Base, str_enum, utcnow
from consensus.models.organisations import Organisation


class Consolidation(Base):
    """A group of overlapping amendments settled with one compromise text.

    The compromise replaces the paragraphs `paragraph_anchor` … `end_anchor` of the
    version the amendments were written against (the union of their ranges), whose text
    then was `original_text`; every member amendment is accepted in part with it. Applied
    as one replacement, in the same step as the other decided amendments.
    """

    __tablename__ = "consolidation"
    __table_args__ = (CheckConstraint("reason <> ''", name="has_reason"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    position_id: Mapped[int] = mapped_column(
        ForeignKey("position.id", ondelete="CASCADE"), index=True
    )
    version_id: Mapped[int] = mapped_column(ForeignKey("position_version.id", ondelete="CASCADE"))
    paragraph_anchor: Mapped[str] = mapped_column(String(40))
    end_anchor: Mapped[str | None] = mapped_column(String(40))
    # True: the members all insert after `paragraph_anchor`; the compromise is inserted.
    insertion: Mapped[bool] = mapped_column(default=False)
    original_text: Mapped[str] = mapped_column(Text)
    compromise_text: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_in_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("position_version.id", ondelete="SET NULL")
    )

    members: Mapped[list[ConsolidationMember]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ConsolidationMember.amendment_id"
    )

    @property
    def amendment_ids(self) -> list[int]:
        return [m.amendment_id for m in self.members]


class ConsolidationMember(Base):
    """An amendment taken into a consolidation (an amendment is in at most one)."""

    __tablename__ = "consolidation_member"
    __table_args__ = (UniqueConstraint("amendment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consolidation_id: Mapped[int] = mapped_column(
        ForeignKey("consolidation.id", ondelete="CASCADE"), index=True
    )
    amendment_id: Mapped[int] = mapped_column(ForeignKey("amendment.id", ondelete="CASCADE"))


class DraftingSettings(Base):
    """How a process takes input. Without a row: individual contributions are allowed (as
    before issue 21); a facilitator can require that input comes only as organisation
    contributions, prepared and cleared inside each organisation."""

    __tablename__ = "drafting_settings"

    process_id: Mapped[int] = mapped_column(
        ForeignKey("process.id", ondelete="CASCADE"), primary_key=True
    )
    individual_contributions: Mapped[bool] = mapped_column(default=True)


class ContributionKind(enum.StrEnum):
    AMENDMENT = "amendment"
    COMMENT = "comment"


class ContributionState(enum.StrEnum):
    DRAFT = "draft"  # officials of the organisation work on it
    CLEARED = "cleared"  # an officer of the organisation cleared exactly this text
    SUBMITTED = "submitted"  # it is the organisation's amendment or comment now
    DISCARDED = "discarded"


class Contribution(Base):
    """An organisation's contribution in preparation: an amendment or a comment drafted
    by its officials in a space only that organisation sees, cleared by an officer of the
    organisation, then submitted once — as the organisation's (the people are in the
    audit trail and here)."""

    __tablename__ = "contribution"
    __table_args__ = (
        Index("ix_contribution_position_organisation", "position_id", "organisation_id"),
        CheckConstraint(
            "kind <> 'amendment' OR (paragraph_anchor IS NULL) <> (insert_after_anchor IS NULL)",
            name="amendment_replaces_or_inserts",
        ),
        CheckConstraint(
            "state NOT IN ('cleared', 'submitted') OR "
            "(cleared_by_id IS NOT NULL AND cleared_at IS NOT NULL)",
            name="cleared_before_submitted",
        ),
        CheckConstraint(
            "state <> 'submitted' OR amendment_id IS NOT NULL OR comment_id IS NOT NULL",
            name="submitted_has_result",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    position_id: Mapped[int] = mapped_column(ForeignKey("position.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("position_version.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    kind: Mapped[ContributionKind] = mapped_column(str_enum(ContributionKind))
    state: Mapped[ContributionState] = mapped_column(
        str_enum(ContributionState), default=ContributionState.DRAFT
    )
    paragraph_anchor: Mapped[str | None] = mapped_column(String(40))
    end_anchor: Mapped[str | None] = mapped_column(String(40))
    insert_after_anchor: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    rationale: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    cleared_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    cleared_at: Mapped[datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    submitted_at: Mapped[datetime | None]
    amendment_id: Mapped[int | None] = mapped_column(
        ForeignKey("amendment.id", ondelete="SET NULL"), unique=True
    )
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comment.id", ondelete="SET NULL"), unique=True
    )

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id], lazy="joined")
    updated_by: Mapped[User | None] = relationship(foreign_keys=[updated_by_id], lazy="joined")
    cleared_by: Mapped[User | None] = relationship(foreign_keys=[cleared_by_id], lazy="joined")
    notes: Mapped[list[ContributionNote]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ContributionNote.id"
    )

    @property
    def is_insertion(self) -> bool:
        return self.insert_after_anchor is not None


class ContributionNote(Base):
    """An internal comment on a contribution in preparation: only its organisation sees it."""

    __tablename__ = "contribution_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    contribution_id: Mapped[int] = mapped_column(
        ForeignKey("contribution.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship(lazy="joined")


class DispositionReview(Base):
    """The proposed disposition of a round sent to the contributing organisations before
    publication: they agree or contest until `respond_by`; the report is published at
    `publish_at` (not before `respond_by`) and records their feedback."""

    __tablename__ = "disposition_review"
    __table_args__ = (
        UniqueConstraint("round_id"),
        CheckConstraint("publish_at >= respond_by", name="published_after_feedback"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"))
    sent_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    respond_by: Mapped[datetime]
    publish_at: Mapped[datetime]
    # What the clock (`rounds tick`) did, once each: the reminder to the organisations
    # that had not answered, and the notice that the report is published.
    reminded_at: Mapped[datetime | None]
    announced_at: Mapped[datetime | None]

    items: Mapped[list[DispositionFeedback]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="DispositionFeedback.id"
    )


class FeedbackResponse(enum.StrEnum):
    AGREE = "agree"
    CONTEST = "contest"


class DispositionFeedback(Base):
    """One proposed decision as sent to the organisation (a snapshot: the decision and
    its reason then), and the organisation's answer."""

    __tablename__ = "disposition_feedback"
    __table_args__ = (
        UniqueConstraint("review_id", "amendment_id"),
        CheckConstraint("response IS NULL OR (responded_at IS NOT NULL)", name="answer_has_time"),
        CheckConstraint(
            "response IS NULL OR response <> 'contest' OR comment <> ''",
            name="contest_has_comment",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(
        ForeignKey("disposition_review.id", ondelete="CASCADE"), index=True
    )
    amendment_id: Mapped[int] = mapped_column(ForeignKey("amendment.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    proposed_state: Mapped[str] = mapped_column(String(20))
    proposed_reason: Mapped[str] = mapped_column(Text, default="")
    response: Mapped[FeedbackResponse | None] = mapped_column(str_enum(FeedbackResponse))
    comment: Mapped[str] = mapped_column(Text, default="")
    responded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    responded_at: Mapped[datetime | None]
