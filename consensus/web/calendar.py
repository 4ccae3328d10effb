"""A personal iCalendar feed of round deadlines and meetings of standing bodies, at a secret
address the user can reset."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.extensions import db, limiter
from consensus.forms import EmptyForm
from consensus.models import (
    Meeting,
    Process,
    ProcessState,
    RoundState,
    User,
    utcnow,
)
from consensus.services import processes as service
from consensus.web.usecase import run

bp = Blueprint("calendar", __name__)


def _visible_processes(user: User) -> list[Process]:
    """The running processes the person runs or takes part in (the rule book's
    involved_clause; an administrator's feed is not every process)."""
    return list(
        db.session.execute(
            select(Process)
            .where(Process.state.in_([ProcessState.DRAFT, ProcessState.ACTIVE]))
            .where(permissions.involved_clause(user))
        ).scalars()
    )


def _meetings(user: User, now: datetime) -> list[Meeting]:
    """The meetings of the standing bodies the person sees, from a month back on."""
    from consensus.services import bodies

    return bodies.upcoming_meetings(
        permissions.visible_body_ids(user), since=now - timedelta(days=30), limit=200
    )


@bp.get("/calendar/<token>.ics")
@limiter.limit("60 per minute")
def feed(token: str) -> Response:
    if len(token) < 20:
        abort(404)
    user = db.session.execute(select(User).where(User.calendar_token == token)).scalar_one_or_none()
    if user is None or not user.active:
        abort(404)
    from icalendar import Calendar, Event  # loaded where used (issue 23: lean workers)

    calendar = Calendar()
    calendar.add("prodid", "-//Consensus//round deadlines//NL")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "Consensus")
    stamp = utcnow()
    for process in _visible_processes(user):
        for round_ in process.rounds:
            if round_.state == RoundState.CLOSED:
                continue
            event = Event()
            event.add("uid", f"round-{round_.id}@consensus")
            event.add("dtstamp", stamp)
            event.add("dtstart", round_.opens_at)
            event.add("dtend", round_.closes_at)
            event.add("summary", f"{round_.title} — {process.title}")
            event.add(
                "description",
                _(
                    "Deadline of this round. %(url)s",
                    url=url_for(
                        "processes.round_page",
                        slug=process.slug,
                        round_id=round_.id,
                        _external=True,
                    ),
                ),
            )
            calendar.add_component(event)
    for meeting in _meetings(user, stamp):
        event = Event()
        event.add("uid", f"meeting-{meeting.id}@consensus")
        event.add("dtstamp", stamp)
        event.add("dtstart", meeting.starts_at)
        event.add("dtend", meeting.ends_at)
        event.add("summary", f"{meeting.body.name}: {meeting.title}")
        if meeting.cancelled_at is not None:
            event.add("status", "CANCELLED")  # RFC 5545: calendars strike it out
        if meeting.place:
            event.add("location", meeting.place)
        event.add(
            "description",
            url_for(
                "bodies.meeting", slug=meeting.body.slug, meeting_id=meeting.id, _external=True
            ),
        )
        calendar.add_component(event)
    response = Response(calendar.to_ical(), mimetype="text/calendar")
    response.headers["Content-Disposition"] = "attachment; filename=consensus.ics"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/account/calendar")
@login_required
def settings() -> str:
    return render_template("account/calendar.html", form=EmptyForm())


@bp.post("/account/calendar")
@login_required
def reset() -> Response:
    if EmptyForm().validate_on_submit():
        run(
            service.reset_calendar_token,
            current_user,
            success=_("Your calendar has a new address. The old address no longer works."),
        )
    return redirect(url_for("calendar.settings"))
