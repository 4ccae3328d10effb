"""Logging in (with a second factor), logging out, and one's own account."""

from __future__ import annotations

import contextlib
import functools
import io
import time

from flask import (
    Blueprint,
    after_this_request,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.extensions import db, limiter
from consensus.forms import EmptyForm
from consensus.forms.accounts import (
    ForgotPasswordForm,
    LoginForm,
    PasswordChangeForm,
    ResetPasswordForm,
    SecondFactorForm,
    TotpConfirmForm,
    TotpDisableForm,
)
from consensus.forms.identity import OrganisationLoginForm, PasskeyNameForm
from consensus.identity import links, oidc, passkeys, throttle
from consensus.models import IdentityProvider, User, UserSession, utcnow
from consensus.notifications.mail import MailError, send_mail, writes_to_console
from consensus.services import accounts, sessions
from consensus.web import SESSION_TOKEN_KEY
from consensus.web.usecase import run
from consensus.web.utils import after_the_response, redirect_next, safe_next

bp = Blueprint("auth", __name__)

PENDING_2FA_SECONDS = 300
OIDC_LOGOUT_KEY = "oidc_logout"
# Endpoints a person who still has to enrol in 2FA may reach.
_ENROLMENT_ALLOWED = {
    "auth.logout",
    "auth.totp_setup",
    "auth.login",
    "auth.login_code",
    "identity.oidc_find",
    "identity.oidc_start",
    "identity.oidc_callback",
    "passkeys.register_options",
    "passkeys.register",
    "auth.forgot_password",
    "auth.reset_password",
    "wellknown.security_txt",
    "main.set_locale",
    "main.choose_locale",
    "main.about",
    "static",
}


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _fresh_cookie_session() -> None:
    """Empty the cookie session, keeping only the chosen language."""
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale


def _start_session(user: User, method: str) -> None:
    """A fresh session at login: a new server-side session id, nothing from before survives
    except the language (no session fixation). The browser is remembered as one this
    account logged in with (the throttle does not slow it down for this account)."""
    _fresh_cookie_session()
    session[SESSION_TOKEN_KEY] = run(_log_in, user, method).value
    login_user(user)
    throttle.succeeded(user.email, request.remote_addr or "", device=_trusted_device(user.email))
    token = throttle.device_token(user.email)

    @after_this_request
    def remember_device(response: Response) -> Response:
        response.set_cookie(
            throttle.device_cookie_name(),
            token,
            max_age=throttle.DEVICE_COOKIE_DAYS * 86400,
            path="/",
            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
            httponly=True,
            samesite="Lax",
        )
        return response


def _trusted_device(email: str) -> str | None:
    return throttle.trusted_device(request.cookies.get(throttle.device_cookie_name()), email)


def _count_failure(email: str) -> None:
    throttle.failed(email, request.remote_addr or "", device=_trusted_device(email))


def _account_throttled(email: str) -> str | None:
    """The message when this account is being slowed down for this client (audited), or
    None when its password or code may be checked now."""
    verdict = throttle.check(email, request.remote_addr or "", device=_trusted_device(email))
    if verdict.admitted:
        return None
    run(
        accounts.record_login_throttled,
        email,
        endpoint=request.endpoint or "",
        scope="account",
    )
    return _(
        "There were too many failed attempts to log in to this account. Try again in "
        "%(wait)s. A device you used to log in to this account before is not held up.",
        wait=ngettext("%(num)d second", "%(num)d seconds", verdict.retry_after),
    )


def _log_in(user: User, method: str) -> str:
    """The use case behind a login: a server-side session and its audit event."""
    token = sessions.start(user, method=method)
    accounts.record_login(user, method=method)
    return token


def _check_password(email: str, password: str) -> User | None:
    """The person with this address and password; a wrong one is recorded."""
    user = accounts.authenticate(email, password)
    if user is None:
        accounts.record_failed_login(email, reason="bad_credentials")
    return user


def _check_second_factor(user: User, code: str) -> str | None:
    """The second factor used (spent once); a wrong code is recorded."""
    method = accounts.verify_second_factor(user, code)
    if method is None:
        accounts.record_failed_login(user.email, reason="bad_second_factor")
    return method


def _log_out(user: User, user_session: UserSession | None) -> None:
    if user_session is not None:
        sessions.end(user_session, reason="logout")
    accounts.record_logout(user)


def _change_password(user: User, current_password: str, new_password: str) -> str:
    """Every session ends with the change; the one asking continues under a new id."""
    accounts.change_password(user, current_password=current_password, new_password=new_password)
    return sessions.start(user, method="password_change")


def _current_session() -> UserSession | None:
    return g.get("user_session")


@bp.errorhandler(429)
def too_many_attempts(error: Exception) -> tuple[str, int]:
    """The login throttle is our lockout: record it as a security event (who was tried,
    from where), then show the usual 429 page."""
    db.session.rollback()
    email = request.form.get("email", "") if request.method == "POST" else ""
    run(accounts.record_login_throttled, email, endpoint=request.endpoint or "", scope="address")
    return render_template("errors/429.html", error=error), 429


@bp.before_app_request
def enforce_second_factor_enrolment() -> Response | None:
    if not current_user.is_authenticated or request.endpoint in _ENROLMENT_ALLOWED:
        return None
    if accounts.needs_second_factor_enrolment(current_user, current_app.config["REQUIRE_2FA"]):
        flash(_("Set up two-factor authentication to continue."), "warning")
        return redirect(url_for("auth.totp_setup"))
    return None


def render_login(form: LoginForm | None = None, sso_form: FlaskForm | None = None) -> str:
    """The login page: the password form, and "Log in via <organisation>" for every
    organisation with its own identity provider (with a form that finds it by e-mail)."""
    return render_template(
        "auth/login.html",
        form=form or LoginForm(formdata=None),
        sso_form=sso_form or OrganisationLoginForm(prefix="sso", formdata=None),
        providers=links.enabled_providers(),
    )


def after_first_factor(
    user: User, method: str, target: str | None, *, oidc_logout: dict | None = None
) -> Response:
    """The first factor passed (a password, or the organisation's provider): ask for the
    second factor when the account has one, else start the session."""
    if user.totp_enabled or passkeys.has_passkeys(user):
        session["pending_2fa"] = {
            "user": user.id,
            "generation": user.session_generation,
            "at": time.time(),
            "next": target,
            "method": method,
            "oidc_logout": oidc_logout,
        }
        return redirect(url_for("auth.login_code"))
    _start_session(user, method)
    if oidc_logout is not None:
        session[OIDC_LOGOUT_KEY] = oidc_logout
    return redirect_next(target)


def sso_refusal(user: User) -> str | None:
    """When the person's organisation requires its own login: the refusal (audited) and
    its message; None otherwise. Asked after a correct password or passkey only, so it
    tells nothing to someone who has neither."""
    organisation = links.sso_organisation(user)
    if organisation is None:
        return None
    run(links.refuse_password_login, user, organisation)
    return _(
        "%(organisation)s requires you to log in through its own login. Use "
        "“Log in via %(organisation)s” below; your password is not used.",
        organisation=organisation.short_name,
    )


def start_session(user: User, method: str) -> None:
    _start_session(user, method)


def next_url(target: str | None) -> str:
    return safe_next(target)


def finish_second_factor(user: User, method: str) -> str:
    """The second factor passed: start the session; where to go next."""
    pending = session.get("pending_2fa") or {}
    target = pending.get("next")
    _start_session(user, f"{pending.get('method', 'password')}+{method}")
    if pending.get("oidc_logout"):
        session[OIDC_LOGOUT_KEY] = pending["oidc_logout"]
    return safe_next(target)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> str | Response | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect_next(request.args.get("next"))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data or ""
        refusal = _account_throttled(email)
        if refusal is not None:
            form.form_errors.append(refusal)
            return render_login(form), 429
        user = run(_check_password, email, form.password.data or "").value
        if user is None:
            _count_failure(email)
            form.form_errors.append(_("The email address or password is not correct."))
        elif (refusal := sso_refusal(user)) is not None:
            form.form_errors.append(refusal)
            return render_login(form), 403
        else:
            return after_first_factor(user, "password", safe_next(request.args.get("next")))
    return render_login(form)


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login_code() -> str | Response:
    pending = session.get("pending_2fa")
    user = db.session.get(User, pending["user"]) if pending else None
    if (
        pending is None
        or user is None
        or not user.active
        or user.session_generation != pending["generation"]
        or time.time() - pending["at"] > PENDING_2FA_SECONDS
    ):
        session.pop("pending_2fa", None)
        flash(_("Log in again, please."), "info")
        return redirect(url_for("auth.login"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        refusal = _account_throttled(user.email)
        if refusal is not None:
            form.form_errors.append(refusal)
            return _second_factor_page(user, form), 429
        method = run(_check_second_factor, user, form.code.data or "").value
        if method is None:
            _count_failure(user.email)
            form.code.errors = [_("That code is not correct.")]
        else:
            target = finish_second_factor(user, method)
            if method == "recovery_code":
                flash(_("You used a recovery code. Each code works only once."), "warning")
            return redirect_next(target)
    return _second_factor_page(user, form)


def _second_factor_page(user: User, form: SecondFactorForm) -> str:
    """The code form when the account has TOTP, the passkey button when it has passkeys."""
    return render_template(
        "auth/login_code.html",
        form=form,
        totp=user.totp_enabled,
        passkey=passkeys.has_passkeys(user),
    )


@bp.post("/logout")
def logout() -> Response | str:
    """Log out here; after a login through an organisation's provider, also there
    (RP-initiated logout: the browser goes to the provider, which comes back to our
    start page)."""
    form = EmptyForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        provider_logout = _provider_logout_url(session.get(OIDC_LOGOUT_KEY))
        run(_log_out, current_user, _current_session())
        logout_user()
        _fresh_cookie_session()
        if provider_logout is not None:
            return leaving_page(
                provider_logout,
                title=_("You are logged out"),
                text=_("You are logged out of Consensus. Now also at your organisation's login."),
                link_text=_("Continue"),
            )
        flash(_("You are logged out."), "success")
    return redirect(url_for("main.index"))


def leaving_page(target: str, *, title: str, text: str, link_text: str) -> str:
    """Send the browser on to another site after a form: with a link and an immediate
    refresh, since the CSP (form-action 'self') stops a form's redirect elsewhere."""
    return render_template(
        "auth/leaving.html", target=target, title=title, text=text, link_text=link_text
    )


def _provider_logout_url(hint: dict | None) -> str | None:
    if not hint:
        return None
    provider = db.session.get(IdentityProvider, hint.get("provider"))
    if provider is None:
        return None
    return oidc.end_session_url(
        provider.issuer,
        str(hint.get("id_token", "")),
        url_for("main.index", _external=True),
        provider.client_id,
    )


@bp.get("/account")
@login_required
def account() -> str | tuple[str, int]:
    return account_page()


def account_page(token_form: object = None, status: int = 200) -> tuple[str, int]:
    """The account page (also with a token form that did not validate, consensus.web.api_tokens)."""
    from consensus.forms.api_tokens import TokenForm
    from consensus.services import api_tokens

    current = _current_session()
    # Mandate holders enrol their own signing key before a signing round: link it here.
    mandates = sorted(
        {
            m.organisation
            for m in permissions.valid_memberships(current_user)
            if permissions.holds_mandate(current_user, m.organisation)
        },
        key=lambda organisation: organisation.name,
    )
    return render_template(
        "auth/account.html",
        form=EmptyForm(),
        passkeys=passkeys.passkeys_of(current_user),
        passkey_form=PasskeyNameForm(formdata=None),
        mandates=mandates,
        sessions=sessions.active_sessions(current_user),
        current_session_id=current.id if current is not None else None,
        api_tokens=api_tokens.tokens_of(current_user),
        token_form=token_form or TokenForm(formdata=None),
        now=utcnow(),
    ), status


@bp.post("/account/sessions/end-others")
@login_required
def end_other_sessions() -> Response:
    """Log out all other sessions, e.g. after using a shared or lost device."""
    current = _current_session()
    if EmptyForm().validate_on_submit() and current is not None:
        run(
            sessions.end_other_sessions,
            current_user,
            current=current,
            success=lambda count: ngettext(
                "%(num)d other session has been logged out.",
                "%(num)d other sessions have been logged out.",
                count,
            ),
        )
    return redirect(url_for("auth.account"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> str | Response:
    form = PasswordChangeForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        changed = run(
            _change_password,
            user,
            form.current_password.data or "",
            form.new_password.data or "",
            form=form,
        )
        if changed:
            session[SESSION_TOKEN_KEY] = changed.value
            login_user(user)  # follow the new generation
            flash(
                _("Your password has been changed. Other sessions have been logged out."), "success"
            )
            return redirect(url_for("auth.account"))
    return render_template("auth/password.html", form=form)


def _qr_svg(data: str) -> Markup:
    import qrcode  # only here (enrolling a second factor): not in every worker
    import qrcode.image.svg

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    svg = svg[svg.index("<svg") :]
    # qrcode's SVG of our own otpauth URI: no user-supplied markup can be in it.
    # nosemgrep: consensus-markup-on-dynamic-text
    return Markup(svg)  # noqa: S704  # nosec B704


@bp.route("/account/2fa", methods=["GET", "POST"])
@login_required
def totp_setup() -> str | Response:
    if current_user.totp_enabled:
        return redirect(url_for("auth.account"))
    secret = session.get("totp_pending")
    if not secret:
        secret = accounts.new_totp_secret()
        session["totp_pending"] = secret
    form = TotpConfirmForm()
    if form.validate_on_submit():
        enrolled = run(
            accounts.confirm_totp_enrolment, current_user, secret, form.code.data or "", form=form
        )
        if enrolled:
            codes = enrolled.value
            session.pop("totp_pending", None)
            return render_template("auth/recovery_codes.html", codes=codes, enrolled=True)
    uri = accounts.provisioning_uri(current_user.email, secret)
    return render_template(
        "auth/totp_setup.html", form=form, secret=secret, qr=_qr_svg(uri), uri=uri
    )


@bp.route("/account/2fa/off", methods=["GET", "POST"])
@login_required
def totp_disable() -> str | Response:
    if not current_user.totp_enabled:
        return redirect(url_for("auth.account"))
    form = TotpDisableForm()
    if form.validate_on_submit() and run(
        accounts.disable_totp,
        current_user,
        actor=current_user,
        password=form.password.data or "",
        form=form,
        success=_("Two-factor authentication is off."),
    ):
        return redirect(url_for("auth.account"))
    return render_template("auth/totp_disable.html", form=form)


@bp.post("/account/recovery-codes")
@login_required
def recovery_codes() -> str | Response:
    form = EmptyForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.account"))
    regenerated = run(accounts.regenerate_recovery_codes, current_user)
    if not regenerated:
        return redirect(url_for("auth.account"))
    codes = regenerated.value
    return render_template("auth/recovery_codes.html", codes=codes, enrolled=False)


# --- Password reset by e-mail ---------------------------------------------------------------


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def forgot_password() -> str | Response:
    """Ask for a reset link. The answer is the same whether or not the address is known."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        minutes = int(current_app.config["PASSWORD_RESET_MINUTES"])
        # Whatever depends on whether the address is known (the token, its audit event, the
        # mail) happens after the answer is out, so the answer takes the same time for any
        # address (ASVS 2.5.6; a mail relay took tens of milliseconds for known ones only).
        after_the_response(
            functools.partial(_mail_reset_link, form.email.data or "", minutes),
            what="password reset mail",
        )
        flash(
            _(
                "If this address belongs to an account, we have sent a link to set a new "
                "password. The link works once and for %(minutes)s.",
                minutes=ngettext("%(num)d minute", "%(num)d minutes", minutes),
            ),
            "info",
        )
        if writes_to_console():
            flash(
                _(
                    "Development: no mail server is set up, so mail is written to the "
                    "server's console."
                ),
                "warning",
            )
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot.html", form=form)


def _mail_reset_link(email: str, minutes: int) -> None:
    """Issue a reset token for a known, active address and mail its link (after the
    response). A mail failure is logged in send_mail; nobody is told either way."""
    issued = run(accounts.request_password_reset, email, minutes=minutes).value
    if issued is None:
        return
    user, token = issued
    link = url_for("auth.reset_password", token=token, _external=True)
    with contextlib.suppress(MailError):
        send_mail(
            user.email,
            _("Set a new password for Consensus"),
            render_template("auth/reset_mail.txt", user=user, link=link, minutes=minutes),
        )


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def reset_password(token: str) -> str | Response | tuple[str, int]:
    """Set a new password with the link from the e-mail; afterwards, log in anew."""
    if accounts.find_reset_token(token) is None:
        return render_template("auth/reset_invalid.html"), 404
    form = ResetPasswordForm()
    if form.validate_on_submit():
        reset = run(accounts.reset_password, token, form.new_password.data or "", form=form)
        if reset:
            if current_user.is_authenticated:
                logout_user()
            _fresh_cookie_session()
            flash(_("Your password has been set. Log in with the new password."), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form)
