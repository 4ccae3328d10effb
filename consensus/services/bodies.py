"""Standing bodies and their meetings, forwarding between the two layers, follow-up actions,
and the letter's dispatch and reply: the use cases.

Every function that changes state records an audit event in the caller's transaction and
flushes; none commits (the web layer's `usecase.run` does). Who may call them is the rule
book's business (consensus/permissions/bodies.py); the rules of the domain (a meeting ends
after it starts, approved minutes are frozen, minutes are approved at the next meeting, a
decision is forwarded once) are enforced here.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Date,
    Integer,
    Select,
    String,
    cast,
    func,
    literal,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import aliased

from consensus import audit, events
from consensus.domain.timeutil import local_day
from consensus.domain.visible import require_visible, visible_line
from consensus.extensions import db
from consensus.models import (
    ActionNote,
    ActionSource,
    ActionStatus,
    AgendaDocument,
    AgendaItem,
    AgendaItemKind,
    BodyLevel,
    BodySeat,
    DecisionOutcome,
    DispatchChannel,
    FollowUpAction,
    LetterDispatch,
    Meeting,
    MeetingDecision,
    MinutesState,
    Organisation,
    Position,
    Process,
    Round,
    StandingBody,
    User,
    utcnow,
)
from consensus.models.base import UTCDateTime
from consensus.models.bodies import FINISHED_STATUSES
from consensus.services.errors import Conflict, DomainError

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?$")
URL_RE = re.compile(r"^https://[^\s<>\"']+$")
REPLY_MAX_BYTES = 5 * 1024 * 1024
REPLY_TYPES = {".pdf": "application/pdf"}
DOCUMENT_MAX_BYTES = 10 * 1024 * 1024
# What an agenda item's document may be: the extension names the type, and the content must
# be that type (a PDF header; an ODF package's mimetype entry; an OOXML package's part).
DOCUMENT_TYPES = {
    ".pdf": "application/pdf",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_OOXML_PARTS = {".docx": "word/", ".xlsx": "xl/", ".pptx": "ppt/"}


def _text(value: str | None, *, field: str) -> str:
    """A longer text (minutes, a description): NFC, CRLF as LF, no hidden characters."""
    normalised = unicodedata.normalize("NFC", (value or "").replace("\r\n", "\n")).strip()
    return require_visible(normalised, field=field)


def _url(value: str | None, *, field: str) -> str:
    url = (value or "").strip()
    if url and not URL_RE.match(url):
        raise DomainError(str(_l("Enter an address that starts with https://.")), field=field)
    return url


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """What an edit changes, field by field ([before, after]), for its audit event."""
    return {k: [before[k], after[k]] for k in before if before[k] != after[k]}


def _next_sequence(column: Any, meeting_column: Any, meeting_id: int) -> int:
    """The next number of a meeting's numbered list (agenda items, decisions)."""
    last = db.session.execute(
        select(func.max(column)).where(meeting_column == meeting_id)
    ).scalar_one()
    return (last or 0) + 1


def _not_in_future(day: date, *, field: str) -> date:
    if day > local_day(utcnow()):
        raise DomainError(str(_l("The date cannot be in the future.")), field=field)
    return day


def _safe_filename(filename: str, *, default: str, extension: str) -> str:
    """A file name to send back in Content-Disposition: ASCII letters, digits, dot, dash
    and underscore only, ending in its type's extension."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", filename or default).strip("-.")[:150]
    if not name.lower().endswith(extension):
        name = f"{name or default.rsplit('.', 1)[0]}{extension}"
    return name


def _file_type(content: bytes, extension: str, allowed: dict[str, str]) -> str | None:
    """The content type of an upload, if its content is what its extension says and that is
    allowed; None otherwise. Packages are only listed, never unpacked."""
    content_type = allowed.get(extension)
    if content_type is None:
        return None
    if extension == ".pdf":
        return content_type if content.startswith(b"%PDF-") else None
    if not content.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as package:
            names = package.namelist()
            if extension in _OOXML_PARTS:
                part = _OOXML_PARTS[extension]
                ok = "[Content_Types].xml" in names and any(n.startswith(part) for n in names)
                return content_type if ok else None
            info = package.getinfo("mimetype") if "mimetype" in names else None
            if info is None or info.file_size > 200:
                return None
            return content_type if package.read(info).strip() == content_type.encode() else None
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError):
        return None


def _require_active_body(body: StandingBody) -> None:
    if body.is_archived:
        raise Conflict(str(_l("This body has been archived: it is kept as it is.")))


def _require_open_meeting(meeting: Meeting) -> None:
    """Nothing changes at an archived body or a cancelled meeting."""
    _require_active_body(meeting.body)
    if meeting.is_cancelled:
        raise Conflict(str(_l("This meeting has been cancelled.")))


# --- Standing bodies --------------------------------------------------------------------------


def _check_slug(slug: str, *, exclude_id: int | None = None) -> str:
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise DomainError(
            str(_l("Use lower-case letters, digits and hyphens (at most 60).")), field="slug"
        )
    existing = db.session.execute(
        select(StandingBody.id).where(StandingBody.slug == slug)
    ).scalar_one_or_none()
    if existing is not None and existing != exclude_id:
        raise Conflict(str(_l("Another body already uses this short address.")), field="slug")
    return slug


def _check_prepares_for(body_id: int | None, level: BodyLevel, target: StandingBody | None) -> None:
    if target is None:
        return
    if level != BodyLevel.OFFICIAL:
        raise DomainError(
            str(_l("Only an official body prepares for another body.")), field="prepares_for"
        )
    if target.level != BodyLevel.ADMINISTRATIVE:
        raise DomainError(
            str(_l("An official body prepares for an administrative body.")),
            field="prepares_for",
        )
    if body_id is not None and target.id == body_id:
        raise DomainError(str(_l("A body cannot prepare for itself.")), field="prepares_for")


def create_body(
    *,
    actor: User,
    name: str,
    slug: str,
    level: BodyLevel,
    description: str = "",
    prepares_for: StandingBody | None = None,
    secretary: User | None = None,
    agenda_notice_days: int = 7,
) -> StandingBody:
    """An administrator sets up a standing body (its seats are added next)."""
    level = BodyLevel(level)
    _check_prepares_for(None, level, prepares_for)
    if not 0 <= agenda_notice_days <= 60:
        raise DomainError(str(_l("Between 0 and 60 days.")), field="agenda_notice_days")
    body = StandingBody(
        name=visible_line(name, field="name"),
        slug=_check_slug(slug),
        level=level,
        description=_text(description, field="description"),
        prepares_for_id=prepares_for.id if prepares_for else None,
        secretary_id=secretary.id if secretary else None,
        agenda_notice_days=agenda_notice_days,
    )
    db.session.add(body)
    db.session.flush()
    audit.record(
        "body.created",
        actor=actor,
        object_type="standing_body",
        object_id=body.id,
        payload={
            "name": body.name,
            "slug": body.slug,
            "level": level.value,
            "prepares_for": body.prepares_for_id,
            "secretary": body.secretary_id,
            "agenda_notice_days": agenda_notice_days,
        },
    )
    return body


def update_body(
    body: StandingBody,
    *,
    actor: User,
    name: str,
    level: BodyLevel,
    description: str,
    prepares_for: StandingBody | None,
    secretary: User | None,
    agenda_notice_days: int,
) -> StandingBody:
    _require_active_body(body)
    level = BodyLevel(level)
    _check_prepares_for(body.id, level, prepares_for)
    if not 0 <= agenda_notice_days <= 60:
        raise DomainError(str(_l("Between 0 and 60 days.")), field="agenda_notice_days")
    before = {
        "name": body.name,
        "level": body.level.value,
        "description": body.description,
        "prepares_for": body.prepares_for_id,
        "secretary": body.secretary_id,
        "agenda_notice_days": body.agenda_notice_days,
    }
    after = {
        "name": visible_line(name, field="name"),
        "level": level.value,
        "description": _text(description, field="description"),
        "prepares_for": prepares_for.id if prepares_for else None,
        "secretary": secretary.id if secretary else None,
        "agenda_notice_days": agenda_notice_days,
    }
    changes = _changes(before, after)
    if not changes:
        return body
    body.name = after["name"]  # type: ignore[assignment]
    body.level = level
    body.description = after["description"]  # type: ignore[assignment]
    body.prepares_for_id = after["prepares_for"]  # type: ignore[assignment]
    body.secretary_id = after["secretary"]  # type: ignore[assignment]
    body.agenda_notice_days = agenda_notice_days
    audit.record(
        "body.updated",
        actor=actor,
        object_type="standing_body",
        object_id=body.id,
        payload={"changes": changes},
    )
    db.session.flush()
    return body


def set_seat(
    body: StandingBody,
    *,
    actor: User,
    organisation: Organisation,
    seat_holder: User | None,
    substitute: User | None,
) -> BodySeat:
    """Give an organisation its seat, or change who holds it and who substitutes."""
    _require_active_body(body)
    if seat_holder is not None and substitute is not None and seat_holder.id == substitute.id:
        raise DomainError(
            str(_l("The substitute must be someone other than the seat holder.")),
            field="substitute_id",
        )
    seat = next((s for s in body.seats if s.organisation_id == organisation.id), None)
    created = seat is None
    if seat is None:
        seat = BodySeat(organisation_id=organisation.id)
        body.seats.append(seat)
    seat.seat_holder_id = seat_holder.id if seat_holder else None
    seat.substitute_id = substitute.id if substitute else None
    db.session.flush()
    audit.record(
        "body.seat_added" if created else "body.seat_changed",
        actor=actor,
        object_type="standing_body",
        object_id=body.id,
        organisation_id=organisation.id,
        payload={
            "organisation": organisation.slug,
            "seat_holder": seat.seat_holder_id,
            "substitute": seat.substitute_id,
        },
    )
    return seat


def remove_seat(body: StandingBody, seat: BodySeat, *, actor: User) -> None:
    _require_active_body(body)
    organisation_id = seat.organisation_id
    body.seats.remove(seat)
    db.session.flush()
    audit.record(
        "body.seat_removed",
        actor=actor,
        object_type="standing_body",
        object_id=body.id,
        organisation_id=organisation_id,
        payload={},
    )


def bodies(ids: Iterable[int]) -> list[StandingBody]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    return list(
        db.session.execute(
            select(StandingBody).where(StandingBody.id.in_(wanted)).order_by(StandingBody.name)
        )
        .unique()
        .scalars()
    )


# --- Meetings ---------------------------------------------------------------------------------


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise DomainError(str(_l("The end must be after the start.")), field="ends_at")


def plan_meeting(
    body: StandingBody,
    *,
    actor: User,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    place: str = "",
    video_url: str = "",
) -> Meeting:
    """The secretary plans a meeting: when and where (a place, a video link, or both)."""
    _require_active_body(body)
    _check_times(starts_at, ends_at)
    meeting = Meeting(
        body_id=body.id,
        title=visible_line(title, field="title"),
        starts_at=starts_at,
        ends_at=ends_at,
        place=visible_line(place, field="place"),
        video_url=_url(video_url, field="video_url"),
    )
    if not meeting.title:
        raise DomainError(str(_l("Enter a title.")), field="title")
    db.session.add(meeting)
    db.session.flush()
    audit.record(
        "meeting.planned",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        payload={
            "body": body.slug,
            "title": meeting.title,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
            "place": meeting.place,
            "video_url": meeting.video_url,
        },
    )
    return meeting


def update_meeting(
    meeting: Meeting,
    *,
    actor: User,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    place: str,
    video_url: str,
) -> Meeting:
    _require_open_meeting(meeting)
    _check_times(starts_at, ends_at)
    before = {
        "title": meeting.title,
        "starts_at": meeting.starts_at.isoformat(),
        "ends_at": meeting.ends_at.isoformat(),
        "place": meeting.place,
        "video_url": meeting.video_url,
    }
    after = {
        "title": visible_line(title, field="title"),
        "starts_at": starts_at.isoformat(),
        "ends_at": ends_at.isoformat(),
        "place": visible_line(place, field="place"),
        "video_url": _url(video_url, field="video_url"),
    }
    changes = _changes(before, after)
    if not changes:
        return meeting
    meeting.title = after["title"]
    meeting.starts_at = starts_at
    meeting.ends_at = ends_at
    meeting.place = after["place"]
    meeting.video_url = after["video_url"]
    audit.record(
        "meeting.updated",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        payload={"changes": changes},
    )
    db.session.flush()
    return meeting


def agenda_due_at(meeting: Meeting) -> datetime:
    """The agenda goes to the members this long before the meeting."""
    return meeting.starts_at - timedelta(days=meeting.body.agenda_notice_days)


# The clock publishes on its first tick after the moment; within this margin that is on time.
LATE_AFTER = timedelta(hours=1)


def published_late(meeting: Meeting) -> bool:
    """The agenda went out later than the body agreed (shown on the meeting page)."""
    published = meeting.agenda_published_at
    return published is not None and published > agenda_due_at(meeting) + LATE_AFTER


def add_agenda_item(
    meeting: Meeting,
    *,
    actor: User,
    title: str,
    kind: AgendaItemKind = AgendaItemKind.DISCUSSION,
    description: str = "",
    process: Process | None = None,
    position: Position | None = None,
    round_: Round | None = None,
    document_title: str = "",
    document_url: str = "",
) -> AgendaItem:
    """Add an item at the end of the agenda; it may point at a process, one of its
    positions or rounds, and a document."""
    _require_open_meeting(meeting)
    if meeting.starts_at <= utcnow() and meeting.is_agenda_published:
        raise Conflict(str(_l("The meeting has begun: its agenda can no longer change.")))
    for thing, field in ((position, "position_id"), (round_, "round_id")):
        if thing is not None and (process is None or thing.process_id != process.id):
            raise DomainError(str(_l("Choose something of the chosen process.")), field=field)
    title = visible_line(title, field="title")
    if not title:
        raise DomainError(str(_l("Enter a title.")), field="title")
    document_url = _url(document_url, field="document_url")
    item = AgendaItem(
        meeting_id=meeting.id,
        sequence=_next_sequence(AgendaItem.sequence, AgendaItem.meeting_id, meeting.id),
        title=title,
        kind=AgendaItemKind(kind),
        description=_text(description, field="description"),
        process_id=process.id if process else None,
        position_id=position.id if position else None,
        round_id=round_.id if round_ else None,
        document_title=visible_line(document_title, field="document_title"),
        document_url=document_url,
    )
    db.session.add(item)
    db.session.flush()
    audit.record(
        "meeting.agenda_item_added",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        payload={
            "item": item.id,
            "sequence": item.sequence,
            "title": item.title,
            "kind": item.kind.value,
            "process": item.process_id,
            "position": item.position_id,
            "round": item.round_id,
            "document_url": item.document_url,
        },
    )
    return item


def remove_agenda_item(meeting: Meeting, item: AgendaItem, *, actor: User) -> None:
    _require_open_meeting(meeting)
    if meeting.starts_at <= utcnow() and meeting.is_agenda_published:
        raise Conflict(str(_l("The meeting has begun: its agenda can no longer change.")))
    used = db.session.execute(
        select(MeetingDecision.id).where(
            (MeetingDecision.agenda_item_id == item.id)
            | (MeetingDecision.forwarded_to_item_id == item.id)
        )
    ).first()
    if used is not None:
        raise Conflict(str(_l("A decision refers to this item: it stays on the agenda.")))
    payload = {"item": item.id, "title": item.title}
    db.session.delete(item)
    db.session.flush()
    audit.record(
        "meeting.agenda_item_removed",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        payload=payload,
    )


def publish_agenda(meeting: Meeting, *, actor: User | None, at: datetime | None = None) -> Meeting:
    """Send the agenda to the members: from now on they see it, and the people who attend
    are told (late is allowed, and shown: the notice period is the body's agreement, not a
    lock). `actor` None: the clock, when the notice period began (publish_due_agendas)."""
    _require_open_meeting(meeting)
    if meeting.is_agenda_published:
        raise Conflict(str(_l("The agenda has already been published.")))
    items = db.session.execute(
        select(func.count()).select_from(AgendaItem).where(AgendaItem.meeting_id == meeting.id)
    ).scalar_one()
    if not items:
        raise DomainError(str(_l("Add at least one item before publishing the agenda.")))
    meeting.agenda_published_at = at or utcnow()
    meeting.agenda_published_by_id = actor.id if actor is not None else None
    audit.record(
        "meeting.agenda_published",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        origin="clock" if actor is None else None,
        payload={
            "items": items,
            "due_at": agenda_due_at(meeting).isoformat(),
            "late": published_late(meeting),
        },
    )
    db.session.flush()
    events.record(
        events.AgendaPublished(
            meeting_id=meeting.id,
            body_id=meeting.body_id,
            actor_id=actor.id if actor is not None else None,
        )
    )
    return meeting


def publish_due_agendas(now: datetime | None = None) -> int:
    """The clock publishes every agenda whose notice period has begun (the body's
    `agenda_notice_days` before the meeting) and that nobody published yet; the secretary
    may always publish earlier by hand. A meeting with an empty agenda, a cancelled one,
    one of an archived body and one that has ended are left alone. Returns how many.

    Safe with several clocks: the due meetings are locked (FOR UPDATE on PostgreSQL; on
    SQLite the clock's transaction holds the write lock), so a second clock waits and then
    finds them published."""
    now = now or utcnow()
    candidates = (
        db.session.execute(
            select(Meeting)
            .join(StandingBody, Meeting.body_id == StandingBody.id)
            .where(
                Meeting.agenda_published_at.is_(None),
                Meeting.cancelled_at.is_(None),
                StandingBody.archived_at.is_(None),
                Meeting.ends_at > now,
                Meeting.starts_at <= now + timedelta(days=60),
                Meeting.id.in_(select(AgendaItem.meeting_id)),
            )
            .order_by(Meeting.starts_at, Meeting.id)
            .with_for_update(of=Meeting)
        )
        .scalars()
        .all()
    )
    published = 0
    for meeting in candidates:
        if agenda_due_at(meeting) <= now:
            publish_agenda(meeting, actor=None, at=now)
            published += 1
    return published


def _require_draft_minutes(meeting: Meeting) -> None:
    if meeting.minutes_approved:
        raise Conflict(
            str(_l("The minutes and decisions of this meeting were approved: they are final."))
        )


def record_decision(
    meeting: Meeting,
    *,
    actor: User,
    text: str,
    outcome: DecisionOutcome = DecisionOutcome.NOTED,
    item: AgendaItem | None = None,
) -> MeetingDecision:
    """Add a line to the meeting's decisions list (only once the meeting has begun)."""
    _require_open_meeting(meeting)
    _require_draft_minutes(meeting)
    if meeting.starts_at > utcnow():
        raise Conflict(str(_l("Decisions are recorded once the meeting has begun.")))
    if item is not None and item.meeting_id != meeting.id:
        raise DomainError(str(_l("Choose an item of this meeting's agenda.")), field="item_id")
    outcome = DecisionOutcome(outcome)
    if outcome == DecisionOutcome.CLEARED and meeting.body.level != BodyLevel.OFFICIAL:
        raise DomainError(
            str(_l("Official clearance is given by an official body.")), field="outcome"
        )
    text = _text(text, field="text")
    if not text:
        raise DomainError(str(_l("Enter the decision.")), field="text")
    decision = MeetingDecision(
        meeting_id=meeting.id,
        sequence=_next_sequence(MeetingDecision.sequence, MeetingDecision.meeting_id, meeting.id),
        agenda_item_id=item.id if item else None,
        outcome=outcome,
        text=text,
        recorded_by_id=actor.id,
    )
    db.session.add(decision)
    db.session.flush()
    audit.record(
        "meeting.decision_recorded",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        payload={
            "decision": decision.id,
            "sequence": decision.sequence,
            "outcome": outcome.value,
            "item": decision.agenda_item_id,
            "process": item.process_id if item else None,
            "position": item.position_id if item else None,
            "text": text,
        },
    )
    return decision


def save_minutes(meeting: Meeting, *, actor: User, minutes: str) -> Meeting:
    """The secretary drafts the minutes (a draft until approved at the next meeting)."""
    _require_open_meeting(meeting)
    _require_draft_minutes(meeting)
    if meeting.starts_at > utcnow():
        raise Conflict(str(_l("Minutes are drafted once the meeting has begun.")))
    text = _text(minutes, field="minutes")
    if text == meeting.minutes:
        return meeting
    meeting.minutes = text
    audit.record(
        "meeting.minutes_drafted",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        payload={"length": len(text)},
    )
    db.session.flush()
    return meeting


def _following(meeting: Meeting) -> Select[tuple[Meeting]]:
    """The body's meeting that follows this one (a cancelled one does not count)."""
    return (
        select(Meeting)
        .where(
            Meeting.body_id == meeting.body_id,
            Meeting.starts_at > meeting.starts_at,
            Meeting.cancelled_at.is_(None),
        )
        .order_by(Meeting.starts_at, Meeting.id)
        .limit(1)
    )


def next_meeting_after(meeting: Meeting) -> Meeting | None:
    """The body's meeting that follows this one (a cancelled one does not count)."""
    return db.session.execute(_following(meeting)).scalar_one_or_none()


def neighbours(meeting: Meeting) -> tuple[Meeting | None, Meeting | None]:
    """The body's meeting before this one and the one after it (next_meeting_after), in
    one statement, for the meeting page."""
    before = (
        select(Meeting.id)
        .where(Meeting.body_id == meeting.body_id, Meeting.starts_at < meeting.starts_at)
        .order_by(Meeting.starts_at.desc(), Meeting.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    after = _following(meeting).with_only_columns(Meeting.id).scalar_subquery()
    found = db.session.execute(select(Meeting).where(Meeting.id.in_([before, after]))).scalars()
    previous = following = None
    for other in found:
        if other.starts_at < meeting.starts_at:
            previous = other
        else:
            following = other
    return previous, following


def approve_minutes(meeting: Meeting, *, actor: User) -> Meeting:
    """The body's next meeting approves this meeting's decisions list and minutes: only
    once that meeting has begun, and then they are final."""
    _require_open_meeting(meeting)
    _require_draft_minutes(meeting)
    following = next_meeting_after(meeting)
    if following is None or following.starts_at > utcnow():
        raise Conflict(
            str(_l("Minutes are approved at the body's next meeting, once it has begun."))
        )
    if not meeting.minutes:
        raise DomainError(str(_l("There are no minutes to approve yet.")))
    now = utcnow()
    meeting.minutes_state = MinutesState.APPROVED
    meeting.minutes_approved_at = now
    meeting.minutes_approved_by_id = actor.id
    meeting.minutes_approved_in_id = following.id
    audit.record(
        "meeting.minutes_approved",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        payload={"approved_in": following.id, "decisions": len(meeting.decisions)},
    )
    db.session.flush()
    return meeting


def cancel_meeting(meeting: Meeting, *, actor: User, reason: str) -> Meeting:
    """The secretary cancels a meeting that has not begun, saying why. It is not deleted:
    it stays on the body's page, marked cancelled with the reason, and the people who
    attend are told."""
    _require_open_meeting(meeting)
    if meeting.starts_at <= utcnow():
        raise Conflict(str(_l("The meeting has begun: it can no longer be cancelled.")))
    reason = _text(reason, field="reason")
    if not reason:
        raise DomainError(str(_l("Say why the meeting is cancelled.")), field="reason")
    meeting.cancelled_at = utcnow()
    meeting.cancelled_by_id = actor.id
    meeting.cancel_reason = reason
    audit.record(
        "meeting.cancelled",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        payload={"reason": reason, "starts_at": meeting.starts_at.isoformat()},
    )
    db.session.flush()
    events.record(
        events.MeetingCancelled(meeting_id=meeting.id, body_id=meeting.body_id, actor_id=actor.id)
    )
    return meeting


def archive_body(body: StandingBody, *, actor: User) -> StandingBody:
    """An administrator closes a body that no longer meets. Nothing is deleted: its
    meetings, decisions, minutes and actions stay readable; it takes no new meetings and
    its composition is frozen. Its planned meetings are cancelled first, by its secretary
    (so the people who attend are told why)."""
    _require_active_body(body)
    planned = db.session.execute(
        select(func.count())
        .select_from(Meeting)
        .where(
            Meeting.body_id == body.id,
            Meeting.starts_at > utcnow(),
            Meeting.cancelled_at.is_(None),
        )
    ).scalar_one()
    if planned:
        raise Conflict(
            str(_l("This body still has planned meetings: cancel them before archiving it."))
        )
    body.archived_at = utcnow()
    body.archived_by_id = actor.id
    audit.record(
        "body.archived",
        actor=actor,
        object_type="standing_body",
        object_id=body.id,
        payload={"slug": body.slug, "name": body.name},
    )
    db.session.flush()
    return body


def add_agenda_document(
    item: AgendaItem,
    *,
    actor: User,
    content: bytes,
    filename: str,
    title: str = "",
) -> AgendaDocument:
    """Attach a file to an agenda item (PDF, ODF or Office Open XML, at most 10 MB),
    also after the agenda went out (late documents are common) until the minutes are
    approved. A document is kept once uploaded (the audit log names it with its hash)."""
    meeting = item.meeting
    _require_open_meeting(meeting)
    _require_draft_minutes(meeting)
    if not content:
        raise DomainError(str(_l("Choose a file.")), field="document")
    if len(content) > DOCUMENT_MAX_BYTES:
        raise DomainError(str(_l("The file is larger than 10 MB.")), field="document")
    extension = "." + (filename or "").rsplit(".", 1)[-1].lower() if "." in filename else ""
    content_type = _file_type(content, extension, DOCUMENT_TYPES)
    if content_type is None:
        raise DomainError(
            str(_l("Upload a PDF, ODF (odt, ods, odp) or Office (docx, xlsx, pptx) file.")),
            field="document",
        )
    document = AgendaDocument(
        item_id=item.id,
        title=visible_line(title, field="title"),
        filename=_safe_filename(filename, default=f"document{extension}", extension=extension),
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_by_id=actor.id,
    )
    db.session.add(document)
    db.session.flush()
    audit.record(
        "meeting.document_added",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        payload={
            "item": item.id,
            "document": document.id,
            "filename": document.filename,
            "content_type": content_type,
            "size": document.size,
            "sha256": document.sha256,
        },
    )
    return document


# --- Forwarding -------------------------------------------------------------------------------


def next_open_meeting(body: StandingBody) -> Meeting | None:
    """The body's next meeting that has not begun (and is not cancelled)."""
    return db.session.execute(
        select(Meeting)
        .where(
            Meeting.body_id == body.id,
            Meeting.starts_at > utcnow(),
            Meeting.cancelled_at.is_(None),
        )
        .order_by(Meeting.starts_at, Meeting.id)
        .limit(1)
    ).scalar_one_or_none()


def forward_decision(decision: MeetingDecision, *, actor: User) -> AgendaItem:
    """One action: a position cleared at an official body goes onto the agenda of the next
    meeting of the administrative body it prepares for, for decision."""
    meeting = decision.meeting
    body = meeting.body
    _require_active_body(body)
    if decision.outcome != DecisionOutcome.CLEARED:
        raise DomainError(str(_l("Only a position cleared here can be forwarded.")))
    if decision.forwarded_to_item_id is not None:
        raise Conflict(str(_l("This decision has already been forwarded.")))
    target_body = body.prepares_for
    if target_body is None:
        raise DomainError(str(_l("This body does not prepare for an administrative body.")))
    _require_active_body(target_body)
    target = next_open_meeting(target_body)
    if target is None:
        raise DomainError(
            str(
                _l(
                    "%(body)s has no meeting planned yet: its secretary plans one first.",
                    body=target_body.name,
                )
            )
        )
    source = decision.agenda_item
    process = db.session.get(Process, source.process_id) if source and source.process_id else None
    position = (
        db.session.get(Position, source.position_id) if source and source.position_id else None
    )
    title = source.title if source else decision.text.splitlines()[0][:300]
    item = AgendaItem(
        meeting_id=target.id,
        sequence=_next_sequence(AgendaItem.sequence, AgendaItem.meeting_id, target.id),
        title=title,
        kind=AgendaItemKind.DECISION,
        description=str(
            _l(
                "Cleared by %(body)s on %(date)s: %(decision)s",
                body=body.name,
                date=local_day(meeting.starts_at).isoformat(),
                decision=decision.text,
            )
        ),
        process_id=process.id if process else None,
        position_id=position.id if position else None,
    )
    db.session.add(item)
    db.session.flush()
    decision.forwarded_to_item_id = item.id
    decision.forwarded_at = utcnow()
    decision.forwarded_by_id = actor.id
    audit.record(
        "meeting.decision_forwarded",
        actor=actor,
        object_type="meeting",
        object_id=meeting.id,
        payload={
            "decision": decision.id,
            "to_body": target_body.slug,
            "to_meeting": target.id,
            "item": item.id,
            "process": item.process_id,
            "position": item.position_id,
        },
    )
    db.session.flush()
    return item


@dataclass(frozen=True)
class ChainStep:
    """One step of a position's way through the bodies (plain values, for the page)."""

    kind: str  # "on_agenda", "decided", "forwarded"
    body_name: str
    body_slug: str
    meeting_id: int
    meeting_title: str
    moment: datetime
    outcome: str | None
    text: str
    by: str


def process_chain(process_id: int) -> list[ChainStep]:
    """The way a process's positions went through the bodies: on an agenda, decided
    (cleared, adopted …, by whom), forwarded; in time order. Two queries."""
    rows = db.session.execute(
        select(AgendaItem, Meeting, StandingBody)
        .join(Meeting, AgendaItem.meeting_id == Meeting.id)
        .join(StandingBody, Meeting.body_id == StandingBody.id)
        .where(AgendaItem.process_id == process_id)
        .order_by(Meeting.starts_at, AgendaItem.sequence)
    ).all()
    if not rows:
        return []
    by_item = {item.id: (meeting, body) for item, meeting, body in rows}
    steps = [
        ChainStep(
            "on_agenda",
            body.name,
            body.slug,
            meeting.id,
            meeting.title,
            meeting.starts_at,
            None,
            item.title,
            "",
        )
        for item, meeting, body in rows
    ]
    decisions = (
        db.session.execute(
            select(MeetingDecision).where(MeetingDecision.agenda_item_id.in_(list(by_item)))
        )
        .unique()
        .scalars()
        .all()
    )
    for decision in decisions:
        meeting, body = by_item[decision.agenda_item_id]  # type: ignore[index]
        by = decision.recorded_by.display_name if decision.recorded_by else ""
        steps.append(
            ChainStep(
                "decided",
                body.name,
                body.slug,
                meeting.id,
                meeting.title,
                meeting.starts_at,
                decision.outcome.value,
                decision.text,
                by,
            )
        )
        if decision.forwarded_at is not None and decision.forwarded_to_item_id in by_item:
            target_meeting, target_body = by_item[decision.forwarded_to_item_id]
            steps.append(
                ChainStep(
                    "forwarded",
                    target_body.name,
                    target_body.slug,
                    target_meeting.id,
                    target_meeting.title,
                    decision.forwarded_at,
                    None,
                    decision.text,
                    "",
                )
            )
    order = {"on_agenda": 0, "decided": 1, "forwarded": 2}
    return sorted(steps, key=lambda s: (s.moment, order[s.kind]))


# --- Follow-up actions ------------------------------------------------------------------------


def create_action(
    *,
    actor: User,
    title: str,
    owner: Organisation,
    due_on: date,
    source: ActionSource,
    process: Process | None = None,
    decision: MeetingDecision | None = None,
    description: str = "",
    theme: str = "",
    link_url: str = "",
) -> FollowUpAction:
    """An action that came out of an outcome or a letter (of a process) or a meeting's
    decision (of a body)."""
    source = ActionSource(source)
    body_id = None
    if source == ActionSource.DECISION:
        if decision is None:
            raise DomainError(str(_l("Choose the decision this action comes from.")))
        _require_active_body(decision.meeting.body)
        body_id = decision.meeting.body_id
        if process is None and decision.agenda_item and decision.agenda_item.process_id:
            process = db.session.get(Process, decision.agenda_item.process_id)
    elif process is None:
        raise DomainError(str(_l("Choose the process this action comes from.")))
    title = visible_line(title, field="title")
    if not title:
        raise DomainError(str(_l("Say what has to be done.")), field="title")
    theme = visible_line(theme, field="theme")
    if theme and process is not None and theme not in {t.name for t in process.themes}:
        raise DomainError(str(_l("Choose one of the process's themes.")), field="theme")
    action = FollowUpAction(
        title=title,
        description=_text(description, field="description"),
        owner_organisation_id=owner.id,
        due_on=due_on,
        status=ActionStatus.OPEN,
        source=source,
        process_id=process.id if process else None,
        body_id=body_id,
        decision_id=decision.id if decision else None,
        theme=theme,
        link_url=_url(link_url, field="link_url"),
        created_by_id=actor.id,
    )
    db.session.add(action)
    db.session.flush()
    audit.record(
        "action.created",
        actor=actor,
        object_type="follow_up_action",
        object_id=action.id,
        organisation_id=owner.id,
        payload={
            "title": title,
            "owner": owner.slug,
            "due_on": due_on.isoformat(),
            "source": source.value,
            "process": action.process_id,
            "decision": action.decision_id,
            "theme": theme,
        },
    )
    return action


def report_progress(
    action: FollowUpAction, *, actor: User, status: ActionStatus, note: str
) -> ActionNote:
    """A progress note, optionally with a new status; every change of status is kept."""
    status = ActionStatus(status)
    note = _text(note, field="note")
    if not note and status == action.status:
        raise DomainError(str(_l("Write a note or choose a new status.")), field="note")
    previous = action.status
    entry = ActionNote(action_id=action.id, author_id=actor.id, body=note, status=status)
    db.session.add(entry)
    action.status = status
    if status in FINISHED_STATUSES and previous not in FINISHED_STATUSES:
        action.finished_at = utcnow()
    elif status not in FINISHED_STATUSES:
        action.finished_at = None
    db.session.flush()
    audit.record(
        "action.progress",
        actor=actor,
        object_type="follow_up_action",
        object_id=action.id,
        organisation_id=action.owner_organisation_id,
        payload={"from": previous.value, "to": status.value, "note": note},
    )
    return entry


def notify_overdue_actions(today: date, now: datetime | None = None) -> int:
    """Tell the people who report on an action (the rule book's who_reports_on: the owner
    organisation's officials and representatives, the body's secretary) that it is
    overdue: once per action, ever — `overdue_notice_at` is set in the same transaction
    that writes the notifications (in-app and the e-mail outbox, as each person chose).
    A later due date does not make it news again (a person reads the action's page).

    Safe with several clocks: the due actions are locked (FOR UPDATE), so a second clock
    waits and then finds them marked. Returns the number of people told."""
    from consensus import permissions

    now = now or utcnow()
    due = (
        db.session.execute(
            select(FollowUpAction)
            .where(
                FollowUpAction.status.not_in(FINISHED_STATUSES),
                FollowUpAction.due_on < today,
                FollowUpAction.overdue_notice_at.is_(None),
            )
            .order_by(FollowUpAction.id)
            .with_for_update(of=FollowUpAction)
        )
        .scalars()
        .all()
    )
    told = 0
    for action in due:
        people = sorted(permissions.who_reports_on(action, now))
        action.overdue_notice_at = now
        audit.record(
            "action.overdue_notified",
            actor=None,
            object_type="follow_up_action",
            object_id=action.id,
            organisation_id=action.owner_organisation_id,
            origin="clock",
            payload={"people": len(people), "due_on": action.due_on.isoformat()},
        )
        if people:
            events.record(
                events.ActionOverdue(
                    action_id=action.id,
                    people=tuple((uid, action.owner_organisation_id) for uid in people),
                )
            )
        told += len(people)
    db.session.flush()
    return told


def clock(now: datetime | None = None) -> tuple[int, int]:
    """What the clock does for standing bodies (from `flask rounds tick`): publish the
    agendas that are due, tell about overdue actions. Returns (agendas, people told)."""
    now = now or utcnow()
    return publish_due_agendas(now), notify_overdue_actions(local_day(now), now)


def actions_of_process(process_id: int) -> list[FollowUpAction]:
    return list(
        db.session.execute(
            select(FollowUpAction)
            .where(FollowUpAction.process_id == process_id)
            .order_by(FollowUpAction.due_on, FollowUpAction.id)
        ).scalars()
    )


@dataclass(frozen=True)
class ThemeProgress:
    theme: str
    total: int
    done: int
    overdue: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


def progress_per_theme(actions: Iterable[FollowUpAction], today: date) -> list[ThemeProgress]:
    """Per theme (the strategy's priorities): how many actions, done, overdue."""
    counts: dict[str, list[int]] = {}
    for action in actions:
        if action.status == ActionStatus.CANCELLED:
            continue
        row = counts.setdefault(action.theme, [0, 0, 0])
        row[0] += 1
        row[1] += action.status == ActionStatus.DONE
        row[2] += action.is_overdue(today)
    return [ThemeProgress(theme, *row) for theme, row in sorted(counts.items())]


# --- The letter: sent, and the reply ----------------------------------------------------------


def record_dispatch(
    process: Process,
    *,
    actor: User,
    addressee: str,
    sent_on: date,
    channel: DispatchChannel,
    reference: str = "",
    position: Position | None = None,
) -> LetterDispatch:
    """The signed letter went to its addressee: when, how, with which reference."""
    if position is not None and position.process_id != process.id:
        raise DomainError(str(_l("Choose a position of this process.")), field="position_id")
    _not_in_future(sent_on, field="sent_on")
    addressee = visible_line(addressee, field="addressee")
    if not addressee:
        raise DomainError(str(_l("Enter the addressee.")), field="addressee")
    dispatch = LetterDispatch(
        process_id=process.id,
        position_id=position.id if position else None,
        addressee=addressee,
        sent_on=sent_on,
        channel=DispatchChannel(channel),
        reference=visible_line(reference, field="reference"),
        recorded_by_id=actor.id,
    )
    db.session.add(dispatch)
    db.session.flush()
    audit.record(
        "letter.sent",
        actor=actor,
        object_type="process",
        object_id=process.id,
        payload={
            "dispatch": dispatch.id,
            "addressee": addressee,
            "sent_on": sent_on.isoformat(),
            "channel": dispatch.channel.value,
            "reference": dispatch.reference,
        },
    )
    return dispatch


def record_reply(
    dispatch: LetterDispatch,
    *,
    actor: User,
    received_on: date,
    summary: str,
    reference: str = "",
    document: bytes | None = None,
    filename: str = "",
) -> LetterDispatch:
    """The addressee's reply came in: its date, a summary and the document (PDF)."""
    if dispatch.has_reply:
        raise Conflict(str(_l("The reply to this letter has already been recorded.")))
    if received_on < dispatch.sent_on:
        raise DomainError(
            str(_l("The reply cannot be older than the letter.")), field="received_on"
        )
    _not_in_future(received_on, field="received_on")
    summary = _text(summary, field="summary")
    if not summary:
        raise DomainError(str(_l("Summarise the reply.")), field="summary")
    if document is not None:
        if len(document) > REPLY_MAX_BYTES:
            raise DomainError(str(_l("The file is larger than 5 MB.")), field="document")
        content_type = _file_type(document, ".pdf", REPLY_TYPES)
        if content_type is None:
            raise DomainError(str(_l("Upload the reply as a PDF file.")), field="document")
        dispatch.reply_document = document
        dispatch.reply_filename = _safe_filename(filename, default="reply.pdf", extension=".pdf")
        dispatch.reply_content_type = content_type
    dispatch.reply_received_on = received_on
    dispatch.reply_summary = summary
    dispatch.reply_reference = visible_line(reference, field="reference")
    dispatch.reply_recorded_by_id = actor.id
    dispatch.reply_recorded_at = utcnow()
    audit.record(
        "letter.reply_recorded",
        actor=actor,
        object_type="process",
        object_id=dispatch.process_id,
        payload={
            "dispatch": dispatch.id,
            "received_on": received_on.isoformat(),
            "reference": dispatch.reply_reference,
            "document": dispatch.reply_filename or None,
            "size": len(document) if document is not None else 0,
        },
    )
    db.session.flush()
    return dispatch


def dispatches_of(process_id: int) -> list[LetterDispatch]:
    return list(
        db.session.execute(
            select(LetterDispatch)
            .where(LetterDispatch.process_id == process_id)
            .order_by(LetterDispatch.sent_on, LetterDispatch.id)
        ).scalars()
    )


@dataclass(frozen=True)
class TimelineEntry:
    """One event of a published process's public timeline (and its Atom feed)."""

    key: str  # stable: the feed's entry id
    moment: datetime
    kind: str
    title: str
    summary: str


def _moment_of(day: date, recorded_at: datetime | None) -> datetime:
    """A dated event (a letter sent, a reply received) as a moment: when it was recorded if
    that was on the day itself, else the end of that day (a date says no more)."""
    from consensus.domain.timeutil import end_of_day, start_of_day

    latest = end_of_day(day) - timedelta(seconds=1)
    if recorded_at is None:
        return latest
    return min(max(start_of_day(day), recorded_at), latest)


def public_timeline(
    process: Process, dispatches: list[LetterDispatch] | None = None
) -> list[TimelineEntry]:
    """What happened to a published process, for everyone: started, each closed round,
    published, the letter sent, the reply received. Plain values, oldest first."""
    entries = [
        TimelineEntry(
            f"process-{process.id}-started",
            process.created_at,
            "started",
            str(_l("The process started")),
            process.title,
        )
    ]
    for round_ in process.rounds:
        if round_.closed_at is not None:
            entries.append(
                TimelineEntry(
                    f"round-{round_.id}-closed",
                    round_.closed_at,
                    "round_closed",
                    str(_l("Round closed: %(title)s", title=round_.title)),
                    round_.title,
                )
            )
    if process.published_at is not None:
        entries.append(
            TimelineEntry(
                f"process-{process.id}-published",
                process.published_at,
                "published",
                str(_l("The outcome was published")),
                process.title,
            )
        )
    for dispatch in dispatches if dispatches is not None else dispatches_of(process.id):
        entries.append(
            TimelineEntry(
                f"letter-{dispatch.id}-sent",
                _moment_of(dispatch.sent_on, dispatch.recorded_at),
                "letter_sent",
                str(_l("The letter was sent to %(addressee)s", addressee=dispatch.addressee)),
                str(_l("Reference: %(reference)s", reference=dispatch.reference))
                if dispatch.reference
                else "",
            )
        )
        if dispatch.reply_received_on is not None:
            entries.append(
                TimelineEntry(
                    f"letter-{dispatch.id}-reply",
                    _moment_of(dispatch.reply_received_on, dispatch.reply_recorded_at),
                    "reply_received",
                    str(_l("Reply received from %(addressee)s", addressee=dispatch.addressee)),
                    dispatch.reply_summary,
                )
            )
    return sorted(entries, key=lambda e: (e.moment, e.key))


# --- What a person sees on the dashboard and in the calendar ----------------------------------


def upcoming_meetings(
    body_ids: Iterable[int], *, since: datetime, limit: int = 10
) -> list[Meeting]:
    wanted = sorted(set(body_ids))
    if not wanted:
        return []
    return list(
        db.session.execute(
            select(Meeting)
            .where(Meeting.body_id.in_(wanted), Meeting.ends_at >= since)
            .order_by(Meeting.starts_at, Meeting.id)
            .limit(limit)
        ).scalars()
    )


# --- One statement for the summaries on other pages -------------------------------------------
# The process page and the dashboard are kept within their query budgets
# (tests/web/test_query_budgets.py): what they show of bodies comes from ONE statement each,
# a UNION ALL of rows of a few kinds in one shape (kind, four numbers, seven texts, two
# moments, two dates), read into plain values.

_SHAPE = (
    ("n1", Integer), ("n2", Integer), ("n3", Integer), ("n4", Integer),
    ("s1", String), ("s2", String), ("s3", String), ("s4", String),
    ("s5", String), ("s6", String), ("s7", String),
    ("t1", UTCDateTime), ("t2", UTCDateTime), ("d1", Date), ("d2", Date),
)  # fmt: skip


def _shaped(kind: str, **columns: object) -> list[object]:
    """The select list of one kind of row: its columns in the common shape, NULL elsewhere."""
    values: list[object] = [literal(kind, String).label("kind")]
    for name, type_ in _SHAPE:
        column = columns.get(name)
        if column is None:
            values.append(cast(null(), type_()).label(name))
        elif type_ is String:
            values.append(cast(column, String).label(name))
        else:
            values.append(type_coerce(column, type_()).label(name))
    return values


@dataclass(frozen=True)
class OwnerRef:
    name: str
    short_name: str


@dataclass(frozen=True)
class ActionRow:
    """An action as the lists show it (plain values)."""

    id: int
    title: str
    theme: str
    owner: OwnerRef
    due_on: date
    status: ActionStatus

    def is_overdue(self, today: date) -> bool:
        return self.status not in FINISHED_STATUSES and self.due_on < today


@dataclass(frozen=True)
class DispatchRow:
    addressee: str
    sent_on: date
    reply_received_on: date | None


@dataclass(frozen=True)
class ProcessFollowUp:
    chain: list[ChainStep]
    actions: list[ActionRow]
    dispatches: list[DispatchRow]


def _action_select(where: object) -> Select[Any]:
    return (
        select(
            *_shaped(
                "action",
                n1=FollowUpAction.id,
                s1=FollowUpAction.title,
                s2=FollowUpAction.theme,
                s3=Organisation.name,
                s4=Organisation.short_name,
                s5=FollowUpAction.status,
                d1=FollowUpAction.due_on,
            )
        )
        .join(Organisation, FollowUpAction.owner_organisation_id == Organisation.id)
        .where(where)  # type: ignore[arg-type]
    )


def _action_row(row: Any) -> ActionRow:
    return ActionRow(
        row.n1, row.s1, row.s2 or "", OwnerRef(row.s3, row.s4), row.d1, ActionStatus(row.s5)
    )


def process_follow_up(process_id: int) -> ProcessFollowUp:
    """The process page's follow-up in one statement: its way through the bodies (agenda
    items with their decisions), its actions and its letters."""
    recorder = aliased(User)
    chain = (
        select(
            *_shaped(
                "item",
                n1=AgendaItem.id,
                n2=Meeting.id,
                n3=MeetingDecision.id,
                n4=MeetingDecision.forwarded_to_item_id,
                s1=StandingBody.name,
                s2=StandingBody.slug,
                s3=Meeting.title,
                s4=AgendaItem.title,
                s5=MeetingDecision.outcome,
                s6=MeetingDecision.text,
                s7=recorder.display_name,
                t1=Meeting.starts_at,
                t2=MeetingDecision.forwarded_at,
            )
        )
        .join(Meeting, AgendaItem.meeting_id == Meeting.id)
        .join(StandingBody, Meeting.body_id == StandingBody.id)
        .outerjoin(MeetingDecision, MeetingDecision.agenda_item_id == AgendaItem.id)
        .outerjoin(recorder, MeetingDecision.recorded_by_id == recorder.id)
        .where(AgendaItem.process_id == process_id)
    )
    actions = _action_select(FollowUpAction.process_id == process_id)
    letters = select(
        *_shaped(
            "letter",
            n1=LetterDispatch.id,
            s1=LetterDispatch.addressee,
            d1=LetterDispatch.sent_on,
            d2=LetterDispatch.reply_received_on,
        )
    ).where(LetterDispatch.process_id == process_id)
    rows = db.session.execute(union_all(chain, actions, letters)).all()
    steps: list[ChainStep] = []
    places: dict[int, Any] = {}
    seen_items: set[int] = set()
    for row in rows:
        if row.kind == "item":
            places[row.n1] = row
    for row in rows:
        if row.kind != "item":
            continue
        if row.n1 not in seen_items:
            seen_items.add(row.n1)
            steps.append(
                ChainStep("on_agenda", row.s1, row.s2, row.n2, row.s3, row.t1, None, row.s4, "")
            )
        if row.n3 is None:
            continue
        steps.append(
            ChainStep(
                "decided", row.s1, row.s2, row.n2, row.s3, row.t1, row.s5, row.s6, row.s7 or ""
            )
        )
        target = places.get(row.n4) if row.n4 is not None else None
        if target is not None and row.t2 is not None:
            steps.append(
                ChainStep(
                    "forwarded",
                    target.s1,
                    target.s2,
                    target.n2,
                    target.s3,
                    row.t2,
                    None,
                    row.s6,
                    "",
                )
            )
    order = {"on_agenda": 0, "decided": 1, "forwarded": 2}
    steps.sort(key=lambda s: (s.moment, order[s.kind]))
    action_rows = sorted(
        (_action_row(r) for r in rows if r.kind == "action"), key=lambda a: (a.due_on, a.id)
    )
    dispatches = sorted(
        (DispatchRow(r.s1, r.d1, r.d2) for r in rows if r.kind == "letter"),
        key=lambda d: d.sent_on,
    )
    return ProcessFollowUp(steps, action_rows, dispatches)


@dataclass(frozen=True)
class MeetingRow:
    id: int
    title: str
    body_name: str
    body_slug: str
    starts_at: datetime
    place: str
    agenda_published_at: datetime | None


def dashboard_summary(
    visible_bodies: Select[tuple[int]], action_filter: object, *, since: datetime, today: date
) -> tuple[list[MeetingRow], list[ActionRow]]:
    """The dashboard's upcoming meetings (of the bodies the person sees) and overdue actions
    (that the person sees), in one statement; the rule book gives both filters."""
    meetings = (
        select(
            *_shaped(
                "meeting",
                n1=Meeting.id,
                s1=Meeting.title,
                s2=StandingBody.name,
                s3=StandingBody.slug,
                s4=Meeting.place,
                t1=Meeting.starts_at,
                t2=Meeting.agenda_published_at,
            )
        )
        .join(StandingBody, Meeting.body_id == StandingBody.id)
        .where(
            Meeting.body_id.in_(visible_bodies),
            Meeting.ends_at >= since,
            Meeting.cancelled_at.is_(None),
        )
        .order_by(Meeting.starts_at)
        .limit(5)
    )
    overdue = (
        _action_select(action_filter)
        .where(FollowUpAction.status.not_in(FINISHED_STATUSES), FollowUpAction.due_on < today)
        .order_by(FollowUpAction.due_on)
        .limit(10)
    )
    rows = db.session.execute(
        union_all(meetings.subquery().select(), overdue.subquery().select())
    ).all()
    meeting_rows = sorted(
        (
            MeetingRow(r.n1, r.s1, r.s2, r.s3, r.t1, r.s4 or "", r.t2)
            for r in rows
            if r.kind == "meeting"
        ),
        key=lambda m: (m.starts_at, m.id),
    )
    action_rows = sorted(
        (_action_row(r) for r in rows if r.kind == "action"), key=lambda a: (a.due_on, a.id)
    )
    return meeting_rows, action_rows
