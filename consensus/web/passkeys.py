"""Passkeys on the web: adding, renaming and removing them on the account page, and using
one to log in without a password, as the second factor, or to re-authenticate before a
platform-held signature. The ceremonies run in static/js/passkeys.js (WebAuthn needs
JavaScript); these views answer JSON to it. Load → check → run(use case) → answer."""

from __future__ import annotations

import time
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from consensus import permissions, signing
from consensus.extensions import db, limiter
from consensus.forms import EmptyForm
from consensus.forms.identity import PasskeyNameForm
from consensus.identity import passkeys
from consensus.models import Passkey, User
from consensus.web import auth
from consensus.web.loaders import load_process
from consensus.web.usecase import run
from consensus.web.utils import safe_next

bp = Blueprint("passkeys", __name__)

REGISTER_KEY = "passkey_register"
LOGIN_KEY = "passkey_login"
SECOND_KEY = "passkey_second_factor"
SIGN_KEY = "passkey_sign"


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _credential() -> dict[str, Any]:
    credential = _body().get("credential")
    return credential if isinstance(credential, dict) else {}


def _refused(message: str, status: int = 400) -> tuple[Response, int]:
    return jsonify({"error": message}), status


# --- On the account page ---------------------------------------------------------------------


@bp.post("/account/passkeys/options")
@login_required
def register_options() -> Response:
    options, state = passkeys.registration_options(current_user)
    session[REGISTER_KEY] = state
    return jsonify(options)


@bp.post("/account/passkeys")
@login_required
def register() -> Response | tuple[Response, int]:
    form = PasskeyNameForm(data={"name": _body().get("name", "")}, meta={"csrf": False})
    if not form.validate():
        return _refused(form.name.errors[0])
    added = run(
        passkeys.add_passkey,
        current_user,
        session.pop(REGISTER_KEY, None),
        _credential(),
        form.name.data or "",
        form=form,
    )
    if not added:
        assert added.error is not None
        return _refused(added.error.message)
    flash(_("The passkey “%(name)s” has been added.", name=form.name.data), "success")
    return jsonify({"redirect": url_for("auth.account")})


def _own_passkey(passkey_id: int) -> Passkey:
    passkey = db.session.get(Passkey, passkey_id)
    if passkey is None or passkey.user_id != current_user.id:
        abort(404)
    return passkey


@bp.post("/account/passkeys/<int:passkey_id>/rename")
@login_required
def rename(passkey_id: int) -> Response:
    passkey = _own_passkey(passkey_id)
    form = PasskeyNameForm(prefix=f"pk{passkey.id}")
    if form.validate_on_submit():
        run(
            passkeys.rename_passkey,
            current_user,
            passkey,
            form.name.data or "",
            success=_("The passkey has been renamed."),
        )
    else:
        flash(_("Enter a name, such as “work laptop”."), "error")
    return redirect(url_for("auth.account", _anchor="passkeys"))


@bp.post("/account/passkeys/<int:passkey_id>/remove")
@login_required
def remove(passkey_id: int) -> Response:
    passkey = _own_passkey(passkey_id)
    if EmptyForm().validate_on_submit():
        name = passkey.name
        run(
            passkeys.remove_passkey,
            current_user,
            passkey,
            success=_("The passkey “%(name)s” has been removed.", name=name),
        )
    return redirect(url_for("auth.account", _anchor="passkeys"))


# --- Logging in ----------------------------------------------------------------------------


@bp.post("/login/passkey/options")
@limiter.limit(_login_limit)
def login_options() -> Response:
    options, state = passkeys.authentication_options(None)
    session[LOGIN_KEY] = {"state": state, "next": safe_next(request.args.get("next"))}
    return jsonify(options)


@bp.post("/login/passkey")
@limiter.limit(_login_limit)
def login() -> Response | tuple[Response, int]:
    """A login without a password: the passkey (with user verification) is both factors."""
    pending = session.pop(LOGIN_KEY, None) or {}
    checked = run(passkeys.verify_passkey, pending.get("state"), _credential(), user=None)
    if not checked:
        run(passkeys.record_refusal, "login")
        return _refused(_("The passkey was not accepted."), 403)
    user = db.session.get(User, checked.value.user_id)
    assert user is not None
    refusal = auth.sso_refusal(user)
    if refusal is not None:
        return _refused(refusal, 403)
    auth.start_session(user, "passkey")
    return jsonify({"redirect": auth.next_url(pending.get("next"))})


def _pending_second_factor() -> User | None:
    pending = session.get("pending_2fa")
    user = db.session.get(User, pending["user"]) if pending else None
    if (
        pending is None
        or user is None
        or not user.active
        or user.session_generation != pending["generation"]
        or time.time() - pending["at"] > auth.PENDING_2FA_SECONDS
    ):
        return None
    return user


@bp.post("/login/code/passkey/options")
@limiter.limit(_login_limit)
def second_factor_options() -> Response | tuple[Response, int]:
    user = _pending_second_factor()
    if user is None:
        return _refused(_("Log in again, please."), 403)
    options, state = passkeys.authentication_options(user)
    session[SECOND_KEY] = state
    return jsonify(options)


@bp.post("/login/code/passkey")
@limiter.limit(_login_limit)
def second_factor() -> Response | tuple[Response, int]:
    user = _pending_second_factor()
    if user is None:
        return _refused(_("Log in again, please."), 403)
    checked = run(passkeys.verify_passkey, session.pop(SECOND_KEY, None), _credential(), user=user)
    if not checked:
        run(passkeys.record_refusal, "second_factor")
        return _refused(_("The passkey was not accepted."), 403)
    return jsonify({"redirect": auth.finish_second_factor(user, "passkey")})


# --- Re-authentication before a platform-held signature --------------------------------------


def _signing_target(slug: str, org_slug: str) -> tuple[Any, Any, Any]:
    from consensus.web import signing as signing_views

    process = load_process(slug)
    round_ = signing_views._signing_round(process)
    organisation = signing_views._acting_organisation(process, round_, org_slug)
    return process, round_, organisation


@bp.post("/processes/<slug>/signing/<org_slug>/platform/passkey/options")
@login_required
def sign_options(slug: str, org_slug: str) -> Response:
    _process, _round, organisation = _signing_target(slug, org_slug)
    options, state = passkeys.authentication_options(current_user)
    session[SIGN_KEY] = {"state": state, "organisation": organisation.id}
    return jsonify(options)


@bp.post("/processes/<slug>/signing/<org_slug>/platform/passkey")
@login_required
@limiter.limit("10 per 5 minutes")
def sign(slug: str, org_slug: str) -> Response | tuple[Response, int]:
    """Sign with the organisation's platform-held key, re-authenticated by a passkey."""
    process, round_, organisation = _signing_target(slug, org_slug)
    pending = session.pop(SIGN_KEY, None) or {}
    state = pending.get("state") if pending.get("organisation") == organisation.id else None
    signed = run(
        passkeys.sign_after_passkey,
        process,
        round_,
        organisation,
        actor=current_user,
        state=state,
        response=_credential(),
        success=_("%(org)s has signed.", org=organisation.name),
    )
    if not signed:
        assert signed.error is not None
        run(
            signing.record_failed_reauthentication,
            round_,
            organisation,
            actor=current_user,
            reason=signed.error.message,
        )
        return _refused(signed.error.message, 403)
    return jsonify({"redirect": url_for("signing.round_page", slug=slug)})


@bp.app_context_processor
def passkey_facts() -> dict[str, Any]:
    """`user_has_passkeys()` for templates that offer a passkey (asked only where used)."""

    def user_has_passkeys() -> bool:
        return bool(current_user.is_authenticated and passkeys.has_passkeys(current_user))

    return {"user_has_passkeys": user_has_passkeys, "passkeys_of": passkeys.passkeys_of}


@bp.post("/admin/users/<int:user_id>/passkeys-reset")
@login_required
def admin_remove_all(user_id: int) -> Response:
    """An administrator removes every passkey of someone who lost their devices."""
    permissions.require(permissions.can_administer(current_user))
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    if EmptyForm().validate_on_submit():
        run(
            passkeys.remove_all_passkeys,
            user,
            actor=current_user,
            success=_("The passkeys of %(name)s have been removed.", name=user.display_name),
        )
    return redirect(url_for("admin.user_edit", user_id=user_id))
