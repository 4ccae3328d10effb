"""Personal access tokens on the account page, and the administrators' overview.

A token is made here (shown once), listed with its scopes, expiry and last use, and
revoked by its owner or an administrator. The API itself is consensus/api."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.forms import EmptyForm
from consensus.forms.api_tokens import TokenForm
from consensus.services import api_tokens as service
from consensus.services.errors import NotFound
from consensus.web.usecase import run

bp = Blueprint("api_tokens", __name__)


def _token_or_404(token_id: int):  # type: ignore[no-untyped-def]
    try:
        return service.token_by_id(token_id)
    except NotFound:
        abort(404)


@bp.post("/account/tokens")
@login_required
def create() -> str | Response | tuple[str, int]:
    form = TokenForm()
    if form.validate_on_submit():
        made = run(
            service.create_token,
            current_user,
            name=form.name.data or "",
            scopes=form.scopes.data or "",
            days=int(form.days.data or 0),
            form=form,
        )
        if made:
            assert made.value is not None
            token, secret = made.value
            page = render_template("account/token_made.html", api_token=token, secret=secret)
            # The secret is on this page only: no cache keeps it.
            return Response(page, headers={"Cache-Control": "no-store"})
    from consensus.web.auth import account_page

    return account_page(token_form=form, status=422)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke(token_id: int) -> Response:
    token = _token_or_404(token_id)
    if token.user_id != current_user.id:
        abort(404)  # another person's token is not there for you
    if EmptyForm().validate_on_submit():
        run(service.revoke_token, token, actor=current_user, success=_("The token was revoked."))
    return redirect(url_for("auth.account") + "#api-tokens")


@bp.get("/admin/tokens")
@login_required
def admin_list() -> str:
    permissions.require(permissions.can_administer(current_user))
    return render_template("admin/api_tokens.html", tokens=service.all_tokens(), form=EmptyForm())


@bp.post("/admin/tokens/<int:token_id>/revoke")
@login_required
def admin_revoke(token_id: int) -> Response:
    permissions.require(permissions.can_administer(current_user))
    token = _token_or_404(token_id)
    if EmptyForm().validate_on_submit():
        run(service.revoke_token, token, actor=current_user, success=_("The token was revoked."))
    return redirect(url_for("api_tokens.admin_list"))
