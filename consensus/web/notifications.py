"""The inbox (Berichten), notification preferences, one-click unsubscribe, and the
administrators' view of the mail queue."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.extensions import csrf, db, limiter, login_manager
from consensus.forms import EmptyForm
from consensus.forms.notifications import DeadlineWarningsForm, NotificationPreferencesForm
from consensus.models import MailState, Notice, OutgoingMail
from consensus.notifications import deadlines, outbox, preferences
from consensus.services import processes
from consensus.web.loaders import load_process
from consensus.web.usecase import run

bp = Blueprint("notifications", __name__)

INBOX_SIZE = 100


@bp.get("/messages")
@login_required
def inbox() -> str:
    """Every notification of this person, newest first; unread ones marked."""
    notices = (
        db.session.execute(
            select(Notice)
            .where(Notice.user_id == current_user.id)
            .order_by(Notice.created_at.desc(), Notice.id.desc())
            .limit(INBOX_SIZE)
        )
        .scalars()
        .all()
    )
    unread = sum(1 for n in notices if n.read_at is None)
    return render_template(
        "notifications/inbox.html", notices=notices, unread=unread, form=EmptyForm()
    )


@bp.post("/messages/read")
@login_required
def mark_read() -> Response:
    if EmptyForm().validate_on_submit():
        run(
            processes.mark_notices_read,
            current_user,
            success=_("Your messages are marked as read."),
        )
    return redirect(url_for("notifications.inbox"))


@bp.route("/account/notifications", methods=["GET", "POST"], endpoint="preferences")
@login_required
def preferences_page() -> str | Response | tuple[str, int]:
    """Per kind: at once, in the daily summary, or not by e-mail; the summary's time."""
    user = current_user._get_current_object()
    settings = preferences.settings_of(user.id)
    form = NotificationPreferencesForm(
        digest_hour=settings.digest_hour,
        time_zone=settings.time_zone,
        **{
            kind.value: delivery.value
            for kind, delivery in preferences.preferences_of(user).items()
        },
    )
    if form.validate_on_submit():
        done = run(
            preferences.save_preferences,
            user,
            choices=form.choices_made(),
            digest_hour=int(form.digest_hour.data or 0),
            time_zone=str(form.time_zone.data or ""),
            form=form,
            success=_("Your notification settings are saved."),
        )
        if done:
            return redirect(url_for("notifications.preferences"))
    status = 422 if form.errors else 200
    return render_template("notifications/preferences.html", form=form), status


@bp.route("/notifications/unsubscribe/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def unsubscribe(token: str) -> str | tuple[str, int] | Response:
    """One-click unsubscribe (RFC 8058): a POST turns this kind of e-mail off for this
    person, without a login and with no other effect; a GET only asks (a link checker
    that opens the link changes nothing)."""
    found = preferences.read_unsubscribe_token(token)
    if found is None:
        return render_template("notifications/unsubscribe.html", invalid=True), 404
    user, kind = found
    label = preferences.LABELS[kind]
    if request.method == "POST":
        run(preferences.unsubscribe, user, kind)
        if request.form.get("List-Unsubscribe") == "One-Click":
            return Response(_("You will no longer get these e-mails."), mimetype="text/plain")
        return render_template("notifications/unsubscribe.html", done=True, label=label)
    return render_template("notifications/unsubscribe.html", label=label)


# No CSRF token: RFC 8058 mail clients POST without a session. The signed token names one
# person and one kind, and the only effect is turning that kind of e-mail off.
csrf.exempt(unsubscribe)  # nosemgrep: consensus-csrf-exempt - one-click unsubscribe (above)


# --- Facilitators: deadline warnings per process -----------------------------------------------


@bp.app_template_global("deadline_warning_days")
def deadline_warning_days(process_id: int) -> str:
    """The process's warning days as the facilitator typed them ("3, 1")."""
    return ", ".join(str(d) for d in deadlines.warning_days(process_id))


@bp.post("/processes/<slug>/deadline-warnings")
@login_required
def deadline_warnings(slug: str) -> Response:
    """How many days before a round's deadline the people who still have to act get an
    e-mail (docs/notifications.md); a bad value is refused with a message, nothing changes."""
    process = load_process(slug)
    permissions.require(permissions.can_manage_process(current_user, process))
    form = DeadlineWarningsForm()
    if form.validate_on_submit():
        run(
            deadlines.set_warning_days,
            process,
            actor=current_user._get_current_object(),
            raw=form.deadline_warning_days.data or "",
            success=_("The deadline warnings are saved."),
        )
    return redirect(url_for("processes.manage", slug=slug, _anchor="deadline-warnings"))


# --- Administrators: the mail queue -----------------------------------------------------------


@bp.get("/admin/mail")
def mail_queue() -> str:
    _require_admin()
    counts = outbox.queue_counts()
    dead = (
        db.session.execute(
            select(OutgoingMail)
            .where(OutgoingMail.state == MailState.DEAD)
            .order_by(OutgoingMail.id.desc())
            .limit(100)
        )
        .scalars()
        .all()
    )
    waiting = db.session.scalar(
        select(func.min(OutgoingMail.created_at)).where(OutgoingMail.state == MailState.QUEUED)
    )
    return render_template(
        "notifications/admin_mail.html", counts=counts, dead=dead, oldest=waiting, form=EmptyForm()
    )


@bp.post("/admin/mail/<int:mail_id>/retry")
def mail_retry(mail_id: int) -> Response:
    _require_admin()
    mail = db.session.get(OutgoingMail, mail_id)
    if mail is None:
        abort(404)
    if EmptyForm().validate_on_submit():
        run(
            outbox.requeue,
            mail,
            actor=current_user._get_current_object(),
            success=_("The message is queued again."),
        )
    return redirect(url_for("notifications.mail_queue"))


def _require_admin() -> None:
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    permissions.require(permissions.can_administer(current_user))
