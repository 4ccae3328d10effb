"""The landing page, the dashboard, the language switch and the about page."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.domain.timeutil import local_day
from consensus.extensions import db
from consensus.forms import EmptyForm
from consensus.models import Notice, utcnow
from consensus.services import accounts, processes
from consensus.web import shared_cache
from consensus.web.pages import bodies as bodies_page
from consensus.web.pages import dashboard as dashboard_page
from consensus.web.usecase import run
from consensus.web.utils import redirect_next

bp = Blueprint("main", __name__)


@bp.get("/")
def index() -> str:
    if not current_user.is_authenticated:
        return render_template("main/welcome.html")
    memberships = sorted(
        permissions.valid_memberships(current_user), key=lambda m: m.organisation.name
    )
    substituting = permissions.substituting_for(current_user)
    # Per person, per set of memberships valid today and of organisations they stand in for
    # as a substitute (a membership or a delegation can lapse at a date without a write).
    work_html = dashboard_page.work(
        current_user._get_current_object(), frozenset(m.id for m in memberships), substituting
    )
    notices = (
        db.session.execute(
            select(Notice)
            .where(Notice.user_id == current_user.id, Notice.read_at.is_(None))
            .order_by(Notice.created_at.desc())
            .limit(20)
        )
        .scalars()
        .all()
    )
    bodies_html = bodies_page.dashboard(
        current_user._get_current_object(),
        frozenset(m.id for m in memberships),
        local_day(utcnow()),
    )
    return render_template(
        "main/dashboard.html",
        bodies_html=bodies_html,
        memberships=memberships,
        substituting=substituting,
        work_html=work_html,
        notices=notices,
        form=EmptyForm(),
        now=utcnow(),
    )


@bp.post("/notices/read")
@login_required
def notices_read() -> Response:
    if EmptyForm().validate_on_submit():
        run(processes.mark_notices_read, current_user)
    return redirect(url_for("main.index"))


@bp.post("/language")
def set_locale() -> Response:
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    locale = request.form.get("locale", "")
    if locale not in {"nl", "en"}:
        abort(400)
    session["locale"] = locale
    if current_user.is_authenticated:
        run(accounts.set_locale, current_user, locale)
    response = redirect_next(request.form.get("next"))
    shared_cache.remember_locale(response, locale)
    return response


@bp.get("/language")
def choose_locale() -> Response:
    """The language switch of the public pages: a GET that only sets the reader's language
    cookie (no session, nothing changed on the server, so no CSRF token), then goes back.
    A logged-in person's language stays their account's (changed with the POST above)."""
    locale = request.args.get("locale", "")
    if locale and locale not in shared_cache.LOCALES:
        abort(400)
    response = redirect_next(request.args.get("next"))
    if locale:  # none chosen: back, nothing kept
        shared_cache.remember_locale(response, locale)
    return response


@bp.get("/about")
def about() -> str:
    return render_template("main/about.html")


# The date of the last evaluation (docs/accessibility.md); the statement shows it.
ACCESSIBILITY_EVALUATED = date(2026, 12, 6)


@bp.get("/accessibility")
def accessibility() -> str:
    """The accessibility statement (toegankelijkheidsverklaring) Dutch government websites
    must publish: the standard, how it was checked, what does not comply yet, and whom to
    tell about a problem."""
    contact = str(current_app.config["ACCESSIBILITY_CONTACT"])
    return render_template(
        "main/accessibility.html",
        contact=contact,
        contact_label=contact.removeprefix("mailto:"),
        evaluated=ACCESSIBILITY_EVALUATED,
    )
