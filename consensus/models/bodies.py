"""Standing bodies (official and administrative tables, the Thorbecke table), their
meetings, agendas, decisions and minutes; the follow-up actions that decisions, outcomes and
letters create; and the sending of a process's letter with the addressee's reply.

A position is prepared at an official body, cleared there (a decision with the outcome
"cleared"), forwarded to the administrative body's next meeting (an agenda item that names
the decision it came from) and adopted there (a decision on that item).
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from consensus.models.accounts import User
from consensus.models.base import Base, str_enum, utcnow
from consensus.models.organisations import Organisation


class BodyLevel(enum.StrEnum):
    OFFICIAL = "official"  # ambtelijk: civil servants prepare
    ADMINISTRATIVE = "administrative"  # bestuurlijk: board members decide


class StandingBody(Base):
    """A table that meets: its member organisations each hold one seat (one voice)."""

    __tablename__ = "standing_body"
    __table_args__ = (
        CheckConstraint("slug <> ''", name="slug_not_empty"),
        CheckConstraint("name <> ''", name="name_not_empty"),
        CheckConstraint(
            "agenda_notice_days >= 0 AND agenda_notice_days <= 60", name="notice_days_range"
        ),
        CheckConstraint("prepares_for_id IS NULL OR prepares_for_id <> id", name="not_for_itself"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[BodyLevel] = mapped_column(str_enum(BodyLevel, 20))
    description: Mapped[str] = mapped_column(Text, default="")
    # An official body prepares for an administrative one.
    prepares_for_id: Mapped[int | None] = mapped_column(
        ForeignKey("standing_body.id", ondelete="SET NULL"), index=True
    )
    # The secretary facilitates: plans meetings, prepares agendas, drafts minutes.
    secretary_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    # The agenda goes to the members this many days before a meeting.
    agenda_notice_days: Mapped[int] = mapped_column(Integer, default=7)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Closed: kept with its whole history, read-only, no new meetings (never deleted).
    archived_at: Mapped[datetime | None]
    archived_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )

    prepares_for: Mapped[StandingBody | None] = relationship(
        remote_side="StandingBody.id", lazy="select"
    )
    secretary: Mapped[User | None] = relationship(
        foreign_keys=[secretary_id], lazy="joined", innerjoin=False
    )
    seats: Mapped[list[BodySeat]] = relationship(
        back_populates="body",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="BodySeat.id",
    )

    @property
    def organisation_ids(self) -> set[int]:
        return {seat.organisation_id for seat in self.seats}

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class BodySeat(Base):
    """One member organisation's seat: who holds it and who substitutes."""

    __tablename__ = "body_seat"
    __table_args__ = (
        UniqueConstraint("body_id", "organisation_id"),
        CheckConstraint(
            "seat_holder_id IS NULL OR substitute_id IS NULL OR seat_holder_id <> substitute_id",
            name="holder_is_not_substitute",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    body_id: Mapped[int] = mapped_column(ForeignKey("standing_body.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    seat_holder_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    substitute_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )

    body: Mapped[StandingBody] = relationship(back_populates="seats")
    organisation: Mapped[Organisation] = relationship(lazy="joined")
    seat_holder: Mapped[User | None] = relationship(foreign_keys=[seat_holder_id], lazy="joined")
    substitute: Mapped[User | None] = relationship(foreign_keys=[substitute_id], lazy="joined")


class MinutesState(enum.StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"


class Meeting(Base):
    """A meeting of a body: when, where, its agenda, its decisions list and its minutes.

    The agenda is visible to members once published; the decisions list and the minutes
    are drafted by the secretary and approved at the body's next meeting, then frozen."""

    __tablename__ = "meeting"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("title <> ''", name="title_not_empty"),
        CheckConstraint(
            "cancelled_at IS NULL OR cancel_reason <> ''", name="cancelled_with_reason"
        ),
        Index("ix_meeting_body_starts", "body_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    body_id: Mapped[int] = mapped_column(ForeignKey("standing_body.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    place: Mapped[str] = mapped_column(String(200), default="")
    video_url: Mapped[str] = mapped_column(String(500), default="")
    agenda_published_at: Mapped[datetime | None]
    agenda_published_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    minutes: Mapped[str] = mapped_column(Text, default="")
    minutes_state: Mapped[MinutesState] = mapped_column(
        str_enum(MinutesState, 20), default=MinutesState.DRAFT
    )
    minutes_approved_at: Mapped[datetime | None]
    minutes_approved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    # The meeting at which these minutes were approved (the body's next one).
    minutes_approved_in_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Cancelled: it stays on the body's page, marked, with the reason (never deleted).
    cancelled_at: Mapped[datetime | None]
    cancelled_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    cancel_reason: Mapped[str] = mapped_column(Text, default="")

    body: Mapped[StandingBody] = relationship(lazy="joined")
    items: Mapped[list[AgendaItem]] = relationship(
        back_populates="meeting",
        cascade="all, delete-orphan",
        lazy="select",
        order_by="AgendaItem.sequence",
    )
    decisions: Mapped[list[MeetingDecision]] = relationship(
        back_populates="meeting",
        cascade="all, delete-orphan",
        lazy="select",
        order_by="MeetingDecision.sequence",
    )

    @property
    def is_agenda_published(self) -> bool:
        return self.agenda_published_at is not None

    @property
    def minutes_approved(self) -> bool:
        return self.minutes_state == MinutesState.APPROVED

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None


class AgendaItemKind(enum.StrEnum):
    DECISION = "decision"  # ter besluitvorming
    DISCUSSION = "discussion"  # ter bespreking
    INFORMATION = "information"  # ter informatie


class AgendaItem(Base):
    """One item of an agenda; it may point at a process, a position, a round, a document."""

    __tablename__ = "agenda_item"
    __table_args__ = (
        UniqueConstraint("meeting_id", "sequence"),
        CheckConstraint("title <> ''", name="title_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[AgendaItemKind] = mapped_column(
        str_enum(AgendaItemKind, 20), default=AgendaItemKind.DISCUSSION
    )
    description: Mapped[str] = mapped_column(Text, default="")
    process_id: Mapped[int | None] = mapped_column(
        ForeignKey("process.id", ondelete="SET NULL"), index=True
    )
    position_id: Mapped[int | None] = mapped_column(
        ForeignKey("position.id", ondelete="SET NULL"), index=True
    )
    round_id: Mapped[int | None] = mapped_column(ForeignKey("round.id", ondelete="SET NULL"))
    document_title: Mapped[str] = mapped_column(String(200), default="")
    document_url: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    meeting: Mapped[Meeting] = relationship(back_populates="items")
    documents: Mapped[list[AgendaDocument]] = relationship(
        back_populates="item",
        cascade="all, delete-orphan",
        lazy="select",
        order_by="AgendaDocument.id",
    )


class AgendaDocument(Base):
    """A file uploaded to an agenda item (PDF, ODF, Office Open XML), kept in the database
    like the letter's reply: served only to whoever sees the meeting's agenda, always as
    an attachment with the type we determined, never the type the browser claimed."""

    __tablename__ = "agenda_document"
    __table_args__ = (
        CheckConstraint("filename <> ''", name="filename_not_empty"),
        CheckConstraint("size > 0", name="size_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("agenda_item.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200), default="")
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    uploaded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    item: Mapped[AgendaItem] = relationship(back_populates="documents")


class DecisionOutcome(enum.StrEnum):
    CLEARED = "cleared"  # official clearance: ready for the administrative body
    ADOPTED = "adopted"
    NOT_ADOPTED = "not_adopted"
    DEFERRED = "deferred"
    NOTED = "noted"  # any other decision of the list


class MeetingDecision(Base):
    """One line of a meeting's decisions list (besluitenlijst)."""

    __tablename__ = "meeting_decision"
    __table_args__ = (
        UniqueConstraint("meeting_id", "sequence"),
        CheckConstraint("text <> ''", name="text_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    agenda_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("agenda_item.id", ondelete="SET NULL"), index=True
    )
    outcome: Mapped[DecisionOutcome] = mapped_column(
        str_enum(DecisionOutcome, 20), default=DecisionOutcome.NOTED
    )
    text: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Forwarded to the administrative body's next meeting: the item it became there.
    forwarded_to_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("agenda_item.id", ondelete="SET NULL"), unique=True
    )
    forwarded_at: Mapped[datetime | None]
    forwarded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )

    meeting: Mapped[Meeting] = relationship(back_populates="decisions")
    agenda_item: Mapped[AgendaItem | None] = relationship(
        foreign_keys=[agenda_item_id], lazy="joined"
    )
    recorded_by: Mapped[User | None] = relationship(foreign_keys=[recorded_by_id], lazy="joined")


class ActionSource(enum.StrEnum):
    OUTCOME = "outcome"
    LETTER = "letter"
    DECISION = "decision"


class ActionStatus(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


FINISHED_STATUSES = (ActionStatus.DONE, ActionStatus.CANCELLED)


class FollowUpAction(Base):
    """What must happen after a decision, an outcome or a letter, and which organisation
    owns it."""

    __tablename__ = "follow_up_action"
    __table_args__ = (
        CheckConstraint("title <> ''", name="title_not_empty"),
        CheckConstraint("process_id IS NOT NULL OR body_id IS NOT NULL", name="has_context"),
        Index("ix_follow_up_action_status_due", "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[ActionStatus] = mapped_column(
        str_enum(ActionStatus, 20), default=ActionStatus.OPEN
    )
    source: Mapped[ActionSource] = mapped_column(str_enum(ActionSource, 20))
    process_id: Mapped[int | None] = mapped_column(
        ForeignKey("process.id", ondelete="CASCADE"), index=True
    )
    body_id: Mapped[int | None] = mapped_column(
        ForeignKey("standing_body.id", ondelete="CASCADE"), index=True
    )
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting_decision.id", ondelete="SET NULL"), index=True
    )
    # One of the process's themes (the strategy's priorities), for progress per theme.
    theme: Mapped[str] = mapped_column(String(60), default="")
    link_url: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # When the people who report on it were told it is overdue (once).
    overdue_notice_at: Mapped[datetime | None]

    owner: Mapped[Organisation] = relationship(lazy="joined")
    notes: Mapped[list[ActionNote]] = relationship(
        back_populates="action",
        cascade="all, delete-orphan",
        lazy="select",
        order_by="ActionNote.id",
    )

    def is_overdue(self, today: date) -> bool:
        return self.status not in FINISHED_STATUSES and self.due_on < today


class ActionNote(Base):
    """A progress note on an action; a change of status is kept with it."""

    __tablename__ = "follow_up_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey("follow_up_action.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ActionStatus] = mapped_column(str_enum(ActionStatus, 20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    action: Mapped[FollowUpAction] = relationship(back_populates="notes")
    author: Mapped[User | None] = relationship(lazy="joined")


class DispatchChannel(enum.StrEnum):
    EMAIL = "email"
    POST = "post"
    PORTAL = "portal"
    HAND = "hand"


class LetterDispatch(Base):
    """The signed letter went to its addressee (date, channel, reference); later the reply
    came back (date, summary, the document)."""

    __tablename__ = "letter_dispatch"
    __table_args__ = (
        CheckConstraint(
            "reply_received_on IS NULL OR reply_received_on >= sent_on",
            name="reply_after_sending",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(
        ForeignKey("process.id", ondelete="CASCADE"), index=True
    )
    position_id: Mapped[int | None] = mapped_column(ForeignKey("position.id", ondelete="SET NULL"))
    addressee: Mapped[str] = mapped_column(String(300))
    sent_on: Mapped[date] = mapped_column(Date)
    channel: Mapped[DispatchChannel] = mapped_column(str_enum(DispatchChannel, 20))
    reference: Mapped[str] = mapped_column(String(120), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    reply_received_on: Mapped[date | None] = mapped_column(Date)
    reply_summary: Mapped[str] = mapped_column(Text, default="")
    reply_reference: Mapped[str] = mapped_column(String(120), default="")
    reply_filename: Mapped[str] = mapped_column(String(200), default="")
    reply_content_type: Mapped[str] = mapped_column(String(100), default="")
    reply_document: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    reply_recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    reply_recorded_at: Mapped[datetime | None]

    @property
    def has_reply(self) -> bool:
        return self.reply_received_on is not None
