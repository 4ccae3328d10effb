"""Processes (trajecten) and their time-boxed rounds."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    event,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from consensus.models.accounts import User
from consensus.models.base import Base, str_enum, utcnow
from consensus.models.organisations import Organisation


class ProcessState(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    CONCLUDED = "concluded"
    WITHDRAWN = "withdrawn"


class DecisionRule(enum.StrEnum):
    CONSENSUS = "consensus"
    CONSENT = "consent"
    UNANIMITY = "unanimity"
    QUALIFIED_MAJORITY = "qualified_majority"


class Visibility(enum.StrEnum):
    PARTICIPANTS = "participants"
    PUBLISHED = "published"


class RoundType(enum.StrEnum):
    DRAFTING = "drafting"
    CONSULTATION = "consultation"
    CLEARANCE = "clearance"
    ENDORSEMENT = "endorsement"
    SIGNING = "signing"


class RoundState(enum.StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"


class Process(Base):
    """A facilitated trajectory towards one or more joint positions."""

    __tablename__ = "process"
    __table_args__ = (
        CheckConstraint("quorum >= 0", name="quorum_not_negative"),
        CheckConstraint(
            "qualified_share_percent IS NULL OR "
            "(qualified_share_percent > 0 AND qualified_share_percent <= 100)",
            name="share_is_percentage",
        ),
        CheckConstraint("slug <> ''", name="slug_not_empty"),
        # The round clock asks on every changing request for the earliest publication still
        # to come (services.processes.next_due_at): without this index a scan of every
        # process, ten years of them at scale 10 (0.75 ms a request, growing with history).
        Index(
            "ix_process_publication_due",
            "publish_at",
            sqlite_where=text("publish_at IS NOT NULL AND published_at IS NULL"),
            postgresql_where=text("publish_at IS NOT NULL AND published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[ProcessState] = mapped_column(
        str_enum(ProcessState), default=ProcessState.DRAFT, index=True
    )
    decision_rule: Mapped[DecisionRule] = mapped_column(
        str_enum(DecisionRule), default=DecisionRule.CONSENSUS
    )
    # Quorum counts organisations, never people.
    quorum: Mapped[int] = mapped_column(Integer, default=0)
    qualified_share_percent: Mapped[int | None] = mapped_column(Integer)
    hide_tally_until_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    require_clearance: Mapped[bool] = mapped_column(Boolean, default=False)
    visibility: Mapped[Visibility] = mapped_column(
        str_enum(Visibility), default=Visibility.PARTICIPANTS
    )
    # Embargo: the facilitator may schedule publication; published_at is when it happened.
    publish_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    concluded_at: Mapped[datetime | None]
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)

    # Loaded where shown (the process page, the list of processes loads them for all at once).
    themes: Mapped[list[ProcessTheme]] = relationship(
        back_populates="process",
        cascade="all, delete-orphan",
        lazy="select",
        order_by="ProcessTheme.name",
    )
    # Loaded on first use (a process page with 400 participants should not build 400
    # objects to answer "may this person see it?"): see participant_ids.
    participations: Mapped[list[Participation]] = relationship(
        back_populates="process", cascade="all, delete-orphan", lazy="select"
    )
    facilitators: Mapped[list[ProcessFacilitator]] = relationship(
        back_populates="process", cascade="all, delete-orphan", lazy="selectin"
    )
    rounds: Mapped[list[Round]] = relationship(
        back_populates="process",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="Round.sequence",
    )

    @property
    def is_published(self) -> bool:
        return self.visibility == Visibility.PUBLISHED and self.published_at is not None

    @property
    def current_participations(self) -> list[Participation]:
        return sorted(
            (p for p in self.participations if p.removed_at is None),
            key=lambda p: p.organisation.name,
        )

    @property
    def participant_ids(self) -> set[int]:
        """The current participants' organisation ids.

        From the loaded participations when they are loaded; otherwise one query for the
        ids alone, remembered on the instance until its participations change or the
        instance is expired (commit, refresh). `prime_participant_ids` fills it for a list.
        """
        if "participations" in self.__dict__:
            return {p.organisation_id for p in self.participations if p.removed_at is None}
        memo: set[int] | None = self.__dict__.get("_participant_ids")
        if memo is None:
            memo = _query_participant_ids([self.id]).get(self.id, set())
            self.__dict__["_participant_ids"] = memo
        return set(memo)

    def participating(self, organisation_ids: Iterable[int]) -> set[int]:
        """Which of these organisations take part now.

        From participant_ids when those are at hand; otherwise one query for just these
        ids, remembered like participant_ids. A changing request asks only about the
        viewer's own few organisations: reading all 400 ids of a national process there
        took SQLite's write lock for nothing (issue 9: stance POSTs).
        """
        wanted = set(organisation_ids)
        if "participations" in self.__dict__ or "_participant_ids" in self.__dict__:
            return wanted & self.participant_ids
        known: dict[int, bool] = self.__dict__.setdefault("_participating", {})
        missing = wanted - known.keys()
        if missing:
            found = _query_participating(self.id, missing)
            known.update((organisation_id, organisation_id in found) for organisation_id in missing)
        return {organisation_id for organisation_id in wanted if known[organisation_id]}

    def participates(self, organisation_id: int) -> bool:
        return bool(self.participating((organisation_id,)))

    def remember_participant_ids(self, ids: Iterable[int]) -> None:
        """Use these ids (read elsewhere, e.g. from a cache of this state of the data) until
        the participations change or the instance is expired."""
        self.__dict__["_participant_ids"] = set(ids)

    @staticmethod
    def prime_participant_ids(processes: list[Process]) -> None:
        """Answer participant_ids for many processes with one query (lists of processes)."""
        wanted = [p for p in processes if "participations" not in p.__dict__]
        if not wanted:
            return
        found = _query_participant_ids([p.id for p in wanted])
        for process in wanted:
            process.remember_participant_ids(found.get(process.id, ()))

    @property
    def facilitator_ids(self) -> set[int]:
        return {f.user_id for f in self.facilitators}

    def open_round(self) -> Round | None:
        return next((r for r in self.rounds if r.state == RoundState.OPEN), None)


class ProcessTheme(Base):
    __tablename__ = "process_theme"
    __table_args__ = (UniqueConstraint("process_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("process.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60), index=True)

    process: Mapped[Process] = relationship(back_populates="themes")


class Participation(Base):
    """An organisation invited into a process. Removal keeps the row (with the reason)."""

    __tablename__ = "participation"
    __table_args__ = (UniqueConstraint("process_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("process.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), index=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")

    process: Mapped[Process] = relationship(back_populates="participations")
    organisation: Mapped[Organisation] = relationship(lazy="joined")


class ProcessFacilitator(Base):
    __tablename__ = "process_facilitator"

    process_id: Mapped[int] = mapped_column(
        ForeignKey("process.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True, index=True
    )

    process: Mapped[Process] = relationship(back_populates="facilitators")
    user: Mapped[User] = relationship(lazy="joined")


class Round(Base):
    """A time-boxed step of a process. At most one round of a process is open at a time."""

    __tablename__ = "round"
    __table_args__ = (
        UniqueConstraint("process_id", "sequence"),
        CheckConstraint("closes_at > opens_at", name="closes_after_opening"),
        Index(
            "uq_round_one_open_per_process",
            "process_id",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
        Index("ix_round_state_times", "state", "opens_at", "closes_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("process.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[RoundType] = mapped_column(str_enum(RoundType))
    title: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    state: Mapped[RoundState] = mapped_column(str_enum(RoundState), default=RoundState.SCHEDULED)
    # The version this round is about (consultation, clearance, endorsement, signing).
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("position_version.id", ondelete="RESTRICT"), index=True
    )
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    process: Mapped[Process] = relationship(back_populates="rounds")
    # Loaded where shown (the round page; the process page loads them for all its rounds).
    extensions: Mapped[list[DeadlineExtension]] = relationship(
        back_populates="round",
        cascade="all, delete-orphan",
        lazy="select",
        order_by="DeadlineExtension.id",
    )

    def is_open_at(self, moment: datetime) -> bool:
        """Open in the database *and* before its deadline: late forms are refused."""
        return self.state == RoundState.OPEN and moment < self.closes_at


class DeadlineExtension(Base):
    __tablename__ = "deadline_extension"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    previous_closes_at: Mapped[datetime]
    new_closes_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    extended_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    extended_at: Mapped[datetime] = mapped_column(default=utcnow)

    round: Mapped[Round] = relationship(back_populates="extensions")


class RoundCompletion(Base):
    """An organisation says "our input is complete" for a drafting or consultation round."""

    __tablename__ = "round_completion"
    __table_args__ = (UniqueConstraint("round_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    marked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notice(Base):
    """An in-app message for one person, e.g. a facilitator's reminder."""

    __tablename__ = "notice"
    __table_args__ = (
        Index("ix_notice_user_unread", "user_id", "read_at"),
        Index("ix_notice_digest", "digest", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    process_id: Mapped[int | None] = mapped_column(ForeignKey("process.id", ondelete="CASCADE"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE")
    )
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # Written by consensus.notifications: the kind of notification, the page it is about
    # (a path under the base URL) and, for a daily digest, "waiting" until it went out.
    kind: Mapped[str | None] = mapped_column(String(40))
    link: Mapped[str | None] = mapped_column(String(500))
    digest: Mapped[str | None] = mapped_column(String(10))


@functools.cache
def _participant_ids_statement() -> Select[tuple[int, int]]:
    """Built once: every page of a process asks, and a reused statement keeps its cache key."""
    return select(Participation.process_id, Participation.organisation_id).where(
        Participation.process_id.in_(bindparam("process_ids", expanding=True)),
        Participation.removed_at.is_(None),
    )


@functools.cache
def _participating_statement() -> Select[tuple[int]]:
    return select(Participation.organisation_id).where(
        Participation.process_id == bindparam("process_id"),
        Participation.organisation_id.in_(bindparam("organisation_ids", expanding=True)),
        Participation.removed_at.is_(None),
    )


def _rows(statement: Select[Any], parameters: dict[str, Any]) -> Any:
    """Plain rows through the session's connection (hundreds of pairs: the ORM's result
    machinery cost twice the query); pending changes are flushed first, as an ORM query
    would have done."""
    from consensus.extensions import db

    session = db.session
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()
    return session.connection().execute(statement, parameters)


def _query_participant_ids(process_ids: list[int]) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for process_id, organisation_id in _rows(
        _participant_ids_statement(), {"process_ids": process_ids}
    ):
        found.setdefault(process_id, set()).add(organisation_id)
    return found


def _query_participating(process_id: int, organisation_ids: set[int]) -> set[int]:
    parameters = {"process_id": process_id, "organisation_ids": sorted(organisation_ids)}
    return {row[0] for row in _rows(_participating_statement(), parameters)}


def _forget_participant_ids(process: Process | None) -> None:
    if process is not None:
        process.__dict__.pop("_participant_ids", None)
        process.__dict__.pop("_participating", None)


@event.listens_for(Process.participations, "append", propagate=True)
def _participation_added(process: Process, *_: object) -> None:
    _forget_participant_ids(process)


@event.listens_for(Process.participations, "remove", propagate=True)
def _participation_removed(process: Process, *_: object) -> None:
    _forget_participant_ids(process)


@event.listens_for(Participation.removed_at, "set", propagate=True)
def _participation_ended(participation: Participation, *_: object) -> None:
    # The process may not be loaded on the participation: find it in the session by its id.
    from sqlalchemy.orm import object_session
    from sqlalchemy.orm.util import identity_key

    _forget_participant_ids(participation.__dict__.get("process"))
    session = object_session(participation)
    if session is not None and participation.process_id is not None:
        found = session.identity_map.get(identity_key(Process, participation.process_id))
        _forget_participant_ids(found if isinstance(found, Process) else None)


@event.listens_for(Process, "expire", propagate=True)
@event.listens_for(Process, "refresh", propagate=True)
def _process_reloaded(process: Process, *_: object) -> None:
    _forget_participant_ids(process)
