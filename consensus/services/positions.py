"""Positions, their immutable versions, comments, amendments and the disposition report.

Use-case functions: they check the domain rules, change state, write an audit event and
flush — the view commits. Who may act is asked of `consensus.permissions` (gate and the
can_* predicates), here as well as in the views, so no caller can skip it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from consensus import audit, events, permissions
from consensus.domain.canonical import (
    BlockChange,
    assign_anchors,
    canonicalise,
    diff_blocks,
    join_blocks,
    sha256_hex,
    split_blocks,
    word_diff,
)
from consensus.domain.visible import require_visible, visible_line
from consensus.extensions import db
from consensus.formats import csvsafe
from consensus.models import (
    Amendment,
    AmendmentState,
    Comment,
    CommentRevision,
    Consolidation,
    DispositionFeedback,
    DispositionReview,
    Organisation,
    Position,
    Process,
    ProcessState,
    Round,
    RoundState,
    User,
    Version,
    VersionParagraph,
    utcnow,
)
from consensus.permissions import Action
from consensus.permissions.drafting import individual_contributions_allowed
from consensus.permissions.positions import (  # noqa: F401  (the rule book; old names kept)
    DEFAULT_EDIT_MINUTES,
    can_edit_comment,
    can_remove_comment,
    comment_edit_window,
    may_withdraw,
    may_write_version,
)
from consensus.services import drafting, processes
from consensus.services.errors import Conflict, DomainError, Forbidden

__all__ = [
    "VERSION_CREATED_HOOKS",
    "assign_anchors",
    "canonicalise",
    "diff_blocks",
    "sha256_hex",
    "split_blocks",
    "word_diff",
]

# Later features react to a new version (e.g. an open endorsement round must tell the
# organisations that the text moved on). Called after the version is flushed.
VERSION_CREATED_HOOKS: list[Callable[[Version, User], None]] = []

MAX_BODY = 200_000
MAX_COMMENT = 10_000
MAX_RATIONALE = 10_000


# --- Positions and versions -------------------------------------------------------------------


def _require_open_process(process: Process) -> None:
    if process.state not in {ProcessState.DRAFT, ProcessState.ACTIVE}:
        raise DomainError(str(_l("This process has ended and can no longer change.")))


def _require_facilitator(actor: User, process: Process) -> None:
    if not permissions.can_manage_process(actor, process):
        raise Forbidden(str(_l("Only a facilitator of this process can do this.")))


def _clean_body(body: str) -> str:
    text = canonicalise(body or "")
    if not text.strip():
        raise DomainError(str(_l("Enter the text of the position.")), field="body")
    if len(text) > MAX_BODY:
        raise DomainError(str(_l("The text is too long.")), field="body")
    return require_visible(text, field="body")


def create_position(
    process: Process,
    *,
    actor: User,
    title: str,
    body: str,
    subject: str = "",
    addressee: str = "",
    place: str = "",
    letter_date: date | None = None,
    reference: str = "",
    change_summary: str = "",
) -> Position:
    """A facilitator starts a position with its letter metadata and version 1."""
    _require_open_process(process)
    _require_facilitator(actor, process)
    details = _letter_details(title, subject, addressee, place, reference)
    text = _clean_body(body)
    change_summary = visible_line(change_summary, field="change_summary")
    position = Position(
        process_id=process.id, letter_date=letter_date, created_by_id=actor.id, **details
    )
    db.session.add(position)
    db.session.flush()
    audit.record(
        "position.created",
        actor=actor,
        object_type="position",
        object_id=position.id,
        payload={"process": process.id, "title": position.title, **_metadata(position)},
    )
    _new_version(
        position,
        actor=actor,
        body=text,
        change_summary=change_summary.strip() or str(_l("First version")),
    )
    return position


def _letter_details(
    title: str, subject: str, addressee: str, place: str, reference: str
) -> dict[str, str]:
    """The letter details as they will be stored and printed (refused when hidden
    characters would make the printed letter differ from them)."""
    details = {
        "title": visible_line(title, field="title"),
        "subject": visible_line(subject, field="subject"),
        "addressee": visible_line(addressee, field="addressee"),
        "place": visible_line(place, field="place"),
        "reference": visible_line(reference, field="reference"),
    }
    if not details["title"]:
        raise DomainError(str(_l("Enter a title.")), field="title")
    return details


def _metadata(position: Position) -> dict[str, object]:
    return {
        "subject": position.subject,
        "addressee": position.addressee,
        "place": position.place,
        "letter_date": position.letter_date.isoformat() if position.letter_date else None,
        "reference": position.reference,
    }


def update_position(
    position: Position,
    process: Process,
    *,
    actor: User,
    title: str,
    subject: str,
    addressee: str,
    place: str,
    letter_date: date | None,
    reference: str,
) -> None:
    """Letter metadata is not part of a version's hash, so it is frozen once an
    endorsement round has opened: nobody's stance may silently move to another letter."""
    _require_open_process(process)
    _require_facilitator(actor, process)
    if processes.endorsement_has_opened(process):
        raise DomainError(
            str(_l("The letter details cannot change after an endorsement round has opened."))
        )
    details = _letter_details(title, subject, addressee, place, reference)
    before = {"title": position.title, **_metadata(position)}
    position.title = details["title"]
    position.subject = details["subject"]
    position.addressee = details["addressee"]
    position.place = details["place"]
    position.letter_date = letter_date
    position.reference = details["reference"]
    after = {"title": position.title, **_metadata(position)}
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changes:
        audit.record(
            "position.updated",
            actor=actor,
            object_type="position",
            object_id=position.id,
            payload={"changes": changes},
        )
    db.session.flush()


def _paragraphs(
    body: str, previous: Sequence[tuple[str, str]], hints: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """[(anchor, text), …] of a body. `hints` are the blocks the caller meant to produce
    with their anchors (amendments); when the body parses back into exactly those blocks
    they are used as they are, otherwise anchors are matched against `previous`."""
    blocks = split_blocks(body)
    if hints and [text for _, text in hints] == blocks:
        return list(hints)
    return list(zip(assign_anchors(blocks, previous or hints), blocks, strict=True))


def _new_version(
    position: Position,
    *,
    actor: User,
    body: str,
    change_summary: str,
    hints: Sequence[tuple[str, str]] = (),
    organisation: Organisation | None = None,
    amendments: Sequence[Amendment] = (),
) -> Version:
    latest = position.latest
    previous = [(p.anchor, p.text) for p in latest.paragraphs] if latest else []
    # No new version carries a hidden character, whatever it is made from (an accepted
    # amendment, or a paragraph kept from a version stored before the rule).
    require_visible(body, field="body")
    digest = sha256_hex(body)
    if latest is not None and latest.sha256 == digest:
        raise DomainError(str(_l("The text is the same as the latest version.")), field="body")
    version = Version(
        position=position,
        number=(latest.number + 1) if latest else 1,
        body=body,
        sha256=digest,
        change_summary=change_summary.strip(),
        based_on_id=latest.id if latest else None,
        created_by_id=actor.id,
    )
    version.paragraphs = [
        VersionParagraph(ordinal=n, anchor=anchor, text=text)
        for n, (anchor, text) in enumerate(_paragraphs(body, previous, hints), start=1)
    ]
    db.session.add(version)
    db.session.flush()
    for amendment in amendments:
        amendment.applied_in_version_id = version.id
    audit.record(
        "version.created",
        actor=actor,
        object_type="version",
        object_id=version.id,
        organisation_id=organisation.id if organisation else None,
        payload={
            "position": position.id,
            "number": version.number,
            "sha256": digest,
            "based_on": version.based_on_id,
            "change_summary": version.change_summary,
            "amendments": [a.number for a in amendments],
        },
    )
    events.record(
        events.VersionPublished(
            version_id=version.id,
            position_id=position.id,
            process_id=position.process_id,
            number=version.number,
        )
    )
    db.session.flush()
    for hook in VERSION_CREATED_HOOKS:
        hook(version, actor)
    return version


def create_version(
    position: Position,
    process: Process,
    *,
    actor: User,
    body: str,
    change_summary: str,
    organisation: Organisation | None = None,
) -> Version:
    """A new version from an edited full text (facilitators; officials in drafting)."""
    _require_open_process(process)
    if not may_write_version(actor, process, organisation):
        raise Forbidden(str(_l("You may not write a new version now.")))
    change_summary = visible_line(change_summary, field="change_summary")
    if not change_summary:
        raise DomainError(str(_l("Describe what changed.")), field="change_summary")
    return _new_version(
        position,
        actor=actor,
        body=_clean_body(body),
        change_summary=change_summary,
        organisation=organisation,
    )


def pin_version(round_: Round, version: Version, *, actor: User) -> None:
    """Choose the version a scheduled round is about (otherwise: the latest at opening)."""
    process = round_.process
    _require_facilitator(actor, process)
    if round_.state != RoundState.SCHEDULED:
        raise DomainError(str(_l("Only a scheduled round can be pointed at another version.")))
    if version.position.process_id != process.id:
        raise DomainError(str(_l("This version belongs to another process.")))
    round_.version_id = version.id
    audit.record(
        "round.version_pinned",
        actor=actor,
        object_type="round",
        object_id=round_.id,
        payload={"version": version.id, "number": version.number, "sha256": version.sha256},
    )
    db.session.flush()


def _pin_latest_on_open(round_: Round) -> None:
    """When a round opens without a chosen version, it is about the latest version of the
    process's most recent position (so comments, amendments and stances have one text)."""
    if round_.version_id is not None:
        return
    latest = db.session.execute(
        select(Version.id)
        .join(Position)
        .where(Position.process_id == round_.process_id)
        .order_by(Position.created_at.desc(), Position.id.desc(), Version.number.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is not None:
        round_.version_id = latest


def register() -> None:
    """Hook into processes: a round opens about the latest version. Called once by
    consensus.hooks.register (create_app); idempotent."""
    if _pin_latest_on_open not in processes.ROUND_OPEN_CHECKS:
        processes.ROUND_OPEN_CHECKS.append(_pin_latest_on_open)


def round_version(process: Process, position: Position) -> tuple[Round | None, Version | None]:
    """The open round and the version of `position` that contributions now go to: the
    round's version when it belongs to this position, else the latest version."""
    current = process.open_round()
    if current is not None and current.version_id is not None:
        version = next((v for v in position.versions if v.id == current.version_id), None)
        if version is not None:
            return current, version
        return current, None
    return current, position.latest


# --- Comments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Voice:
    """Who speaks: the organisation and role shown with a contribution."""

    organisation: Organisation | None
    role: str


def comment_voice(
    user: User, process: Process, version: Version, organisation: Organisation | None
) -> Voice:
    """May `user` comment on `version` now, and as whom? Raises when not.

    Members of participating organisations comment while a drafting or consultation round
    is open (the gate decides) on the version that round is about. Facilitators may always
    answer while the process runs, without an organisation.
    """
    if organisation is None and permissions.can_manage_process(user, process):
        if process.state != ProcessState.ACTIVE:
            raise DomainError(str(_l("This process is not active.")))
        return Voice(None, "facilitator")
    decision = permissions.gate(user, Action.COMMENT, process, organisation)
    if not decision:
        raise Forbidden(decision.reason)
    _, target = round_version(process, version.position)
    if target is None or target.id != version.id:
        raise DomainError(str(_l("In this round, comments go to the version the round is about.")))
    membership = permissions.membership_in(user, organisation)  # type: ignore[arg-type]
    return Voice(organisation, membership.role.value if membership else "")


def _require_individual_input(process: Process) -> None:
    if not individual_contributions_allowed(process):
        raise Forbidden(
            str(
                _l(
                    "In this process, input comes from organisations: prepare it with your "
                    "colleagues in your organisation's space."
                )
            )
        )


def add_comment(
    version: Version,
    process: Process,
    *,
    actor: User,
    body: str,
    organisation: Organisation | None = None,
    paragraph_anchor: str | None = None,
    parent: Comment | None = None,
    as_organisation: bool = False,
) -> Comment:
    """`as_organisation`: submitted as an organisation's cleared contribution
    (services.drafting); otherwise an individual's comment, refused when the process takes
    only organisation contributions (facilitators always answer)."""
    voice = comment_voice(actor, process, version, organisation)
    if voice.organisation is not None and not as_organisation:
        _require_individual_input(process)
    text = require_visible(canonicalise(body).strip(), field="body")
    if not text:
        raise DomainError(str(_l("Write a comment.")), field="body")
    if len(text) > MAX_COMMENT:
        raise DomainError(str(_l("The comment is too long.")), field="body")
    if parent is not None:
        if parent.version_id != version.id:
            raise DomainError(str(_l("Reply on the version of the comment.")))
        paragraph_anchor = parent.paragraph_anchor
    elif paragraph_anchor and version.paragraph(paragraph_anchor) is None:
        raise DomainError(str(_l("This paragraph is not in this version.")))
    current = process.open_round()
    comment = Comment(
        version_id=version.id,
        paragraph_anchor=paragraph_anchor or None,
        parent_id=parent.id if parent else None,
        # A reply belongs to the round of its thread (so it is in that disposition report).
        round_id=parent.round_id if parent else (current.id if current else None),
        author_id=actor.id,
        organisation_id=voice.organisation.id if voice.organisation else None,
        author_role=voice.role,
        body=text,
    )
    comment.author = actor
    comment.organisation = voice.organisation
    db.session.add(comment)
    db.session.flush()
    audit.record(
        "comment.created",
        actor=actor,
        object_type="comment",
        object_id=comment.id,
        organisation_id=comment.organisation_id,
        payload={
            "version": version.id,
            "paragraph": comment.paragraph_anchor,
            "parent": comment.parent_id,
            "body": text,
        },
    )
    if parent is not None:
        events.record(
            events.CommentReplied(comment_id=comment.id, parent_id=parent.id, version_id=version.id)
        )
    return comment


def edit_comment(comment: Comment, *, actor: User, body: str) -> None:
    if not can_edit_comment(actor, comment):
        raise Forbidden(str(_l("This comment can no longer be edited.")))
    text = require_visible(canonicalise(body).strip(), field="body")
    if not text:
        raise DomainError(str(_l("Write a comment.")), field="body")
    if len(text) > MAX_COMMENT:
        raise DomainError(str(_l("The comment is too long.")), field="body")
    if text == comment.body:
        return
    db.session.add(CommentRevision(comment_id=comment.id, body=comment.body, reason="edit"))
    previous = comment.body
    comment.body = text
    comment.edited_at = utcnow()
    audit.record(
        "comment.edited",
        actor=actor,
        object_type="comment",
        object_id=comment.id,
        organisation_id=comment.organisation_id,
        payload={"from": previous, "to": text},
    )
    db.session.flush()


def remove_comment(comment: Comment, process: Process, *, actor: User) -> None:
    """The text disappears from the page, a tombstone says who removed it and when; the
    text itself is kept in the comment's history and the audit trail."""
    if not can_remove_comment(actor, comment, process):
        raise Forbidden(str(_l("You may not remove this comment.")))
    db.session.add(CommentRevision(comment_id=comment.id, body=comment.body, reason="removal"))
    comment.body = ""
    comment.deleted_at = utcnow()
    comment.deleted_by_id = actor.id
    audit.record(
        "comment.removed",
        actor=actor,
        object_type="comment",
        object_id=comment.id,
        organisation_id=comment.organisation_id,
        payload={"by_author": comment.author_id == actor.id},
    )
    db.session.flush()


def comment_counts(version_id: int) -> dict[str | None, int]:
    """How many comments (replies included) each paragraph of a version has; None: the
    comments on the whole text."""
    rows = db.session.execute(
        select(Comment.paragraph_anchor, func.count())
        .where(Comment.version_id == version_id)
        .group_by(Comment.paragraph_anchor)
    )
    return {anchor: count for anchor, count in rows}


def load_comments(
    version_ids: Iterable[int], *, anchors: Iterable[str | None] | None = None
) -> list[Comment]:
    """All comments of these versions with author and organisation, in one query; with
    `anchors`, only those on these paragraphs (None: on the whole text). A reply belongs
    to its parent's paragraph, so threads stay whole."""
    where = [Comment.version_id.in_(list(version_ids))]
    if anchors is not None:
        wanted = set(anchors)
        named = sorted(a for a in wanted if a is not None)
        where.append(
            or_(Comment.paragraph_anchor.in_(named), Comment.paragraph_anchor.is_(None))
            if None in wanted
            else Comment.paragraph_anchor.in_(named)
        )
    return list(
        db.session.execute(
            select(Comment)
            .where(*where)
            # Authors' memberships are not shown: loading them would add a query whenever
            # a thread has people not seen before in this request.
            .options(
                joinedload(Comment.author).lazyload(User.memberships),
                joinedload(Comment.organisation),
            )
            .order_by(Comment.created_at, Comment.id)
        )
        .unique()
        .scalars()
    )


@dataclass
class Thread:
    """A comment with its replies, for threaded display."""

    comment: Comment
    replies: list[Thread] = field(default_factory=list)

    @property
    def size(self) -> int:
        return 1 + sum(r.size for r in self.replies)


def threads(comments: Sequence[Comment]) -> dict[str | None, list[Thread]]:
    """Comments grouped per paragraph anchor (None: on the whole version) as trees."""
    nodes = {c.id: Thread(c) for c in comments}
    grouped: dict[str | None, list[Thread]] = {}
    for comment in comments:
        node = nodes[comment.id]
        parent = nodes.get(comment.parent_id) if comment.parent_id else None
        if parent is not None:
            parent.replies.append(node)
        else:
            grouped.setdefault(comment.paragraph_anchor, []).append(node)
    return grouped


# --- Amendments -------------------------------------------------------------------------------


def _range(version: Version, start: str, end: str | None) -> list[VersionParagraph]:
    paragraphs = version.paragraphs
    first = next((i for i, p in enumerate(paragraphs) if p.anchor == start), None)
    last = next((i for i, p in enumerate(paragraphs) if p.anchor == (end or start)), None)
    if first is None or last is None:
        raise DomainError(str(_l("This paragraph is not in this version.")), field="paragraph")
    if last < first:
        raise DomainError(
            str(_l("The last paragraph must come after the first.")), field="end_paragraph"
        )
    return paragraphs[first : last + 1]


def propose_amendment(
    version: Version,
    process: Process,
    *,
    actor: User,
    organisation: Organisation,
    proposed_text: str,
    rationale: str,
    paragraph_anchor: str | None = None,
    end_anchor: str | None = None,
    insert_after_anchor: str | None = None,
    as_organisation: bool = False,
) -> Amendment:
    """During consultation an organisation proposes to replace (or remove) paragraphs of
    the round's version, or to insert new ones, and says why. `as_organisation`: submitted
    as the organisation's cleared contribution (services.drafting); an individual's
    proposal is refused when the process takes only organisation contributions."""
    decision = permissions.gate(actor, Action.PROPOSE_AMENDMENT, process, organisation)
    if not decision:
        raise Forbidden(decision.reason)
    if not as_organisation:
        _require_individual_input(process)
    current, target = round_version(process, version.position)
    if target is None or target.id != version.id:
        raise DomainError(str(_l("In this round, amendments go to the version it is about.")))
    proposed = require_visible(canonicalise(proposed_text).strip("\n"), field="proposed_text")
    reason = visible_line(rationale, field="rationale")
    if not reason:
        raise DomainError(str(_l("Explain why you propose this change.")), field="rationale")
    if len(reason) > MAX_RATIONALE or len(proposed) > MAX_BODY:
        raise DomainError(str(_l("The text is too long.")), field="proposed_text")
    if (paragraph_anchor is None) == (insert_after_anchor is None):
        raise DomainError(str(_l("Choose a paragraph.")), field="paragraph")
    original = ""
    if paragraph_anchor is not None:
        paragraphs = _range(version, paragraph_anchor, end_anchor)
        original = "\n\n".join(p.text for p in paragraphs)
        if len(paragraphs) == 1:
            end_anchor = None
        if join_blocks([proposed]).strip("\n") == original:
            raise DomainError(
                str(_l("The proposed text is the same as the current text.")),
                field="proposed_text",
            )
    else:
        end_anchor = None
        _range(version, insert_after_anchor, None)  # type: ignore[arg-type]
        if not proposed:
            raise DomainError(str(_l("Write the new paragraph.")), field="proposed_text")
    number = (
        db.session.execute(
            select(func.max(Amendment.number)).where(Amendment.position_id == version.position_id)
        ).scalar_one_or_none()
        or 0
    ) + 1
    amendment = Amendment(
        position_id=version.position_id,
        number=number,
        version_id=version.id,
        round_id=current.id if current else None,
        organisation_id=organisation.id,
        author_id=actor.id,
        paragraph_anchor=paragraph_anchor,
        end_anchor=end_anchor,
        insert_after_anchor=insert_after_anchor,
        original_text=original,
        proposed_text=proposed,
        rationale=reason,
        state=AmendmentState.PENDING,
    )
    amendment.organisation = organisation
    amendment.author = actor
    db.session.add(amendment)
    db.session.flush()
    audit.record(
        "amendment.proposed",
        actor=actor,
        object_type="amendment",
        object_id=amendment.id,
        organisation_id=organisation.id,
        payload={
            "position": version.position_id,
            "number": number,
            "version": version.id,
            "paragraph": paragraph_anchor,
            "end": end_anchor,
            "insert_after": insert_after_anchor,
            "proposed_text": proposed,
            "rationale": reason,
        },
    )
    return amendment


def withdraw_amendment(amendment: Amendment, *, actor: User) -> None:
    if amendment.state != AmendmentState.PENDING:
        raise DomainError(str(_l("Only a pending amendment can be withdrawn.")))
    if not may_withdraw(actor, amendment):
        raise Forbidden(str(_l("Only the proposing organisation can withdraw this amendment.")))
    amendment.state = AmendmentState.WITHDRAWN
    amendment.withdrawn_at = utcnow()
    audit.record(
        "amendment.withdrawn",
        actor=actor,
        object_type="amendment",
        object_id=amendment.id,
        organisation_id=amendment.organisation_id,
        payload={"number": amendment.number},
    )
    db.session.flush()


DECISIONS = (AmendmentState.ACCEPTED, AmendmentState.ACCEPTED_IN_PART, AmendmentState.REJECTED)


def decide_amendment(
    amendment: Amendment,
    process: Process,
    *,
    actor: User,
    decision: AmendmentState,
    reason: str,
    adopted_text: str | None = None,
) -> None:
    """The facilitator accepts, accepts in part (with the text actually adopted) or
    rejects — always with a reason. A decision can be revised until it is applied."""
    _require_facilitator(actor, process)
    if decision not in DECISIONS:
        raise DomainError(str(_l("Choose a decision.")), field="decision")
    if amendment.state == AmendmentState.WITHDRAWN:
        raise DomainError(str(_l("This amendment was withdrawn.")))
    if amendment.applied_in_version_id is not None:
        raise Conflict(str(_l("This amendment is already part of a version.")))
    why = visible_line(reason, field="reason")
    if not why:
        raise DomainError(str(_l("Give the reason for this decision.")), field="reason")
    drafting.leave_consolidation(amendment, actor)
    adopted: str | None
    if decision == AmendmentState.ACCEPTED:
        adopted = require_visible(amendment.proposed_text, field="decision")
    elif decision == AmendmentState.ACCEPTED_IN_PART:
        adopted = require_visible(
            canonicalise(adopted_text or "").strip("\n"), field="adopted_text"
        )
        if not adopted and amendment.is_insertion:
            raise DomainError(str(_l("Enter the text that is adopted.")), field="adopted_text")
        if adopted == amendment.proposed_text:
            raise DomainError(
                str(_l("This is the proposed text: choose \u201caccepted\u201d instead.")),
                field="adopted_text",
            )
        if adopted == amendment.original_text:
            raise DomainError(
                str(_l("This is the current text: choose \u201crejected\u201d instead.")),
                field="adopted_text",
            )
    else:
        adopted = None
    previous = amendment.state
    amendment.state = decision
    amendment.adopted_text = adopted
    amendment.decision_reason = why
    amendment.decided_by_id = actor.id
    amendment.decided_at = utcnow()
    audit.record(
        "amendment.decided",
        actor=actor,
        object_type="amendment",
        object_id=amendment.id,
        organisation_id=amendment.organisation_id,
        payload={
            "number": amendment.number,
            "from": previous.value,
            "decision": decision.value,
            "reason": why,
            "adopted_text": adopted,
        },
    )
    events.record(
        events.AmendmentDecided(
            amendment_id=amendment.id, position_id=amendment.position_id, state=decision.value
        )
    )
    db.session.flush()


def load_amendments(position_id: int, version_id: int | None = None) -> list[Amendment]:
    """Amendments of a position (or of one version) with organisation and people, in one
    query."""
    statement = (
        select(Amendment)
        .where(Amendment.position_id == position_id)
        .options(
            joinedload(Amendment.organisation),
            joinedload(Amendment.author).lazyload(User.memberships),
            joinedload(Amendment.decided_by).lazyload(User.memberships),
        )
        .order_by(Amendment.number)
    )
    if version_id is not None:
        statement = statement.where(Amendment.version_id == version_id)
    return list(db.session.execute(statement).unique().scalars())


@dataclass(frozen=True)
class AmendmentConflict:
    """Why an accepted amendment cannot be applied to the latest version by itself."""

    amendment: Amendment
    reason: str
    current_text: str


@dataclass(frozen=True)
class ApplicationPlan:
    """What "apply the accepted amendments" would create, computed before anything is."""

    base: Version
    ready: list[Amendment]
    conflicts: list[AmendmentConflict]
    paragraphs: list[tuple[str, str]]
    body: str
    sha256: str
    changes: list[BlockChange]
    consolidations: tuple[Consolidation, ...] = ()

    @property
    def conflicting_ids(self) -> set[int]:
        return {c.amendment.id for c in self.conflicts}


def find_conflict(
    amendment: Amendment, base: Version, claimed: dict[str, int] | None = None
) -> AmendmentConflict | None:
    """The conflict rule: an amendment applies cleanly when its paragraphs still exist in
    the latest version and their text is still the text it was written (or re-based)
    against; and no other amendment applied in the same step claims the same paragraphs.
    """
    claimed = claimed or {}
    anchors = [p.anchor for p in base.paragraphs]
    if amendment.is_insertion:
        if amendment.insert_after_anchor not in anchors:
            return AmendmentConflict(
                amendment,
                str(_l("The paragraph it follows is no longer in the latest version.")),
                "",
            )
        return None
    try:
        paragraphs = _range(base, amendment.paragraph_anchor or "", amendment.end_anchor)
    except DomainError:
        return AmendmentConflict(
            amendment,
            str(_l("Its paragraph is no longer in the latest version.")),
            "",
        )
    current = "\n\n".join(p.text for p in paragraphs)
    if amendment.base_version_id != base.id and current != amendment.original_text:
        return AmendmentConflict(
            amendment,
            str(_l("Its paragraph has changed since the amendment was written.")),
            current,
        )
    for paragraph in paragraphs:
        if paragraph.anchor in claimed:
            return AmendmentConflict(
                amendment,
                str(
                    _l(
                        "It changes the same paragraph as amendment %(n)d.",
                        n=claimed[paragraph.anchor],
                    )
                ),
                current,
            )
    return None


def plan_application(position: Position, amendments: Sequence[Amendment]) -> ApplicationPlan:
    """Apply every accepted, not yet applied amendment to the latest version, in paragraph
    order; conflicting ones are left out and listed. A consolidation (a compromise text
    for a group of overlapping amendments, services.drafting) is applied as one
    replacement of the stretch its group covers, before the single amendments."""
    base = position.latest
    assert base is not None
    consolidated = drafting.consolidations_of(position.id)
    candidates = [
        a
        for a in amendments
        if a.is_accepted and a.applied_in_version_id is None and a.id not in consolidated
    ]
    claimed: dict[str, int] = {}
    ready: list[Amendment] = []
    conflicts: list[AmendmentConflict] = []
    replacements: dict[str, tuple[list[str], str]] = {}
    insertions: dict[str, list[str]] = {}
    applied_consolidations = []
    by_id = {a.id: a for a in amendments}
    for consolidation in sorted(set(consolidated.values()), key=lambda c: c.id):
        members = [by_id[i] for i in consolidation.amendment_ids if i in by_id]
        if not members:
            continue
        problem = drafting.consolidation_conflict(consolidation, base, claimed)
        if problem is not None:
            conflicts.extend(AmendmentConflict(m, problem, "") for m in members)
            continue
        applied_consolidations.append(consolidation)
        ready.extend(members)
        if consolidation.insertion:
            insertions.setdefault(consolidation.paragraph_anchor, []).append(
                consolidation.compromise_text
            )
            continue
        covered = [
            p.anchor for p in _range(base, consolidation.paragraph_anchor, consolidation.end_anchor)
        ]
        for anchor in covered:
            claimed[anchor] = members[0].number
        replacements[covered[0]] = (covered, consolidation.compromise_text)
    for amendment in candidates:
        conflict = find_conflict(amendment, base, claimed)
        if conflict is not None:
            conflicts.append(conflict)
            continue
        ready.append(amendment)
        if amendment.is_insertion:
            insertions.setdefault(amendment.insert_after_anchor or "", []).append(
                amendment.adopted_text or ""
            )
            continue
        covered = [
            p.anchor for p in _range(base, amendment.paragraph_anchor or "", amendment.end_anchor)
        ]
        for anchor in covered:
            claimed[anchor] = amendment.number
        replacements[covered[0]] = (covered, amendment.adopted_text or "")
    hints: list[tuple[str | None, str]] = []
    skip: set[str] = set()
    for paragraph in base.paragraphs:
        if paragraph.anchor in replacements:
            covered, text = replacements[paragraph.anchor]
            skip.update(covered)
            for n, block in enumerate(split_blocks(text)):
                hints.append((paragraph.anchor if n == 0 else None, block))
        elif paragraph.anchor not in skip:
            hints.append((paragraph.anchor, paragraph.text))
        for inserted in insertions.get(paragraph.anchor, []):
            hints.extend((None, block) for block in split_blocks(inserted))
    blocks = [text for _, text in hints]
    fixed = {i: anchor for i, (anchor, _) in enumerate(hints) if anchor is not None}
    previous = [(p.anchor, p.text) for p in base.paragraphs]
    anchored = list(zip(assign_anchors(blocks, previous, fixed), blocks, strict=True))
    body = join_blocks(blocks)
    paragraphs = _paragraphs(body, previous, anchored) if body else []
    ready.sort(key=lambda a: a.number)
    return ApplicationPlan(
        base=base,
        ready=ready,
        conflicts=conflicts,
        paragraphs=paragraphs,
        body=body,
        sha256=sha256_hex(body),
        changes=diff_blocks(previous, paragraphs),
        consolidations=tuple(applied_consolidations),
    )


def apply_amendments(
    position: Position,
    process: Process,
    *,
    actor: User,
    change_summary: str,
    expected_sha256: str,
) -> Version:
    """Create the next version from the accepted amendments — exactly the previewed text:
    when anything changed since the preview (its hash differs) nothing is created."""
    _require_open_process(process)
    _require_facilitator(actor, process)
    plan = plan_application(position, load_amendments(position.id))
    if not plan.ready:
        raise DomainError(str(_l("There are no accepted amendments to apply.")))
    if plan.sha256 != expected_sha256:
        raise Conflict(
            str(_l("Something changed since the preview. Check the new preview and confirm."))
        )
    if not plan.body.strip():
        raise DomainError(str(_l("The amendments would leave no text.")))
    summary = visible_line(change_summary, field="change_summary") or str(
        _l(
            "Amendments %(numbers)s applied.",
            numbers=", ".join(str(a.number) for a in plan.ready),
        )
    )
    version = _new_version(
        position,
        actor=actor,
        body=plan.body,
        change_summary=summary,
        hints=plan.paragraphs,
        amendments=plan.ready,
    )
    for consolidation in plan.consolidations:
        consolidation.applied_in_version_id = version.id
    db.session.flush()
    return version


def rebase_amendment(
    amendment: Amendment,
    process: Process,
    *,
    actor: User,
    anchor: str,
    adopted_text: str,
) -> None:
    """Settle a conflict by hand: the facilitator says which paragraph of the latest
    version the decision now applies to, and with which text."""
    _require_facilitator(actor, process)
    if not amendment.is_accepted or amendment.applied_in_version_id is not None:
        raise DomainError(
            str(_l("Only an accepted amendment that is not yet applied can be re-based."))
        )
    position = db.session.get(Position, amendment.position_id)
    assert position is not None and position.latest is not None
    latest = position.latest
    adopted = require_visible(canonicalise(adopted_text).strip("\n"), field="adopted_text")
    if amendment.is_insertion:
        _range(latest, anchor, None)
        if not adopted:
            raise DomainError(str(_l("Write the new paragraph.")), field="adopted_text")
        before = {"insert_after": amendment.insert_after_anchor}
        amendment.insert_after_anchor = anchor
        original = ""
    else:
        end = amendment.end_anchor if anchor == amendment.paragraph_anchor else None
        try:
            paragraphs = _range(latest, anchor, end)
        except DomainError:
            paragraphs = _range(latest, anchor, None)
            end = None
        original = "\n\n".join(p.text for p in paragraphs)
        before = {"paragraph": amendment.paragraph_anchor, "end": amendment.end_anchor}
        amendment.paragraph_anchor = anchor
        amendment.end_anchor = end if len(paragraphs) > 1 else None
    amendment.original_text = original
    amendment.adopted_text = adopted
    amendment.rebased_on_version_id = latest.id
    audit.record(
        "amendment.rebased",
        actor=actor,
        object_type="amendment",
        object_id=amendment.id,
        organisation_id=amendment.organisation_id,
        payload={
            "number": amendment.number,
            "onto_version": latest.id,
            "before": before,
            "anchor": anchor,
            "adopted_text": adopted,
        },
    )
    db.session.flush()


# --- Differences between versions -------------------------------------------------------------


@dataclass(frozen=True)
class VersionDiff:
    old: Version
    new: Version
    changes: list[BlockChange]

    @property
    def lines(self) -> drafting.DiffLines:
        """Each row's line numbers in both versions (consensus.domain.lines)."""
        return drafting.DiffLines(
            [(p.anchor, p.text) for p in self.old.paragraphs],
            [(p.anchor, p.text) for p in self.new.paragraphs],
        )

    @property
    def counts(self) -> dict[str, int]:
        counts = {"changed": 0, "added": 0, "removed": 0, "equal": 0}
        for change in self.changes:
            counts[change.kind] += 1
        return counts


def compare(old: Version, new: Version) -> VersionDiff:
    return VersionDiff(
        old,
        new,
        diff_blocks(
            [(p.anchor, p.text) for p in old.paragraphs],
            [(p.anchor, p.text) for p in new.paragraphs],
        ),
    )


# --- The disposition report (verwerkingsnota) -------------------------------------------------


@dataclass
class OrganisationInput:
    organisation: Organisation
    amendments: list[Amendment] = field(default_factory=list)
    comments: list[Thread] = field(default_factory=list)


@dataclass
class DispositionReport:
    """For one round: every amendment and comment per organisation, with its decision."""

    process: Process
    round: Round
    position: Position | None
    version: Version | None
    organisations: list[OrganisationInput]
    ordinals: dict[tuple[int, str], int]
    versions: dict[int, Version]
    generated_at: datetime
    _references: drafting.References | None = field(default=None, repr=False)
    # Amendments submitted as an organisation's cleared contribution (shown as its own).
    from_organisation: set[int] = field(default_factory=set)
    # The organisations' answers to the proposed disposition (issue 21), per amendment id.
    review: DispositionReview | None = None
    feedback: dict[int, DispositionFeedback] = field(default_factory=dict)

    @property
    def references(self) -> drafting.References:
        """Line references ("p. 3, lines 12–14") in the versions of this report: the same
        numbers as the line-numbered draft PDF (consensus.domain.lines)."""
        if self._references is None:
            self._references = drafting.References(self.versions.values())
        return self._references

    def line_label(self, item: Amendment | Comment) -> str:
        """The lines an amendment changes, or the lines of a comment's paragraph."""
        if isinstance(item, Amendment):
            return self.references.label(item)
        return self.references.paragraph(item.version_id, item.paragraph_anchor)

    def paragraph_label(self, version_id: int, anchor: str | None) -> str:
        if anchor is None:
            return str(_l("whole text"))
        ordinal = self.ordinals.get((version_id, anchor))
        return str(_l("paragraph %(n)d", n=ordinal)) if ordinal else anchor

    @property
    def totals(self) -> dict[str, int]:
        totals = {state.value: 0 for state in AmendmentState}
        totals["comments"] = 0
        for entry in self.organisations:
            for amendment in entry.amendments:
                totals[amendment.state.value] += 1
            totals["comments"] += len(entry.comments)
        return totals


def disposition(process: Process, round_: Round) -> DispositionReport:
    """Gather the round's amendments and comments per participating organisation."""
    amendments = list(
        db.session.execute(
            select(Amendment)
            .where(Amendment.round_id == round_.id)
            .options(
                joinedload(Amendment.organisation),
                # The report shows names, never memberships: not loaded (nor counted).
                joinedload(Amendment.author).lazyload(User.memberships),
                joinedload(Amendment.decided_by).lazyload(User.memberships),
            )
            .order_by(Amendment.number)
        )
        .unique()
        .scalars()
    )
    comments = list(
        db.session.execute(
            select(Comment)
            .where(Comment.round_id == round_.id)
            .options(
                joinedload(Comment.author).lazyload(User.memberships),
                joinedload(Comment.organisation),
            )
            .order_by(Comment.created_at, Comment.id)
        )
        .unique()
        .scalars()
    )
    version_ids = {a.version_id for a in amendments} | {c.version_id for c in comments}
    version_ids |= {a.applied_in_version_id for a in amendments if a.applied_in_version_id}
    version_ids |= {a.rebased_on_version_id for a in amendments if a.rebased_on_version_id}
    if round_.version_id:
        version_ids.add(round_.version_id)
    versions = {
        v.id: v
        for v in db.session.execute(
            select(Version)
            .where(Version.id.in_(version_ids))
            .options(
                joinedload(Version.created_by).lazyload(User.memberships),
                # The position in the same statement and never its versions (their selectin
                # ran or not with what an earlier request left in the identity map).
                joinedload(Version.position).lazyload(Position.versions),
            )
        ).scalars()
    }
    ordinals = {(v.id, p.anchor): p.ordinal for v in versions.values() for p in v.paragraphs}
    review = drafting.review_of(round_.id)
    version = versions.get(round_.version_id) if round_.version_id else None
    position = version.position if version else None
    entries: dict[int, OrganisationInput] = {
        p.organisation_id: OrganisationInput(p.organisation) for p in process.current_participations
    }
    for amendment in amendments:
        entries.setdefault(
            amendment.organisation_id, OrganisationInput(amendment.organisation)
        ).amendments.append(amendment)
    for anchor_threads in threads(comments).values():
        for thread in anchor_threads:
            organisation = thread.comment.organisation
            if organisation is None:
                continue  # the facilitator's own remarks appear as replies
            entries.setdefault(organisation.id, OrganisationInput(organisation)).comments.append(
                thread
            )
    return DispositionReport(
        process=process,
        round=round_,
        position=position,
        version=version,
        organisations=sorted(entries.values(), key=lambda e: e.organisation.name),
        ordinals=ordinals,
        versions=versions,
        generated_at=_state_as_of(round_, amendments, comments, review),
        from_organisation=drafting.organisation_contribution_ids(position.id)
        if position
        else set(),
        review=review,
        feedback={item.amendment_id: item for item in review.items} if review else {},
    )


def _state_as_of(
    round_: Round,
    amendments: list[Amendment],
    comments: list[Comment],
    review: DispositionReview | None = None,
) -> datetime:
    """The moment of the report's latest change: two reports of the same state are the same
    report (byte for byte, as PDF too), and the date says how current it is."""
    moments = [round_.opened_at, round_.closed_at]
    for amendment in amendments:
        moments += [amendment.created_at, amendment.decided_at, amendment.withdrawn_at]
    for comment in comments:
        moments += [comment.created_at, comment.edited_at, comment.deleted_at]
    if review is not None:  # the proposed disposition and the organisations' answers
        moments.append(review.sent_at)
        moments += [item.responded_at for item in review.items]
    return max((m for m in moments if m is not None), default=round_.process.created_at)


def _replies_text(thread: Thread) -> str:
    lines = []
    for reply in thread.replies:
        who = reply.comment.author.display_name if reply.comment.author else "—"
        body = reply.comment.body if not reply.comment.is_deleted else str(_l("(removed)"))
        lines.append(f"{who}: {body}")
        lines.extend(_replies_text(reply).splitlines())
    return "\n".join(lines)


def disposition_csv(report: DispositionReport, labels: dict[str, str]) -> str:
    """One row per amendment and per comment; UTF-8 with a byte-order mark so that
    spreadsheet programs read the accents correctly. Every cell opens as text (csvsafe)."""
    out = io.StringIO()
    writer = csvsafe.writer(out)
    writer.writerow(
        [
            str(_l("Kind")),
            str(_l("Number")),
            str(_l("Organisation")),
            str(_l("Paragraph")),
            str(_l("Lines")),
            str(_l("Author")),
            str(_l("Original text")),
            str(_l("Proposal or comment")),
            str(_l("Rationale")),
            str(_l("Decision")),
            str(_l("Adopted text")),
            str(_l("Reason or response")),
            str(_l("Applied in version")),
            str(_l("Date")),
        ]
    )
    for entry in report.organisations:
        for a in entry.amendments:
            applied = report.versions.get(a.applied_in_version_id or 0)
            writer.writerow(
                [
                    str(_l("Amendment")),
                    a.number,
                    entry.organisation.name,
                    report.paragraph_label(
                        a.version_id, a.paragraph_anchor or a.insert_after_anchor
                    )
                    + (f" ({_l('new paragraph after it')})" if a.is_insertion else ""),
                    report.line_label(a),
                    entry.organisation.name
                    if a.id in report.from_organisation
                    else (a.author.display_name if a.author else ""),
                    a.original_text,
                    a.proposed_text,
                    a.rationale,
                    labels[a.state.value],
                    a.adopted_text or "",
                    a.decision_reason or "",
                    applied.number if applied else "",
                    a.created_at.date().isoformat(),
                ]
            )
        for thread in entry.comments:
            c = thread.comment
            writer.writerow(
                [
                    str(_l("Comment")),
                    c.id,
                    entry.organisation.name,
                    report.paragraph_label(c.version_id, c.paragraph_anchor),
                    report.line_label(c),
                    entry.organisation.name
                    if c.author_role == drafting.ORGANISATION_ROLE
                    else (c.author.display_name if c.author else ""),
                    "",
                    c.body if not c.is_deleted else str(_l("(removed)")),
                    "",
                    "",
                    "",
                    _replies_text(thread),
                    "",
                    c.created_at.date().isoformat(),
                ]
            )
    return "\ufeff" + out.getvalue()
