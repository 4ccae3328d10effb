"""Administration: organisations, people and memberships (administrators only)."""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, or_, select
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.domain.timeutil import end_of_day, last_day, local_day, start_of_day
from consensus.extensions import db, login_manager
from consensus.forms import EmptyForm, choices
from consensus.forms.admin import (
    KIND_LABELS,
    ROLE_LABELS,
    MembershipEditForm,
    MembershipForm,
    OrganisationForm,
    UserCreateForm,
    UserForm,
)
from consensus.identity import throttle
from consensus.models import Membership, MembershipRole, Organisation, OrganisationKind, User
from consensus.models.base import utcnow
from consensus.services import accounts, organisations
from consensus.web.pages import admin as admin_pages
from consensus.web.usecase import run

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50


@bp.before_request
def require_admin() -> Response | None:
    """One gate for the whole area: anonymous → login, others → 403."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    permissions.require(permissions.can_administer(current_user))
    return None


@bp.context_processor
def labels() -> dict[str, object]:
    return {"kind_labels": KIND_LABELS, "role_labels": ROLE_LABELS}


def _get_or_404(model: type, ident: int) -> object:
    obj = db.session.get(model, ident)
    if obj is None:
        abort(404)
    return obj


@bp.get("/")
def index() -> str:
    counts = {
        "organisations": db.session.scalar(select(func.count()).select_from(Organisation)),
        "users": db.session.scalar(select(func.count()).select_from(User)),
    }
    return render_template("admin/index.html", counts=counts)


@bp.get("/throttled")
def throttled_accounts() -> str:
    """Accounts being slowed down after failed logins (nobody is locked out)."""
    return render_template(
        "admin/throttled.html",
        accounts=throttle.throttled_accounts(),
        free=current_app.config["LOGIN_ACCOUNT_FREE_FAILURES"],
        window_minutes=int(current_app.config["LOGIN_ACCOUNT_WINDOW_SECONDS"]) // 60,
    )


# --- Organisations ---------------------------------------------------------------------------


@bp.get("/organisations")
def organisations_list() -> str:
    def context() -> dict[str, object]:
        rows = db.session.execute(
            select(Organisation, func.count(Membership.id))
            .outerjoin(Membership, Membership.organisation_id == Organisation.id)
            .group_by(Organisation.id)
            .order_by(Organisation.name)
        ).all()
        return {"rows": rows}

    body_html = admin_pages.ORGANISATIONS.html(admin_pages.OrganisationsKey(), context)
    return render_template("admin/organisations.html", body_html=body_html)


@bp.route("/organisations/new", methods=["GET", "POST"])
def organisation_new() -> str | Response:
    form = OrganisationForm()
    if form.validate_on_submit():
        done = run(
            organisations.create_organisation,
            actor=current_user,
            name=form.name.data or "",
            short_name=form.short_name.data or "",
            slug=form.slug.data or "",
            kind=OrganisationKind(form.kind.data),
            active=form.active.data,
            form=form,
            success=lambda organisation: _(
                "Organisation %(name)s has been added.", name=organisation.name
            ),
        )
        if done:
            organisation = done.value
            return redirect(url_for("admin.organisation_edit", organisation_id=organisation.id))
    return render_template("admin/organisation_form.html", form=form, organisation=None)


@bp.route("/organisations/<int:organisation_id>", methods=["GET", "POST"])
def organisation_edit(organisation_id: int) -> str | Response:
    organisation = _get_or_404(Organisation, organisation_id)
    assert isinstance(organisation, Organisation)
    form = OrganisationForm(obj=organisation)
    if request.method == "GET":
        form.kind.data = organisation.kind.value
    if form.validate_on_submit():
        done = run(
            organisations.update_organisation,
            organisation,
            actor=current_user,
            name=form.name.data or "",
            short_name=form.short_name.data or "",
            slug=form.slug.data or "",
            kind=OrganisationKind(form.kind.data),
            active=form.active.data,
            form=form,
            success=_("The changes have been saved."),
        )
        if done:
            return redirect(url_for("admin.organisation_edit", organisation_id=organisation.id))
    members = db.session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organisation_id == organisation.id)
        .order_by(User.display_name)
    ).all()
    return render_template(
        "admin/organisation_form.html",
        form=form,
        organisation=organisation,
        members=members,
        now=utcnow(),
    )


# --- Users -----------------------------------------------------------------------------------


@bp.get("/users")
def users_list() -> str:
    query = request.args.get("q", "").strip()[:100]
    statement = select(User).order_by(User.display_name)
    if query:
        like = f"%{query.lower()}%"
        statement = statement.where(
            or_(func.lower(User.display_name).like(like), User.email.like(like))
        )
    page_number = request.args.get("page", 1, type=int)

    def context() -> dict[str, object]:
        page = db.paginate(statement, per_page=PAGE_SIZE, error_out=False)
        return {"page": page, "query": query, "now": utcnow()}

    key = admin_pages.PeopleKey(query, page_number, int(time.time() // 60))
    return render_template("admin/users.html", body_html=admin_pages.PEOPLE.html(key, context))


@bp.route("/users/new", methods=["GET", "POST"])
def user_new() -> str | Response:
    form = UserCreateForm()
    if form.validate_on_submit():
        done = run(
            accounts.create_user,
            actor=current_user,
            email=form.email.data or "",
            display_name=form.display_name.data or "",
            password=form.password.data or "",
            is_admin=form.is_admin.data,
            is_facilitator=form.is_facilitator.data,
            active=form.active.data,
            form=form,
            success=lambda user: _("%(name)s has been added.", name=user.display_name),
        )
        if done:
            user = done.value
            return redirect(url_for("admin.user_edit", user_id=user.id))
    return render_template("admin/user_form.html", form=form, person=None)


def _membership_form(user: User) -> MembershipForm:
    form = MembershipForm(prefix="m")
    taken = {m.organisation_id for m in user.memberships}
    form.organisation_id.choices = choices(
        [(0, _("Choose an organisation"))]
        + [
            (org.id, org.name)
            for org in db.session.execute(
                select(Organisation)
                .where(Organisation.active.is_(True))
                .order_by(Organisation.name)
            ).scalars()
            if org.id not in taken
        ]
    )
    return form


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id: int) -> str | Response:
    user = _get_or_404(User, user_id)
    assert isinstance(user, User)
    form = UserForm(obj=user)
    if form.validate_on_submit():
        done = run(
            accounts.update_user,
            user,
            actor=current_user,
            email=form.email.data or "",
            display_name=form.display_name.data or "",
            is_admin=form.is_admin.data,
            is_facilitator=form.is_facilitator.data,
            active=form.active.data,
            form=form,
            success=_("The changes have been saved."),
        )
        if done:
            return redirect(url_for("admin.user_edit", user_id=user.id))
    return render_template(
        "admin/user_form.html",
        form=form,
        person=user,
        membership_form=_membership_form(user),
        now=utcnow(),
        empty_form=EmptyForm(),
    )


@bp.post("/users/<int:user_id>/2fa-reset")
def user_reset_2fa(user_id: int) -> Response:
    user = _get_or_404(User, user_id)
    assert isinstance(user, User)
    if EmptyForm().validate_on_submit() and user.totp_enabled:
        run(
            accounts.disable_totp,
            user,
            actor=current_user,
            success=_(
                "Two-factor authentication of %(name)s has been reset.", name=user.display_name
            ),
        )
    return redirect(url_for("admin.user_edit", user_id=user_id))


# --- Memberships -----------------------------------------------------------------------------


@bp.route("/users/<int:user_id>/memberships", methods=["POST"])
def membership_new(user_id: int) -> str | Response:
    user = _get_or_404(User, user_id)
    assert isinstance(user, User)
    form = _membership_form(user)
    if form.validate_on_submit():
        organisation = db.session.get(Organisation, form.organisation_id.data)
        if organisation is None:
            form.organisation_id.errors = [_("Choose an organisation.")]
        else:
            done = run(
                organisations.add_membership,
                actor=current_user,
                user=user,
                organisation=organisation,
                **_membership_terms(form),
                form=form,
                success=_("The membership has been added."),
            )
            if done:
                return redirect(url_for("admin.user_edit", user_id=user.id))
    user_form = UserForm(obj=user, formdata=None)
    return render_template(
        "admin/user_form.html",
        form=user_form,
        person=user,
        membership_form=form,
        now=utcnow(),
        empty_form=EmptyForm(),
    ), 400


def _membership_terms(form: MembershipForm | MembershipEditForm) -> dict[str, object]:
    """Role, job title and period as the membership services take them (dates typed in
    Amsterdam; "valid until" includes its whole day)."""
    return {
        "role": MembershipRole(form.role.data),
        "title": form.title.data or "",
        "valid_from": start_of_day(form.valid_from.data) if form.valid_from.data else None,
        "valid_until": end_of_day(form.valid_until.data) if form.valid_until.data else None,
    }


@bp.route("/memberships/<int:membership_id>", methods=["GET", "POST"])
def membership_edit(membership_id: int) -> str | Response:
    membership = _get_or_404(Membership, membership_id)
    assert isinstance(membership, Membership)
    form = MembershipEditForm()
    if request.method == "GET":
        form.role.data = membership.role.value
        form.title.data = membership.title
        form.valid_from.data = local_day(membership.valid_from) if membership.valid_from else None
        form.valid_until.data = last_day(membership.valid_until) if membership.valid_until else None
    if form.validate_on_submit():
        done = run(
            organisations.update_membership,
            membership,
            actor=current_user,
            **_membership_terms(form),
            form=form,
            success=_("The membership has been changed."),
        )
        if done:
            return redirect(url_for("admin.user_edit", user_id=membership.user_id))
    return render_template(
        "admin/membership_form.html", form=form, membership=membership, end_form=EmptyForm()
    )


@bp.post("/memberships/<int:membership_id>/end")
def membership_end(membership_id: int) -> Response:
    membership = _get_or_404(Membership, membership_id)
    assert isinstance(membership, Membership)
    if EmptyForm().validate_on_submit():
        run(
            organisations.end_membership,
            membership,
            actor=current_user,
            at=utcnow(),
            success=_("The membership has ended."),
        )
    return redirect(url_for("admin.user_edit", user_id=membership.user_id))
