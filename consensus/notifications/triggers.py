"""What triggers which notification, and to whom: the event writers.

Each function here is registered with `events.within` (consensus.notifications.register):
it runs inside the transaction that records the event and calls `outbox.notify`. The people
always come from the rule book (consensus.permissions): who can act for an organisation in a
round (`who_can_act_many`: mandate holders and active substitutes, officials for clearance),
or who takes part for it (`who_takes_part_many`) — never from a list of our own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from consensus import events, permissions
from consensus.extensions import db
from consensus.formats import cldr
from consensus.models import (
    AgendaItem,
    Amendment,
    AmendmentState,
    Comment,
    CoSignature,
    DispositionReview,
    FollowUpAction,
    Meeting,
    NotificationKind,
    Organisation,
    Outcome,
    Position,
    Process,
    Round,
    RoundType,
    User,
    Version,
)
from consensus.notifications.compose import Content, absolute_url
from consensus.notifications.outbox import Person, notify
from consensus.permissions import drafting as drafting_rules


def _names(organisations: list[Organisation]) -> str:
    names = [o.name for o in organisations]
    if not names:
        return _("your organisation")
    if len(names) == 1:
        return names[0]
    return _("%(list)s and %(last)s", list=", ".join(names[:-1]), last=names[-1])


def _moment(moment: datetime) -> str:
    return cldr.format_moment(moment, "d MMMM y, HH:mm")


def _round_link(round_: Round, process: Process) -> str:
    if round_.type == RoundType.SIGNING:
        return absolute_url("signing.round_page", slug=process.slug)
    return absolute_url("processes.round_page", slug=process.slug, round_id=round_.id)


def _acting(round_: Round, organisation_ids: Iterable[int]) -> list[Person]:
    acting = permissions.who_can_act_many((round_, org_id) for org_id in organisation_ids)
    return sorted({(user_id, org_id) for (_, org_id), ids in acting.items() for user_id in ids})


def _taking_part(organisation_ids: Iterable[int]) -> list[Person]:
    people = permissions.who_takes_part_many(organisation_ids)
    return sorted({(user_id, org_id) for org_id, ids in people.items() for user_id in ids})


def _facilitators(process: Process) -> list[Person]:
    return [(user_id, None) for user_id in sorted(process.facilitator_ids)]


def _round_content(
    round_: Round, process: Process, subject: str, paragraphs: list[str], label: str
) -> Content:
    return Content(
        subject=subject,
        paragraphs=paragraphs,
        link=_round_link(round_, process),
        link_label=label,
        deadline=round_.closes_at,
        calendar_uid=f"round-{round_.id}@consensus",
        calendar_title=_(
            "Deadline: %(round)s — %(process)s", round=round_.title, process=process.title
        ),
    )


# --- Rounds -------------------------------------------------------------------------------------


def on_round_opened(event: events.RoundOpened) -> None:
    """A round opened: everyone who can act in it for a participating organisation (a
    signing round asks for signatures)."""
    round_ = db.session.get(Round, event.round_id)
    if round_ is None:
        return
    process = round_.process
    signing = round_.type == RoundType.SIGNING

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {
            "round": round_.title,
            "process": process.title,
            "orgs": _names(organisations),
            "deadline": _moment(round_.closes_at),
        }
        if signing:
            subject = _("Your signature is requested: %(process)s", **values)
            lines = [
                _(
                    "The signing round \u201c%(round)s\u201d of \u201c%(process)s\u201d has "
                    "opened. You can co-sign the joint letter for %(orgs)s until %(deadline)s.",
                    **values,
                )
            ]
            label = _("Go to the signing page")
        else:
            subject = _("Round open: \u201c%(round)s\u201d (%(process)s)", **values)
            lines = [
                _(
                    "The round \u201c%(round)s\u201d of \u201c%(process)s\u201d has opened. "
                    "You can act for %(orgs)s until %(deadline)s.",
                    **values,
                )
            ]
            label = _("Open the round")
        if round_.instructions:
            lines.append(round_.instructions)
        return _round_content(round_, process, subject, lines, label)

    notify(
        NotificationKind.SIGNING_REQUESTED if signing else NotificationKind.ROUND_OPENED,
        _acting(round_, process.participant_ids),
        make,
        process_id=process.id,
        round_id=round_.id,
    )


def on_reminder_sent(event: events.ReminderSent) -> None:
    """The facilitator's reminder: the people named in the event, who are the rule book's
    people for the organisations that have not acted (services.processes.send_reminder)."""
    round_ = db.session.get(Round, event.round_id)
    if round_ is None:
        return
    process = round_.process

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {
            "round": round_.title,
            "process": process.title,
            "orgs": _names(organisations),
            "deadline": _moment(round_.closes_at),
        }
        return _round_content(
            round_,
            process,
            _("Reminder: \u201c%(round)s\u201d is waiting for %(orgs)s", **values),
            [
                _(
                    "Reminder from the facilitator: \u201c%(round)s\u201d in \u201c%(process)s"
                    "\u201d is waiting for your organisation.",
                    **values,
                ),
                _("You can act for %(orgs)s until %(deadline)s.", **values),
            ],
            _("Open the round"),
        )

    notify(
        NotificationKind.REMINDER,
        event.people,
        make,
        process_id=process.id,
        round_id=round_.id,
    )


def on_deadline_approaching(event: events.DeadlineApproaching) -> None:
    round_ = db.session.get(Round, event.round_id)
    if round_ is None:
        return
    process = round_.process

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {
            "round": round_.title,
            "process": process.title,
            "orgs": _names(organisations),
            "deadline": _moment(round_.closes_at),
        }
        return _round_content(
            round_,
            process,
            _("Deadline approaching: \u201c%(round)s\u201d closes on %(deadline)s", **values),
            [
                _(
                    "%(orgs)s has not acted yet in \u201c%(round)s\u201d of \u201c%(process)s"
                    "\u201d. The round closes on %(deadline)s.",
                    **values,
                ),
            ],
            _("Open the round"),
        )

    notify(
        NotificationKind.DEADLINE,
        event.people,
        make,
        process_id=process.id,
        round_id=round_.id,
    )


def on_round_closed(event: events.RoundClosed) -> None:
    """An endorsement round closed: its outcome is fixed (by the round-closed hook, before
    this event). Everyone taking part and the facilitators hear it."""
    if event.round_type != RoundType.ENDORSEMENT.value:
        return
    outcome = db.session.execute(
        select(Outcome).where(Outcome.round_id == event.round_id)
    ).scalar_one_or_none()
    round_ = db.session.get(Round, event.round_id)
    if outcome is None or round_ is None:
        return
    process = round_.process

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {"round": round_.title, "process": process.title}
        if outcome.adopted:
            subject = _("Adopted: \u201c%(process)s\u201d", **values)
            first = _(
                "The endorsement round \u201c%(round)s\u201d of \u201c%(process)s\u201d has "
                "closed: the position was adopted.",
                **values,
            )
        else:
            subject = _("Not adopted: \u201c%(process)s\u201d", **values)
            first = _(
                "The endorsement round \u201c%(round)s\u201d of \u201c%(process)s\u201d has "
                "closed: the position was not adopted.",
                **values,
            )
        tally = _(
            "Endorsed: %(endorsed)d, with reservations: %(reservations)d, abstained: "
            "%(abstained)d, objected: %(objected)d, no response: %(none)d.",
            endorsed=outcome.endorsed,
            reservations=outcome.with_reservations,
            abstained=outcome.abstained,
            objected=outcome.objected,
            none=outcome.no_response,
        )
        return Content(
            subject=subject,
            paragraphs=[first, tally],
            link=absolute_url("processes.round_page", slug=process.slug, round_id=round_.id),
            link_label=_("See the outcome"),
        )

    notify(
        NotificationKind.OUTCOME,
        _taking_part(process.participant_ids) + _facilitators(process),
        make,
        process_id=process.id,
        round_id=round_.id,
    )


# --- Texts ---------------------------------------------------------------------------------------


def on_version_published(event: events.VersionPublished) -> None:
    """A new version: everyone taking part for a participating organisation (its author
    knows already)."""
    version = db.session.get(Version, event.version_id)
    process = db.session.get(Process, event.process_id)
    if version is None or process is None:
        return
    position = version.position
    people = [
        person
        for person in _taking_part(process.participant_ids) + _facilitators(process)
        if person[0] != version.created_by_id
    ]

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {"number": version.number, "title": position.title, "process": process.title}
        lines = [
            _(
                "Version %(number)d of \u201c%(title)s\u201d in \u201c%(process)s\u201d has "
                "been published.",
                **values,
            )
        ]
        if version.change_summary:
            lines.append(_("What changed: %(summary)s", summary=version.change_summary))
        return Content(
            subject=_("Version %(number)d of \u201c%(title)s\u201d", **values),
            paragraphs=lines,
            link=absolute_url(
                "positions.version",
                slug=process.slug,
                position_id=position.id,
                number=version.number,
            ),
            link_label=_("Read version %(number)d", number=version.number),
        )

    notify(NotificationKind.NEW_VERSION, people, make, process_id=process.id)


def on_amendment_decided(event: events.AmendmentDecided) -> None:
    """An amendment was accepted or rejected: its proposer and the people taking part for
    the proposing organisation, with the facilitator's reason."""
    amendment = db.session.get(Amendment, event.amendment_id)
    position = db.session.get(Position, event.position_id)
    if amendment is None or position is None:
        return
    if amendment.state not in {AmendmentState.ACCEPTED, AmendmentState.REJECTED}:
        return
    process = db.session.get(Process, position.process_id)
    assert process is not None  # noqa: S101 - a position belongs to a process
    organisation = db.session.get(Organisation, amendment.organisation_id)
    people = _taking_part([amendment.organisation_id])
    if amendment.author_id is not None:
        people.append((amendment.author_id, amendment.organisation_id))

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {
            "number": amendment.number,
            "org": organisation.name if organisation else "",
            "title": position.title,
        }
        if amendment.state == AmendmentState.ACCEPTED:
            subject = _("Amendment %(number)d accepted: \u201c%(title)s\u201d", **values)
            first = _(
                "Amendment %(number)d of %(org)s on \u201c%(title)s\u201d was accepted.",
                **values,
            )
        else:
            subject = _("Amendment %(number)d rejected: \u201c%(title)s\u201d", **values)
            first = _(
                "Amendment %(number)d of %(org)s on \u201c%(title)s\u201d was rejected.",
                **values,
            )
        lines = [first]
        if amendment.decision_reason:
            lines.append(_("Reason: %(reason)s", reason=amendment.decision_reason))
        return Content(
            subject=subject,
            paragraphs=lines,
            link=absolute_url(
                "positions.amendment",
                slug=process.slug,
                position_id=position.id,
                number=amendment.number,
            ),
            link_label=_("See amendment %(number)d", number=amendment.number),
        )

    notify(NotificationKind.AMENDMENT_DECIDED, people, make, process_id=process.id)


def on_comment_replied(event: events.CommentReplied) -> None:
    """A reply to a comment: the parent comment's author (not when replying to oneself)."""
    reply = db.session.get(Comment, event.comment_id)
    parent = db.session.get(Comment, event.parent_id)
    version = db.session.get(Version, event.version_id)
    if reply is None or parent is None or version is None or parent.author_id is None:
        return
    if parent.author_id == reply.author_id:
        return
    position = version.position
    process = db.session.get(Process, position.process_id)
    assert process is not None  # noqa: S101 - a position belongs to a process
    replier = db.session.get(User, reply.author_id) if reply.author_id else None
    excerpt = " ".join(reply.body.split())
    if len(excerpt) > 300:
        excerpt = excerpt[:297] + "\u2026"

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {
            "name": replier.display_name if replier else _("Someone"),
            "number": version.number,
            "title": position.title,
        }
        return Content(
            subject=_("%(name)s replied to your comment on \u201c%(title)s\u201d", **values),
            paragraphs=[
                _(
                    "%(name)s replied to your comment on version %(number)d of "
                    "\u201c%(title)s\u201d.",
                    **values,
                ),
                excerpt,
            ],
            link=absolute_url(
                "positions.version",
                slug=process.slug,
                position_id=position.id,
                number=version.number,
                _anchor=f"comment-{reply.id}",
            ),
            link_label=_("Read the reply"),
        )

    notify(
        NotificationKind.COMMENT_REPLY,
        [(parent.author_id, parent.organisation_id)],
        make,
        process_id=process.id,
    )


# --- Feedback on the proposed disposition (issue 21) ----------------------------------------------


def _review_of(round_id: int) -> tuple[Round, Process, DispositionReview] | None:
    round_ = db.session.get(Round, round_id)
    if round_ is None:
        return None
    review = db.session.execute(
        select(DispositionReview).where(DispositionReview.round_id == round_id)
    ).scalar_one_or_none()
    if review is None:
        return None
    return round_, round_.process, review


def _answering(round_: Round, organisation_ids: Iterable[int]) -> list[Person]:
    people = drafting_rules.who_answers_disposition_many(round_, organisation_ids)
    return sorted({(user_id, org_id) for org_id, ids in people.items() for user_id in ids})


def _feedback_content(
    round_: Round,
    process: Process,
    review: DispositionReview,
    organisations: list[Organisation],
    subject: str,
    paragraphs: list[str],
) -> Content:
    """A message that asks for the organisation's answer: the link opens the page where it
    agrees or contests (its first organisation's, when a person answers for several), the
    end of the feedback period is the deadline (and the calendar entry)."""
    link = (
        absolute_url(
            "positions.disposition_feedback",
            slug=process.slug,
            round_id=round_.id,
            organisation_id=organisations[0].id,
        )
        if organisations
        else absolute_url("positions.disposition", slug=process.slug, round_id=round_.id)
    )
    return Content(
        subject=subject,
        paragraphs=paragraphs,
        link=link,
        link_label=_("Agree or contest"),
        deadline=review.respond_by,
        calendar_uid=f"disposition-{review.id}@consensus",
        calendar_title=_(
            "Feedback on the disposition: %(round)s \u2014 %(process)s",
            round=round_.title,
            process=process.title,
        ),
    )


def on_disposition_sent(event: events.DispositionSent) -> None:
    """The facilitator sent the proposed disposition: the people who can answer for each
    contributing organisation (the rule book's query) are asked to agree or contest."""
    found = _review_of(event.round_id)
    if found is None:
        return
    round_, process, review = found

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {
            "round": round_.title,
            "process": process.title,
            "orgs": _names(organisations),
            "deadline": _moment(review.respond_by),
            "publish": _moment(review.publish_at),
        }
        return _feedback_content(
            round_,
            process,
            review,
            organisations,
            _("Proposed disposition for %(orgs)s: \u201c%(process)s\u201d", **values),
            [
                _(
                    "The facilitator of \u201c%(process)s\u201d has sent the proposed "
                    "disposition of the amendments of %(orgs)s in \u201c%(round)s\u201d: the "
                    "decision on each amendment and its reason.",
                    **values,
                ),
                _(
                    "Agree with each decision or contest it with a comment until %(deadline)s. "
                    "The disposition report is published on %(publish)s, with your answers.",
                    **values,
                ),
            ],
        )

    notify(
        NotificationKind.DISPOSITION_SENT,
        _answering(round_, {i.organisation_id for i in review.items}),
        make,
        process_id=process.id,
        round_id=round_.id,
    )


def on_disposition_feedback_due(event: events.DispositionFeedbackDue) -> None:
    """The feedback period ends soon: the people named in the event (who can answer for
    the organisations that have not answered every item; deadlines.py)."""
    found = _review_of(event.round_id)
    if found is None:
        return
    round_, process, review = found

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {
            "round": round_.title,
            "process": process.title,
            "orgs": _names(organisations),
            "deadline": _moment(review.respond_by),
        }
        return _feedback_content(
            round_,
            process,
            review,
            organisations,
            _("Reminder: the proposed disposition awaits the answer of %(orgs)s", **values),
            [
                _(
                    "%(orgs)s has not yet answered every proposed decision on its amendments "
                    "in \u201c%(round)s\u201d of \u201c%(process)s\u201d. Answers are "
                    "possible until %(deadline)s.",
                    **values,
                ),
            ],
        )

    notify(
        NotificationKind.DEADLINE,
        event.people,
        make,
        process_id=process.id,
        round_id=round_.id,
    )


def on_disposition_published(event: events.DispositionPublished) -> None:
    """The disposition report reached its publication time: the people of the contributing
    organisations can read how their amendments were handled, with the answers."""
    found = _review_of(event.round_id)
    if found is None:
        return
    round_, process, review = found

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {"round": round_.title, "process": process.title}
        return Content(
            subject=_("Disposition report published: \u201c%(process)s\u201d", **values),
            paragraphs=[
                _(
                    "The disposition report of \u201c%(round)s\u201d in \u201c%(process)s"
                    "\u201d has been published, with the answers of the organisations.",
                    **values,
                )
            ],
            link=absolute_url("positions.disposition", slug=process.slug, round_id=round_.id),
            link_label=_("Read the disposition report"),
        )

    notify(
        NotificationKind.DISPOSITION_PUBLISHED,
        _answering(round_, {i.organisation_id for i in review.items}),
        make,
        process_id=process.id,
        round_id=round_.id,
    )


# --- Signing and publication ----------------------------------------------------------------------


def on_co_signed(event: events.CoSigned) -> None:
    """The last participating organisation signed: the letter is complete. Everyone taking
    part and the facilitators hear it once (a withdrawn and renewed signature could complete
    it again; that is news too)."""
    round_ = db.session.get(Round, event.round_id)
    if round_ is None:
        return
    process = round_.process
    signed = set(
        db.session.execute(
            select(CoSignature.organisation_id).where(
                CoSignature.round_id == round_.id, CoSignature.withdrawn_at.is_(None)
            )
        ).scalars()
    )
    if not process.participant_ids or not set(process.participant_ids) <= signed:
        return

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {"process": process.title}
        return Content(
            subject=_("The joint letter of \u201c%(process)s\u201d is fully signed", **values),
            paragraphs=[
                _(
                    "Every participating organisation has co-signed the joint letter of "
                    "\u201c%(process)s\u201d. The signed letter can be downloaded and verified.",
                    **values,
                )
            ],
            link=absolute_url("signing.round_page", slug=process.slug),
            link_label=_("See the signed letter"),
        )

    notify(
        NotificationKind.LETTER_SIGNED,
        _taking_part(process.participant_ids) + _facilitators(process),
        make,
        process_id=process.id,
        round_id=round_.id,
    )


def on_process_published(event: events.ProcessPublished) -> None:
    process = db.session.get(Process, event.process_id)
    if process is None:
        return

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {"process": process.title}
        return Content(
            subject=_("Published: \u201c%(process)s\u201d", **values),
            paragraphs=[_("The outcome of \u201c%(process)s\u201d is now public.", **values)],
            link=absolute_url("public.process", slug=process.slug),
            link_label=_("See the public page"),
        )

    notify(
        NotificationKind.PUBLISHED,
        _taking_part(process.participant_ids) + _facilitators(process),
        make,
        process_id=process.id,
    )


# --- Standing bodies ----------------------------------------------------------------------------


def _meeting_values(meeting: Meeting) -> dict[str, str]:
    return {
        "meeting": meeting.title,
        "body": meeting.body.name,
        "when": _moment(meeting.starts_at),
    }


def _attending(meeting: Meeting, actor_id: int | None) -> list[Person]:
    """Who attends (the rule book's who_attends), and the secretary when the change was
    not theirs (the clock published, or an administrator stood in)."""
    people = [p for p in permissions.who_attends(meeting.body) if p[0] != actor_id]
    secretary = meeting.body.secretary_id
    if secretary is not None and secretary != actor_id:
        people.append((secretary, None))
    return people


def on_agenda_published(event: events.AgendaPublished) -> None:
    """A meeting's agenda went out (by hand or by the clock): the seat holders and
    substitutes get it, with its items, in their language."""
    meeting = db.session.get(Meeting, event.meeting_id)
    if meeting is None:
        return
    titles = list(
        db.session.execute(
            select(AgendaItem.sequence, AgendaItem.title)
            .where(AgendaItem.meeting_id == meeting.id)
            .order_by(AgendaItem.sequence)
        ).all()
    )
    link = absolute_url(
        "bodies.meeting", slug=meeting.body.slug, meeting_id=meeting.id, _anchor="agenda"
    )

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = _meeting_values(meeting)
        lines = [
            _(
                "The agenda of \u201c%(meeting)s\u201d of %(body)s on %(when)s has been published.",
                **values,
            ),
            "; ".join(f"{sequence}. {title}" for sequence, title in titles),
        ]
        if meeting.place:
            lines.append(_("Place: %(place)s", place=meeting.place))
        return Content(
            subject=_("Agenda: %(meeting)s (%(body)s), %(when)s", **values),
            paragraphs=lines,
            link=link,
            link_label=_("Read the agenda"),
        )

    notify(NotificationKind.AGENDA_PUBLISHED, _attending(meeting, event.actor_id), make)


def on_meeting_cancelled(event: events.MeetingCancelled) -> None:
    """A meeting was cancelled: the people who attend hear it, with the reason."""
    meeting = db.session.get(Meeting, event.meeting_id)
    if meeting is None:
        return
    link = absolute_url("bodies.meeting", slug=meeting.body.slug, meeting_id=meeting.id)

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = _meeting_values(meeting)
        return Content(
            subject=_("Cancelled: %(meeting)s (%(body)s), %(when)s", **values),
            paragraphs=[
                _(
                    "The meeting \u201c%(meeting)s\u201d of %(body)s on %(when)s has been "
                    "cancelled.",
                    **values,
                ),
                _("Reason: %(reason)s", reason=meeting.cancel_reason),
            ],
            link=link,
            link_label=_("See the meeting"),
        )

    notify(NotificationKind.MEETING_CANCELLED, _attending(meeting, event.actor_id), make)


def on_action_overdue(event: events.ActionOverdue) -> None:
    """A follow-up action passed its due date (the clock tells once per action): the
    people who report on it (the rule book's who_reports_on, named in the event)."""
    action = db.session.get(FollowUpAction, event.action_id)
    if action is None:
        return
    link = absolute_url("bodies.action", action_id=action.id)

    def make(user: User, organisations: list[Organisation]) -> Content:
        values = {
            "title": action.title,
            "owner": action.owner.name,
            "date": cldr.format_day(action.due_on, "d MMMM y"),
        }
        return Content(
            subject=_("Overdue: \u201c%(title)s\u201d", **values),
            paragraphs=[
                _(
                    "Follow-up action \u201c%(title)s\u201d (%(owner)s) was due on %(date)s "
                    "and is not done yet.",
                    **values,
                ),
                _("Report its progress, or set a new status, on the action's page."),
            ],
            link=link,
            link_label=_("Open the action"),
        )

    notify(
        NotificationKind.ACTION_OVERDUE,
        event.people,
        make,
        process_id=action.process_id,
    )


# --- Security -----------------------------------------------------------------------------------


def security_subject(change: str) -> str:
    subjects = {
        "password_changed": _("Your Consensus password was changed"),
        "password_reset": _("Your Consensus password was reset"),
        "totp_enabled": _("Two-factor authentication was turned on for your Consensus account"),
        "totp_disabled": _("Two-factor authentication was turned off for your Consensus account"),
        "recovery_codes": _("New recovery codes were made for your Consensus account"),
        "api_token_created": _("A personal access token was made for your Consensus account"),
        "passkey_added": _("A passkey was added to your Consensus account"),
        "passkey_removed": _("A passkey was removed from your Consensus account"),
    }
    return subjects[change]


def on_security_changed(event: events.SecurityChanged) -> None:
    """ASVS 2.2.3 / 2.5.5: the account holder hears of it, always (not switchable). The
    mail carries no secrets and no links that act."""

    def make(user: User, organisations: list[Organisation]) -> Content:
        subject = security_subject(event.change)
        return Content(
            subject=subject,
            paragraphs=[
                f"{subject} ({_moment(event.at)}).",
                _("Was this you? Then you need not do anything."),
                _(
                    'Was this not you? Reset your password at once via "Forgot your '
                    'password?" on the login page, and tell the administrator of Consensus.'
                ),
            ],
        )

    notify(NotificationKind.SECURITY, [(event.user_id, None)], make)


# Which writer handles which event (consensus.notifications.register wires them).
WRITERS: list[tuple[type[events.Event], Callable[[Any], None]]] = [
    (events.RoundOpened, on_round_opened),
    (events.ReminderSent, on_reminder_sent),
    (events.DeadlineApproaching, on_deadline_approaching),
    (events.RoundClosed, on_round_closed),
    (events.VersionPublished, on_version_published),
    (events.AmendmentDecided, on_amendment_decided),
    (events.CommentReplied, on_comment_replied),
    (events.CoSigned, on_co_signed),
    (events.ProcessPublished, on_process_published),
    (events.DispositionSent, on_disposition_sent),
    (events.DispositionFeedbackDue, on_disposition_feedback_due),
    (events.DispositionPublished, on_disposition_published),
    (events.SecurityChanged, on_security_changed),
    (events.AgendaPublished, on_agenda_published),
    (events.MeetingCancelled, on_meeting_cancelled),
    (events.ActionOverdue, on_action_overdue),
]
