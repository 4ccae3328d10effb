"""The landing page, the dashboard, the language switch and the about page."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, session
from flask_login import current_user
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.extensions import db
from consensus.forms import EmptyForm
from consensus.services import accounts
from consensus.web.utils import redirect_next

bp = Blueprint("main", __name__)


@bp.get("/")
def index() -> str:
    if not current_user.is_authenticated:
        return render_template("main/welcome.html")
    memberships = sorted(
        permissions.valid_memberships(current_user), key=lambda m: m.organisation.name
    )
    return render_template("main/dashboard.html", memberships=memberships)


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
        accounts.set_locale(current_user, locale)
        db.session.commit()
    return redirect_next(request.form.get("next"))


@bp.get("/about")
def about() -> str:
    return render_template("main/about.html")
