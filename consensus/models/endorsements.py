"""Official clearance, delegated mandates, stances (endorsements) and fixed outcomes.

Stances and clearances are never overwritten: a change inserts a new row and marks the
previous one superseded. A partial unique index keeps at most one *current* row per
organisation and round, so two people of one organisation acting at the same moment can
never both win.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.accounts import User
from consensus.models.base import Base, str_enum, utcnow
from consensus.models.organisations import Organisation
from consensus.models.positions import Version


class StanceKind(enum.StrEnum):
    ENDORSE = "endorse"
    ENDORSE_WITH_RESERVATIONS = "endorse_with_reservations"
    ABSTAIN = "abstain"
    OBJECT = "object"


class ClearanceDecision(enum.StrEnum):
    CLEARED = "cleared"
    NOT_CLEARED = "not_cleared"


class Delegation(Base):
    """A representative lends the organisation's mandate to another member for a period.

    It counts only while not revoked, inside [valid_from, valid_until), and while the
    delegator still holds a representative membership: a mandate cannot outlive its source.
    """

    __tablename__ = "delegation"
    __table_args__ = (
        CheckConstraint("valid_until > valid_from", name="valid_period"),
        CheckConstraint("delegator_id <> delegate_id", name="not_to_self"),
        Index("ix_delegation_delegate_org", "delegate_id", "organisation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    delegator_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    delegate_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    delegator: Mapped[User] = relationship(foreign_keys=[delegator_id], lazy="joined")
    delegate: Mapped[User] = relationship(foreign_keys=[delegate_id], lazy="joined")

    def is_active_at(self, moment: datetime) -> bool:
        """Within its period and not revoked (the delegator's own mandate is checked apart)."""
        return self.revoked_at is None and self.valid_from <= moment < self.valid_until


class Clearance(Base):
    """An official's clearance (ambtelijk akkoord) of one version for their organisation."""

    __tablename__ = "clearance"
    __table_args__ = (
        Index(
            "uq_clearance_one_current",
            "round_id",
            "organisation_id",
            unique=True,
            sqlite_where=text("superseded_at IS NULL"),
            postgresql_where=text("superseded_at IS NULL"),
        ),
        CheckConstraint(
            "decision = 'cleared' OR length(trim(remarks)) > 0", name="remarks_when_not_cleared"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    version_id: Mapped[int] = mapped_column(
        ForeignKey("position_version.id", ondelete="RESTRICT"), index=True
    )
    decision: Mapped[ClearanceDecision] = mapped_column(str_enum(ClearanceDecision))
    remarks: Mapped[str] = mapped_column(Text, default="")
    cleared_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    cleared_by_name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    superseded_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    version: Mapped[Version] = relationship(lazy="joined")


class Stance(Base):
    """An organisation's stance on one exact version, cast under a mandate.

    Names are kept as they were when the stance was cast, so the public board never
    changes when someone later edits their profile.
    """

    __tablename__ = "stance"
    __table_args__ = (
        Index(
            "uq_stance_one_current",
            "round_id",
            "organisation_id",
            unique=True,
            sqlite_where=text("superseded_at IS NULL"),
            postgresql_where=text("superseded_at IS NULL"),
        ),
        CheckConstraint(
            "kind NOT IN ('endorse_with_reservations', 'object') OR length(trim(text)) > 0",
            name="text_when_required",
        ),
        Index("ix_stance_round_cast", "round_id", "cast_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    version_id: Mapped[int] = mapped_column(
        ForeignKey("position_version.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[StanceKind] = mapped_column(str_enum(StanceKind))
    # The reservation (endorse with reservations) or the reason (object); optional otherwise.
    text: Mapped[str] = mapped_column(Text, default="")
    cast_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    cast_by_name: Mapped[str] = mapped_column(String(120))
    cast_by_title: Mapped[str] = mapped_column(String(200), default="")
    # Set when cast by a substitute: the delegation, and whom they stood in for.
    delegation_id: Mapped[int | None] = mapped_column(
        ForeignKey("delegation.id", ondelete="RESTRICT")
    )
    substitute_for_name: Mapped[str | None] = mapped_column(String(120))
    cast_at: Mapped[datetime] = mapped_column(default=utcnow)
    superseded_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    version: Mapped[Version] = relationship(lazy="joined")

    @property
    def is_current(self) -> bool:
        return self.superseded_at is None


class Outcome(Base):
    """The result of an endorsement round, fixed when it closes; the numbers never change.

    The rule is copied in, so the outcome still explains itself if the process's settings
    are ever edited. Only the statement and review date are written afterwards.
    """

    __tablename__ = "outcome"
    __table_args__ = (
        CheckConstraint(
            "endorsed >= 0 AND abstained >= 0 AND objected >= 0 AND no_response >= 0",
            name="counts_not_negative",
        ),
        CheckConstraint(
            "endorsed + abstained + objected + no_response = participants",
            name="counts_add_up",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(
        ForeignKey("process.id", ondelete="CASCADE"), index=True
    )
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), unique=True)
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("position_version.id", ondelete="RESTRICT")
    )
    decision_rule: Mapped[str] = mapped_column(String(30))
    quorum: Mapped[int] = mapped_column(Integer)
    qualified_share_percent: Mapped[int | None] = mapped_column(Integer)
    participants: Mapped[int] = mapped_column(Integer)
    endorsed: Mapped[int] = mapped_column(Integer)
    with_reservations: Mapped[int] = mapped_column(Integer, default=0)
    abstained: Mapped[int] = mapped_column(Integer)
    objected: Mapped[int] = mapped_column(Integer)
    no_response: Mapped[int] = mapped_column(Integer)
    adopted: Mapped[bool] = mapped_column(Boolean)
    # Why not adopted: decision_rules.Reason values, comma-separated ("" when adopted).
    reasons: Mapped[str] = mapped_column(String(200), default="")
    fixed_at: Mapped[datetime] = mapped_column(default=utcnow)
    checkpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkpoint.id", ondelete="SET NULL")
    )
    statement: Mapped[str] = mapped_column(Text, default="")
    review_on: Mapped[date | None]
    statement_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    statement_at: Mapped[datetime | None]

    version: Mapped[Version | None] = relationship(lazy="joined")
