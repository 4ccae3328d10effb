"""Drafting as partner organisations do it (issue 21): consolidations of overlapping
amendments (a compromise text of the facilitator's own)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.base import Base, utcnow


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
