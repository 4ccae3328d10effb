"""Standing bodies, their meetings, follow-up actions, and the letter's dispatch and reply.

Every view loads (404 for whoever may not see the thing: a body's existence does not leak),
asks the rule book (consensus/permissions/bodies.py; 403 for a member who may not do it),
runs the use case through `usecase.run` (the one commit point) and redirects (PRG).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.domain.timeutil import from_local_input, local_day, to_local_input
from consensus.extensions import db
from consensus.formats import cldr
from consensus.forms import EmptyForm, choices
from consensus.forms.bodies import (
    CHANNEL_LABELS,
    ITEM_KIND_LABELS,
    LEVEL_LABELS,
    OUTCOME_LABELS,
    STATUS_LABELS,
    ActionForm,
    AgendaItemForm,
    BodyForm,
    CancelMeetingForm,
    DecisionForm,
    DispatchForm,
    DocumentForm,
    MeetingForm,
    MinutesForm,
    ProgressForm,
    ReplyForm,
    SeatForm,
    SourcedActionForm,
)
from consensus.models import (
    ActionSource,
    ActionStatus,
    AgendaDocument,
    AgendaItem,
    BodyLevel,
    DecisionOutcome,
    FollowUpAction,
    LetterDispatch,
    Meeting,
    MeetingDecision,
    Organisation,
    Participation,
    Position,
    Process,
    ProcessState,
    Round,
    StandingBody,
    User,
    utcnow,
)
from consensus.services import bodies as service
from consensus.web.loaders import load_process, load_published_process
from consensus.web.usecase import run

bp = Blueprint("bodies", __name__)
NOBODY = 0  # the "nobody chosen" value of optional selects


@bp.app_template_filter("day")
def format_day(value: date | None, fmt: str = "medium") -> str:
    """A calendar date in the reader's language (no time zone: a date is a date)."""
    return cldr.format_day(value, fmt)


@bp.app_template_filter("file_size")
def format_file_size(size: int) -> str:
    """A file's size as people read it, in the reader's language: "7,4 kB", "2,1 MB"."""
    if size >= 1024 * 1024:
        return f"{format_decimal(round(size / (1024 * 1024), 1))} MB"
    return f"{format_decimal(max(round(size / 1024, 1), 0.1))} kB"


@bp.app_context_processor
def labels() -> dict[str, object]:
    return {
        "level_labels": LEVEL_LABELS,
        "item_kind_labels": ITEM_KIND_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "status_labels": STATUS_LABELS,
        "channel_labels": CHANNEL_LABELS,
    }


# --- Loading ----------------------------------------------------------------------------------


def load_body(slug: str) -> StandingBody:
    """The body, or 404 for a missing one and for one this person may not see."""
    body = (
        db.session.execute(select(StandingBody).where(StandingBody.slug == slug))
        .unique()
        .scalar_one_or_none()
    )
    if body is None or not permissions.can_view_body(current_user, body):
        abort(404)
    return body


def load_meeting(body: StandingBody, meeting_id: int) -> Meeting:
    meeting = db.session.get(Meeting, meeting_id)
    if meeting is None or meeting.body_id != body.id:
        abort(404)
    return meeting


def load_decision(meeting: Meeting, decision_id: int) -> MeetingDecision:
    decision = db.session.get(MeetingDecision, decision_id)
    if decision is None or decision.meeting_id != meeting.id:
        abort(404)
    return decision


def load_action(action_id: int) -> FollowUpAction:
    action = db.session.get(FollowUpAction, action_id)
    if action is None or not permissions.can_view_action(current_user, action):
        abort(404)
    return action


def _users() -> list[User]:
    return list(
        db.session.execute(
            select(User).where(User.active.is_(True)).order_by(User.display_name, User.id)
        ).scalars()
    )


def _user_or_none(user_id: int | None) -> User | None:
    if not user_id:
        return None
    user = db.session.get(User, user_id)
    return user if user is not None and user.active else None


def _organisations() -> list[Organisation]:
    return list(
        db.session.execute(
            select(Organisation).where(Organisation.active.is_(True)).order_by(Organisation.name)
        ).scalars()
    )


# --- Bodies -----------------------------------------------------------------------------------


@bp.get("/bodies")
@login_required
def index() -> str:
    bodies = service.bodies(permissions.visible_body_ids(current_user))
    return render_template(
        "bodies/index.html",
        bodies=bodies,
        can_create=permissions.can_manage_body(current_user),
    )


def _body_form_choices(form: BodyForm, body: StandingBody | None) -> None:
    administrative = db.session.execute(
        select(StandingBody.id, StandingBody.name)
        .where(StandingBody.level == BodyLevel.ADMINISTRATIVE)
        .order_by(StandingBody.name)
    ).all()
    form.prepares_for.choices = choices(
        [(NOBODY, _("(none)"))]
        + [(i, name) for i, name in administrative if body is None or i != body.id]
    )
    form.secretary.choices = choices(
        [(NOBODY, _("(none)"))] + [(u.id, f"{u.display_name} ({u.email})") for u in _users()]
    )


def _body_from_form(form: BodyForm) -> dict[str, object]:
    target = (
        db.session.get(StandingBody, form.prepares_for.data) if form.prepares_for.data else None
    )
    return {
        "name": form.name.data or "",
        "level": BodyLevel(form.level.data),
        "description": form.description.data or "",
        "prepares_for": target,
        "secretary": _user_or_none(form.secretary.data),
        "agenda_notice_days": int(form.agenda_notice_days.data or 0),
    }


@bp.route("/bodies/new", methods=["GET", "POST"])
@login_required
def new() -> str | Response:
    permissions.require(permissions.can_manage_body(current_user))
    form = BodyForm()
    _body_form_choices(form, None)
    if form.validate_on_submit():
        done = run(
            service.create_body,
            actor=current_user,
            slug=form.slug.data or "",
            form=form,
            success=_("The body has been created. Add its member organisations next."),
            **_body_from_form(form),
        )
        if done:
            return redirect(url_for("bodies.show", slug=done.value.slug))  # type: ignore[union-attr]
    return render_template("bodies/body_form.html", form=form, body=None)


@bp.route("/bodies/<slug>/edit", methods=["GET", "POST"])
@login_required
def edit(slug: str) -> str | Response:
    body = load_body(slug)
    permissions.require(permissions.can_manage_body(current_user, body))
    form = BodyForm(obj=None if request.method == "POST" else body)
    _body_form_choices(form, body)
    if request.method == "GET":
        form.level.data = body.level.value
        form.prepares_for.data = body.prepares_for_id or NOBODY
        form.secretary.data = body.secretary_id or NOBODY
    # The slug is the body's stable address: shown, not changed here.
    form.slug.data = body.slug
    if form.validate_on_submit():
        done = run(
            service.update_body,
            body,
            actor=current_user,
            form=form,
            success=_("The body has been saved."),
            **_body_from_form(form),
        )
        if done:
            return redirect(url_for("bodies.show", slug=body.slug))
    return render_template("bodies/body_form.html", form=form, body=body)


def _seat_form(body: StandingBody) -> SeatForm:
    form = SeatForm(prefix="seat")
    form.organisation_id.choices = choices((o.id, o.name) for o in _organisations())
    people = [(NOBODY, _("(nobody yet)"))] + [
        (u.id, f"{u.display_name} ({u.email})") for u in _users()
    ]
    form.seat_holder_id.choices = choices(people)
    form.substitute_id.choices = choices(people)
    return form


@bp.get("/bodies/<slug>")
@login_required
def show(slug: str) -> str:
    body = load_body(slug)
    now = utcnow()
    meetings = list(
        db.session.execute(
            select(Meeting).where(Meeting.body_id == body.id).order_by(Meeting.starts_at.desc())
        ).scalars()
    )
    prepared_by = list(
        db.session.execute(select(StandingBody).where(StandingBody.prepares_for_id == body.id))
        .unique()
        .scalars()
    )
    can_manage = permissions.can_manage_body(current_user, body)
    return render_template(
        "bodies/show.html",
        body=body,
        upcoming=[m for m in reversed(meetings) if m.ends_at >= now],
        past=[m for m in meetings if m.ends_at < now],
        prepared_by=prepared_by,
        can_manage=can_manage,
        can_archive=permissions.can_archive_body(current_user, body),
        can_run=permissions.can_run_meetings(current_user, body),
        seat_form=_seat_form(body) if can_manage else None,
        form=EmptyForm(),
    )


@bp.post("/bodies/<slug>/archive")
@login_required
def archive(slug: str) -> Response:
    """Close a body that no longer meets: kept, read-only (nothing is deleted)."""
    body = load_body(slug)
    permissions.require(permissions.can_archive_body(current_user, body))
    if EmptyForm().validate_on_submit():
        run(
            service.archive_body,
            body,
            actor=current_user,
            success=_("The body has been archived. Its meetings and decisions stay readable."),
        )
    return redirect(url_for("bodies.show", slug=body.slug))


@bp.post("/bodies/<slug>/seats")
@login_required
def set_seat(slug: str) -> str | Response:
    body = load_body(slug)
    permissions.require(permissions.can_manage_body(current_user, body))
    form = _seat_form(body)
    if form.validate_on_submit():
        organisation = db.session.get(Organisation, form.organisation_id.data)
        if organisation is None:
            abort(400)
        done = run(
            service.set_seat,
            body,
            actor=current_user,
            organisation=organisation,
            seat_holder=_user_or_none(form.seat_holder_id.data),
            substitute=_user_or_none(form.substitute_id.data),
            form=form,
            success=_("The seat of %(org)s has been saved.", org=organisation.name),
        )
        if done:
            return redirect(url_for("bodies.show", slug=body.slug))
    return render_template(
        "bodies/show.html",
        body=body,
        upcoming=[],
        past=[],
        prepared_by=[],
        can_manage=True,
        can_archive=permissions.can_archive_body(current_user, body),
        can_run=permissions.can_run_meetings(current_user, body),
        seat_form=form,
        form=EmptyForm(),
    ), 400  # type: ignore[return-value]


@bp.post("/bodies/<slug>/seats/<int:seat_id>/remove")
@login_required
def remove_seat(slug: str, seat_id: int) -> Response:
    body = load_body(slug)
    permissions.require(permissions.can_manage_body(current_user, body))
    seat = next((s for s in body.seats if s.id == seat_id), None)
    if seat is None:
        abort(404)
    if EmptyForm().validate_on_submit():
        run(
            service.remove_seat,
            body,
            seat,
            actor=current_user,
            success=_("The seat has been removed."),
        )
    return redirect(url_for("bodies.show", slug=body.slug))


# --- Meetings ---------------------------------------------------------------------------------


def _meeting_values(form: MeetingForm) -> dict[str, object]:
    return {
        "title": form.title.data or "",
        "starts_at": from_local_input(form.starts_at.data),  # type: ignore[arg-type]
        "ends_at": from_local_input(form.ends_at.data),  # type: ignore[arg-type]
        "place": form.place.data or "",
        "video_url": form.video_url.data or "",
    }


@bp.route("/bodies/<slug>/meetings/new", methods=["GET", "POST"])
@login_required
def meeting_new(slug: str) -> str | Response:
    body = load_body(slug)
    permissions.require(permissions.can_run_meetings(current_user, body))
    form = MeetingForm()
    if request.method == "GET":
        form.title.data = body.name
    if form.validate_on_submit():
        done = run(
            service.plan_meeting,
            body,
            actor=current_user,
            form=form,
            success=_("The meeting has been planned. Prepare its agenda next."),
            **_meeting_values(form),
        )
        if done:
            return redirect(
                url_for("bodies.meeting", slug=body.slug, meeting_id=done.value.id)  # type: ignore[union-attr]
            )
    return render_template("bodies/meeting_form.html", form=form, body=body, meeting=None)


@bp.route("/bodies/<slug>/meetings/<int:meeting_id>/edit", methods=["GET", "POST"])
@login_required
def meeting_edit(slug: str, meeting_id: int) -> str | Response:
    body = load_body(slug)
    meeting = load_meeting(body, meeting_id)
    permissions.require(permissions.can_run_meetings(current_user, body))
    form = MeetingForm(obj=None if request.method == "POST" else meeting)
    if request.method == "GET":
        form.starts_at.data = to_local_input(meeting.starts_at)
        form.ends_at.data = to_local_input(meeting.ends_at)
    if form.validate_on_submit():
        done = run(
            service.update_meeting,
            meeting,
            actor=current_user,
            form=form,
            success=_("The meeting has been saved."),
            **_meeting_values(form),
        )
        if done:
            return redirect(url_for("bodies.meeting", slug=body.slug, meeting_id=meeting.id))
    return render_template("bodies/meeting_form.html", form=form, body=body, meeting=meeting)


def _linkable_processes(body: StandingBody) -> list[Process]:
    """Processes an agenda item may point at: those the body's organisations take part in."""
    organisation_ids = body.organisation_ids or {0}
    return list(
        db.session.execute(
            select(Process)
            .where(
                Process.state != ProcessState.WITHDRAWN,
                Process.id.in_(
                    select(Participation.process_id).where(
                        Participation.organisation_id.in_(organisation_ids),
                        Participation.removed_at.is_(None),
                    )
                ),
            )
            .order_by(Process.title)
        )
        .unique()
        .scalars()
    )


def _item_form(body: StandingBody) -> AgendaItemForm:
    form = AgendaItemForm(prefix="item")
    processes = _linkable_processes(body)
    ids = [p.id for p in processes] or [0]
    titles = {p.id: p.title for p in processes}
    positions = db.session.execute(
        select(Position.id, Position.title, Position.process_id)
        .where(Position.process_id.in_(ids))
        .order_by(Position.process_id, Position.id)
    ).all()
    rounds = db.session.execute(
        select(Round.id, Round.title, Round.process_id)
        .where(Round.process_id.in_(ids))
        .order_by(Round.process_id, Round.sequence)
    ).all()
    none = [(NOBODY, _("(none)"))]
    form.process_id.choices = choices(none + [(p.id, p.title) for p in processes])
    form.position_id.choices = choices(
        none + [(i, f"{titles[pid]} — {title}") for i, title, pid in positions]
    )
    form.round_id.choices = choices(
        none + [(i, f"{titles[pid]} — {title}") for i, title, pid in rounds]
    )
    return form


def _decision_form(meeting: Meeting, items: list[AgendaItem]) -> DecisionForm:
    form = DecisionForm(prefix="decision")
    form.item_id.choices = choices(
        [(NOBODY, _("(no item)"))] + [(i.id, f"{i.sequence}. {i.title}") for i in items]
    )
    if meeting.body.level != BodyLevel.OFFICIAL:
        # Official clearance is given at an official body only.
        form.outcome.choices = choices(
            (k.value, label) for k, label in OUTCOME_LABELS.items() if k != DecisionOutcome.CLEARED
        )
    return form


def _meeting_page(
    body: StandingBody,
    meeting: Meeting,
    *,
    item_form: AgendaItemForm | None = None,
    decision_form: DecisionForm | None = None,
    minutes_form: MinutesForm | None = None,
    cancel_form: CancelMeetingForm | None = None,
    document_form: DocumentForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    now = utcnow()
    # A cancelled meeting is kept as it was: nothing more is done there.
    can_run = permissions.can_run_meetings(current_user, body) and not meeting.is_cancelled
    sees_agenda = permissions.can_see_agenda(current_user, meeting)
    items = list(meeting.items) if sees_agenda else []
    decisions = list(meeting.decisions)
    item_ids = [i.id for i in items] + [d.forwarded_to_item_id or 0 for d in decisions]
    forwarded_to = {
        item.id: (item, m)
        for item, m in db.session.execute(
            select(AgendaItem, Meeting)
            .join(Meeting, AgendaItem.meeting_id == Meeting.id)
            .where(
                AgendaItem.id.in_(
                    [d.forwarded_to_item_id for d in decisions if d.forwarded_to_item_id] or [0]
                )
            )
        ).all()
    }
    forwarded_from = {
        d.forwarded_to_item_id: (d, m)
        for d, m in db.session.execute(
            select(MeetingDecision, Meeting)
            .join(Meeting, MeetingDecision.meeting_id == Meeting.id)
            .where(MeetingDecision.forwarded_to_item_id.in_(item_ids or [0]))
        ).all()
    }
    linked_ids = {i.process_id for i in items if i.process_id}
    linked = {
        p.id: p
        for p in db.session.execute(select(Process).where(Process.id.in_(linked_ids or {0})))
        .unique()
        .scalars()
    }
    position_titles = dict(
        db.session.execute(
            select(Position.id, Position.title).where(
                Position.id.in_({i.position_id for i in items if i.position_id} or {0})
            )
        ).all()
    )
    round_titles = dict(
        db.session.execute(
            select(Round.id, Round.title).where(
                Round.id.in_({i.round_id for i in items if i.round_id} or {0})
            )
        ).all()
    )
    actions = list(
        db.session.execute(
            select(FollowUpAction)
            .where(FollowUpAction.decision_id.in_([d.id for d in decisions] or [0]))
            .order_by(FollowUpAction.due_on)
        ).scalars()
    )
    previous, following = service.neighbours(meeting)
    began = meeting.starts_at <= now
    agenda_open = can_run and not (began and meeting.is_agenda_published)
    documents: dict[int, list[AgendaDocument]] = {}
    for document in db.session.execute(
        select(AgendaDocument)
        .where(AgendaDocument.item_id.in_([i.id for i in items] or [0]))
        .order_by(AgendaDocument.id)
    ).scalars():
        documents.setdefault(document.item_id, []).append(document)
    html = render_template(
        "bodies/meeting.html",
        body=body,
        meeting=meeting,
        items=items,
        decisions=decisions,
        sees_agenda=sees_agenda,
        can_run=can_run,
        began=began,
        agenda_open=agenda_open,
        agenda_due_at=service.agenda_due_at(meeting),
        late=service.published_late(meeting),
        forwarded_to=forwarded_to,
        forwarded_from=forwarded_from,
        linked=linked,
        position_titles=position_titles,
        round_titles=round_titles,
        actions=actions,
        previous=previous,
        following=following,
        can_approve=can_run
        and not meeting.minutes_approved
        and following is not None
        and following.starts_at <= now,
        item_form=item_form or (_item_form(body) if agenda_open else None),
        decision_form=decision_form
        or (
            _decision_form(meeting, items)
            if can_run and began and not meeting.minutes_approved
            else None
        ),
        minutes_form=minutes_form
        or (
            MinutesForm(prefix="minutes", minutes=meeting.minutes)
            if can_run and began and not meeting.minutes_approved
            else None
        ),
        documents=documents,
        document_form=document_form
        or (_document_form(items) if can_run and items and not meeting.minutes_approved else None),
        cancel_form=cancel_form
        or (CancelMeetingForm(prefix="cancel") if can_run and not began else None),
        form=EmptyForm(),
        today=local_day(now),
    )
    return html, status


@bp.get("/bodies/<slug>/meetings/<int:meeting_id>")
@login_required
def meeting(slug: str, meeting_id: int) -> tuple[str, int]:
    body = load_body(slug)
    return _meeting_page(body, load_meeting(body, meeting_id))


def _running(slug: str, meeting_id: int) -> tuple[StandingBody, Meeting]:
    body = load_body(slug)
    meeting_ = load_meeting(body, meeting_id)
    permissions.require(permissions.can_run_meetings(current_user, body))
    return body, meeting_


def _back(body: StandingBody, meeting_: Meeting, anchor: str = "") -> Response:
    url = url_for("bodies.meeting", slug=body.slug, meeting_id=meeting_.id)
    return redirect(f"{url}#{anchor}" if anchor else url)


@bp.post("/bodies/<slug>/meetings/<int:meeting_id>/items")
@login_required
def item_add(slug: str, meeting_id: int) -> tuple[str, int] | Response:
    body, meeting_ = _running(slug, meeting_id)
    form = _item_form(body)
    if form.validate_on_submit():
        process = db.session.get(Process, form.process_id.data) if form.process_id.data else None
        position = (
            db.session.get(Position, form.position_id.data) if form.position_id.data else None
        )
        round_ = db.session.get(Round, form.round_id.data) if form.round_id.data else None
        if process is None and position is not None:
            process = db.session.get(Process, position.process_id)
        if process is None and round_ is not None:
            process = round_.process
        done = run(
            service.add_agenda_item,
            meeting_,
            actor=current_user,
            title=form.title.data or "",
            kind=form.kind.data,
            description=form.description.data or "",
            process=process,
            position=position,
            round_=round_,
            document_title=form.document_title.data or "",
            document_url=form.document_url.data or "",
            form=form,
            success=_("The item has been added to the agenda."),
        )
        if done:
            return _back(body, meeting_, "agenda")
    return _meeting_page(body, meeting_, item_form=form, status=400)


@bp.post("/bodies/<slug>/meetings/<int:meeting_id>/items/<int:item_id>/remove")
@login_required
def item_remove(slug: str, meeting_id: int, item_id: int) -> Response:
    body, meeting_ = _running(slug, meeting_id)
    item = db.session.get(AgendaItem, item_id)
    if item is None or item.meeting_id != meeting_.id:
        abort(404)
    if EmptyForm().validate_on_submit():
        run(
            service.remove_agenda_item,
            meeting_,
            item,
            actor=current_user,
            success=_("The item has been removed from the agenda."),
        )
    return _back(body, meeting_, "agenda")


def _meeting_button(
    slug: str,
    meeting_id: int,
    use_case: Callable[..., Any],
    success: str | Callable[[Any], str],
    anchor: str,
    *,
    decision_id: int | None = None,
) -> Response:
    """A button-only POST on a meeting (publish, approve, forward): load and gate as every
    meeting view does, run the use case on the meeting (or one of its decisions) when the
    CSRF token is good, and go back to the meeting page's section."""
    body, meeting_ = _running(slug, meeting_id)
    target: Meeting | MeetingDecision = meeting_
    if decision_id is not None:
        target = load_decision(meeting_, decision_id)
    if EmptyForm().validate_on_submit():
        run(use_case, target, actor=current_user, success=success)
    return _back(body, meeting_, anchor)


def _meeting_form(
    slug: str,
    meeting_id: int,
    make_form: Callable[[Meeting], Any],
    use_case: Callable[..., Any],
    values: Callable[[Any], dict[str, Any]],
    success: str,
    anchor: str,
    form_name: str,
) -> tuple[str, int] | Response:
    """A form POST on a meeting (a decision, the minutes, the cancellation): load and gate,
    run the use case with the form's values, and go back; with errors, the meeting page
    again with the form as filled in (400)."""
    body, meeting_ = _running(slug, meeting_id)
    form = make_form(meeting_)
    if form.validate_on_submit():
        done = run(
            use_case, meeting_, actor=current_user, form=form, success=success, **values(form)
        )
        if done:
            return _back(body, meeting_, anchor)
    return _meeting_page(body, meeting_, status=400, **{form_name: form})


@bp.post("/bodies/<slug>/meetings/<int:meeting_id>/publish")
@login_required
def publish(slug: str, meeting_id: int) -> Response:
    return _meeting_button(
        slug,
        meeting_id,
        service.publish_agenda,
        _("The agenda has been published to the members."),
        "agenda",
    )


@bp.post("/bodies/<slug>/meetings/<int:meeting_id>/decisions")
@login_required
def decision_add(slug: str, meeting_id: int) -> tuple[str, int] | Response:
    def values(form: DecisionForm) -> dict[str, Any]:
        item = db.session.get(AgendaItem, form.item_id.data) if form.item_id.data else None
        return {
            "text": form.text.data or "",
            "outcome": DecisionOutcome(form.outcome.data),
            "item": item,
        }

    return _meeting_form(
        slug,
        meeting_id,
        lambda meeting_: _decision_form(meeting_, list(meeting_.items)),
        service.record_decision,
        values,
        _("The decision has been added to the decisions list."),
        "decisions",
        "decision_form",
    )


@bp.post("/bodies/<slug>/meetings/<int:meeting_id>/minutes")
@login_required
def minutes(slug: str, meeting_id: int) -> tuple[str, int] | Response:
    return _meeting_form(
        slug,
        meeting_id,
        lambda meeting_: MinutesForm(prefix="minutes"),
        service.save_minutes,
        lambda form: {"minutes": form.minutes.data or ""},
        _("The draft minutes have been saved."),
        "minutes",
        "minutes_form",
    )


@bp.post("/bodies/<slug>/meetings/<int:meeting_id>/cancel")
@login_required
def cancel_meeting(slug: str, meeting_id: int) -> tuple[str, int] | Response:
    return _meeting_form(
        slug,
        meeting_id,
        lambda meeting_: CancelMeetingForm(prefix="cancel"),
        service.cancel_meeting,
        lambda form: {"reason": form.reason.data or ""},
        _("The meeting has been cancelled. The members have been told."),
        "",
        "cancel_form",
    )


@bp.post("/bodies/<slug>/meetings/<int:meeting_id>/minutes/approve")
@login_required
def approve_minutes(slug: str, meeting_id: int) -> Response:
    return _meeting_button(
        slug,
        meeting_id,
        service.approve_minutes,
        _("The minutes and the decisions list have been approved."),
        "minutes",
    )


@bp.post("/bodies/<slug>/meetings/<int:meeting_id>/decisions/<int:decision_id>/forward")
@login_required
def forward(slug: str, meeting_id: int, decision_id: int) -> Response:
    return _meeting_button(
        slug,
        meeting_id,
        service.forward_decision,
        lambda item: _(
            "Forwarded: the position is on the agenda of %(body)s's next meeting.",
            body=item.meeting.body.name,
        ),
        "decisions",
        decision_id=decision_id,
    )


# --- Documents on agenda items ----------------------------------------------------------------


def _load_item(meeting_: Meeting, item_id: int) -> AgendaItem:
    item = db.session.get(AgendaItem, item_id)
    if item is None or item.meeting_id != meeting_.id:
        abort(404)
    return item


def _document_form(items: list[AgendaItem]) -> DocumentForm:
    form = DocumentForm(prefix="document")
    form.item_id.choices = choices((i.id, f"{i.sequence}. {i.title}") for i in items)
    return form


@bp.post("/bodies/<slug>/meetings/<int:meeting_id>/documents")
@login_required
def document_add(slug: str, meeting_id: int) -> tuple[str, int] | Response:
    # A document may be larger than an ordinary form (CONSENSUS_MAX_CONTENT_LENGTH): this
    # one request may carry the document's limit and a little for the form around it.
    request.max_content_length = max(
        service.DOCUMENT_MAX_BYTES + 64 * 1024, int(current_app.config["MAX_CONTENT_LENGTH"])
    )
    body, meeting_ = _running(slug, meeting_id)
    form = _document_form(list(meeting_.items))
    if form.validate_on_submit():
        item = _load_item(meeting_, form.item_id.data)
        upload = form.document.data
        done = run(
            service.add_agenda_document,
            item,
            actor=current_user,
            content=upload.read() if upload else b"",
            filename=upload.filename if upload else "",
            title=form.title.data or "",
            form=form,
            success=_("The document has been added to the item."),
        )
        if done:
            return _back(body, meeting_, f"item-{item.id}")
    return _meeting_page(body, meeting_, document_form=form, status=400)


@bp.get("/bodies/<slug>/meetings/<int:meeting_id>/documents/<int:document_id>")
@login_required
def document(slug: str, meeting_id: int, document_id: int) -> Response:
    """An agenda item's document, for whoever sees the agenda (404 for anyone else, as for
    the agenda). Always a download, with the type we determined at upload."""
    body = load_body(slug)
    meeting_ = load_meeting(body, meeting_id)
    found = db.session.get(AgendaDocument, document_id)
    if (
        found is None
        or found.item.meeting_id != meeting_.id
        or not permissions.can_download_document(current_user, meeting_)
    ):
        abort(404)
    response = Response(found.content, mimetype=found.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{found.filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- Follow-up actions ------------------------------------------------------------------------


def _action_form(form_class: type[ActionForm], process: Process | None) -> ActionForm:
    form = form_class()
    form.owner_id.choices = choices((o.id, o.name) for o in _organisations())
    themes = [t.name for t in process.themes] if process is not None else []
    form.theme.choices = choices([("", _("(none)"))] + [(t, t) for t in themes])
    return form


def _action_values(form: ActionForm) -> dict[str, object]:
    owner = db.session.get(Organisation, form.owner_id.data)
    if owner is None:
        abort(400)
    return {
        "title": form.title.data or "",
        "owner": owner,
        "due_on": form.due_on.data,
        "description": form.description.data or "",
        "theme": form.theme.data or "",
        "link_url": form.link_url.data or "",
    }


@bp.route(
    "/bodies/<slug>/meetings/<int:meeting_id>/decisions/<int:decision_id>/actions/new",
    methods=["GET", "POST"],
)
@login_required
def action_from_decision(slug: str, meeting_id: int, decision_id: int) -> str | Response:
    body, meeting_ = _running(slug, meeting_id)
    decision = load_decision(meeting_, decision_id)
    process = None
    if decision.agenda_item is not None and decision.agenda_item.process_id:
        process = db.session.get(Process, decision.agenda_item.process_id)
    form = _action_form(ActionForm, process)
    if form.validate_on_submit():
        done = run(
            service.create_action,
            actor=current_user,
            source=ActionSource.DECISION,
            decision=decision,
            process=process,
            form=form,
            success=_("The follow-up action has been created."),
            **_action_values(form),
        )
        if done:
            return redirect(url_for("bodies.action", action_id=done.value.id))  # type: ignore[union-attr]
    return render_template(
        "bodies/action_form.html",
        form=form,
        action_url=url_for(
            "bodies.action_from_decision", slug=slug, meeting_id=meeting_id, decision_id=decision_id
        ),
        origin=decision.text,
        back=(meeting_.title, url_for("bodies.meeting", slug=slug, meeting_id=meeting_id)),
    )


@bp.route("/processes/<slug>/follow-up/actions/new", methods=["GET", "POST"])
@login_required
def action_from_process(slug: str) -> str | Response:
    process = load_process(slug)
    permissions.require(permissions.can_follow_up_process(current_user, process))
    form = _action_form(SourcedActionForm, process)
    if form.validate_on_submit():
        done = run(
            service.create_action,
            actor=current_user,
            source=ActionSource(form.source.data),  # type: ignore[attr-defined]
            process=process,
            form=form,
            success=_("The follow-up action has been created."),
            **_action_values(form),
        )
        if done:
            return redirect(url_for("bodies.follow_up", slug=process.slug))
    return render_template(
        "bodies/action_form.html",
        form=form,
        action_url=url_for("bodies.action_from_process", slug=slug),
        origin=process.title,
        back=(process.title, url_for("bodies.follow_up", slug=slug)),
    )


@bp.get("/actions")
@login_required
def actions() -> str:
    today = local_day(utcnow())
    found = list(
        db.session.execute(
            select(FollowUpAction)
            .where(permissions.action_filter(current_user))  # type: ignore[arg-type]
            .order_by(FollowUpAction.due_on, FollowUpAction.id)
            .limit(500)
        ).scalars()
    )
    return render_template(
        "bodies/actions.html",
        actions=found,
        today=today,
        progress=service.progress_per_theme(found, today),
    )


@bp.route("/actions/<int:action_id>", methods=["GET", "POST"])
@login_required
def action(action_id: int) -> tuple[str, int] | Response:
    found = load_action(action_id)
    can_update = permissions.can_update_action(current_user, found)
    form = ProgressForm()
    if request.method == "POST":
        permissions.require(can_update)
        if form.validate_on_submit():
            done = run(
                service.report_progress,
                found,
                actor=current_user,
                status=ActionStatus(form.status.data),
                note=form.note.data or "",
                form=form,
                success=_("The progress has been recorded."),
            )
            if done:
                return redirect(url_for("bodies.action", action_id=found.id))
    else:
        form.status.data = found.status.value
    process = db.session.get(Process, found.process_id) if found.process_id else None
    body = db.session.get(StandingBody, found.body_id) if found.body_id else None
    decision = db.session.get(MeetingDecision, found.decision_id) if found.decision_id else None
    return render_template(
        "bodies/action.html",
        action=found,
        process=process
        if process and permissions.can_view_process(current_user, process)
        else None,
        body=body if body and permissions.can_view_body(current_user, body) else None,
        decision=decision,
        can_update=can_update,
        form=form,
        today=local_day(utcnow()),
    ), (400 if form.errors else 200)


# --- The process's follow-up: the chain, actions, the letter and its reply ---------------------


@bp.get("/processes/<slug>/follow-up")
@login_required
def follow_up(slug: str) -> str:
    process = load_process(slug)
    can_follow = permissions.can_follow_up_process(current_user, process)
    dispatch_form = DispatchForm(prefix="dispatch") if can_follow else None
    if dispatch_form is not None:
        letters = [p for p in process_positions(process) if p.addressee]
        dispatch_form.addressee.data = dispatch_form.addressee.data or (
            letters[0].addressee if letters else ""
        )
    return render_template(
        "bodies/follow_up.html",
        process=process,
        chain=service.process_chain(process.id),
        actions=service.actions_of_process(process.id),
        dispatches=service.dispatches_of(process.id),
        can_follow=can_follow,
        dispatch_form=dispatch_form,
        reply_form=ReplyForm(prefix="reply") if can_follow else None,
        today=local_day(utcnow()),
    )


def process_positions(process: Process) -> list[Position]:
    return list(
        db.session.execute(
            select(Position).where(Position.process_id == process.id).order_by(Position.id)
        ).scalars()
    )


@bp.post("/processes/<slug>/follow-up/letter")
@login_required
def dispatch(slug: str) -> str | Response:
    process = load_process(slug)
    permissions.require(permissions.can_follow_up_process(current_user, process))
    form = DispatchForm(prefix="dispatch")
    if form.validate_on_submit():
        done = run(
            service.record_dispatch,
            process,
            actor=current_user,
            addressee=form.addressee.data or "",
            sent_on=form.sent_on.data,
            channel=form.channel.data,
            reference=form.reference.data or "",
            form=form,
            success=_("Recorded: the letter has been sent."),
        )
        if done:
            return redirect(url_for("bodies.follow_up", slug=process.slug) + "#letter")
    return _follow_up_with_errors(process, dispatch_form=form)


def _follow_up_with_errors(
    process: Process,
    *,
    dispatch_form: DispatchForm | None = None,
    reply_form: ReplyForm | None = None,
) -> tuple[str, int]:  # type: ignore[return]
    return render_template(
        "bodies/follow_up.html",
        process=process,
        chain=service.process_chain(process.id),
        actions=service.actions_of_process(process.id),
        dispatches=service.dispatches_of(process.id),
        can_follow=True,
        dispatch_form=dispatch_form or DispatchForm(prefix="dispatch"),
        reply_form=reply_form or ReplyForm(prefix="reply"),
        today=local_day(utcnow()),
    ), 400


def _load_dispatch(process: Process, dispatch_id: int) -> LetterDispatch:
    found = db.session.get(LetterDispatch, dispatch_id)
    if found is None or found.process_id != process.id:
        abort(404)
    return found


@bp.post("/processes/<slug>/follow-up/letter/<int:dispatch_id>/reply")
@login_required
def reply(slug: str, dispatch_id: int) -> str | tuple[str, int] | Response:
    process = load_process(slug)
    permissions.require(permissions.can_follow_up_process(current_user, process))
    found = _load_dispatch(process, dispatch_id)
    form = ReplyForm(prefix="reply")
    if form.validate_on_submit():
        upload = form.document.data
        document = upload.read() if upload else None
        done = run(
            service.record_reply,
            found,
            actor=current_user,
            received_on=form.received_on.data,
            summary=form.summary.data or "",
            reference=form.reference.data or "",
            document=document or None,
            filename=upload.filename if upload else "",
            form=form,
            success=_("The reply has been recorded."),
        )
        if done:
            return redirect(url_for("bodies.follow_up", slug=process.slug) + "#letter")
    return _follow_up_with_errors(process, reply_form=form)


def _reply_response(found: LetterDispatch) -> Response:
    if not found.reply_document:
        abort(404)
    response = Response(found.reply_document, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{found.reply_filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/processes/<slug>/follow-up/letter/<int:dispatch_id>/reply.pdf")
@login_required
def reply_document(slug: str, dispatch_id: int) -> Response:
    process = load_process(slug)
    return _reply_response(_load_dispatch(process, dispatch_id))


@bp.get("/public/<slug>/letters/<int:dispatch_id>/reply.pdf")
def public_reply_document(slug: str, dispatch_id: int) -> Response:
    """The addressee's reply to a published process's letter is public like the letter."""
    process = load_published_process(slug)
    return _reply_response(_load_dispatch(process, dispatch_id))


@bp.get("/public/<slug>/feed.atom")
def public_feed(slug: str) -> Response:
    """An Atom feed of a published process's timeline (RFC 4287)."""
    process = load_published_process(slug)
    entries = service.public_timeline(process)
    updated = max((e.moment for e in entries), default=process.created_at)
    xml = render_template(
        "bodies/feed.atom.xml",
        process=process,
        entries=list(reversed(entries)),
        updated=updated,
        page_url=url_for("public.process", slug=process.slug, _external=True),
        feed_url=url_for("bodies.public_feed", slug=process.slug, _external=True),
    )
    response = Response(xml, mimetype="application/atom+xml")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
