"""Logging in through one's organisation's identity provider (OpenID Connect) and its
administration. Load → check → run the use case (consensus.identity.links) → render."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consensus import permissions
from consensus.extensions import db, limiter, login_manager
from consensus.forms import EmptyForm
from consensus.forms.identity import IdentityProviderForm, LinkApprovalForm, OrganisationLoginForm
from consensus.identity import links, oidc
from consensus.models import ExternalIdentity, IdentityProvider, Organisation
from consensus.services.errors import DomainError
from consensus.web import auth
from consensus.web.usecase import run
from consensus.web.utils import safe_next

bp = Blueprint("identity", __name__)

FLOW_KEY = "oidc_flow"
LOGOUT_KEY = "oidc_logout"
FLOW_SECONDS = 600


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _callback_url() -> str:
    return url_for("identity.oidc_callback", _external=True)


def _refused(provider: IdentityProvider | None, reason: str) -> Response:
    """Audit the refusal, tell the person in plain words, back to the login page."""
    run(links.record_refusal, provider, reason)
    if reason == "provider_unreachable":
        flash(_("The identity provider cannot be reached. Try again later."), "error")
    else:
        flash(
            _("Logging in through your organisation did not succeed. Try again, please."),
            "error",
        )
    return redirect(url_for("auth.login"))


@bp.post("/login/organisation")
@limiter.limit(_login_limit)
def oidc_find() -> str | Response | tuple[str, int]:
    """ "Log in with your organisation": the provider from the e-mail address's domain."""
    form = OrganisationLoginForm(prefix="sso")
    if form.validate_on_submit():
        provider = links.provider_for_email(form.email.data or "")
        if provider is not None:
            name = provider.organisation.short_name
            return auth.leaving_page(
                url_for(
                    "identity.oidc_start",
                    slug=provider.organisation.slug,
                    next=safe_next(request.args.get("next")),
                ),
                title=_("Log in via %(organisation)s", organisation=name),
                text=_("You are sent on to the login of %(organisation)s.", organisation=name),
                link_text=_("Continue to the login of %(organisation)s", organisation=name),
            )
        form.email.errors = [
            _("No organisation with its own login is known for this email address.")
        ]
    return auth.render_login(sso_form=form), 400


@bp.get("/login/via/<slug>")
@limiter.limit(_login_limit)
def oidc_start(slug: str) -> Response:
    """Send the browser to the organisation's provider (code flow, PKCE, state, nonce)."""
    provider = links.provider_by_slug(slug)
    if provider is None:
        abort(404)
    try:
        url, flow = oidc.begin(links.settings(provider), _callback_url())
    except oidc.OidcRefused as refusal:
        return _refused(provider, refusal.reason)
    except DomainError as error:
        flash(error.message, "error")
        return redirect(url_for("auth.login"))
    session[FLOW_KEY] = {
        **flow,
        "provider": provider.id,
        "at": time.time(),
        "next": safe_next(request.args.get("next")),
    }
    return redirect(url)


@bp.get("/login/oidc/callback")
@limiter.limit(_login_limit)
def oidc_callback() -> Response:
    """The provider's answer: every check in consensus.identity.oidc, then the link."""
    flow = session.pop(FLOW_KEY, None)
    provider = db.session.get(IdentityProvider, flow["provider"]) if flow else None
    if flow is None or provider is None or not provider.enabled:
        return _refused(provider, "no_login_in_progress")
    if time.time() - flow["at"] > FLOW_SECONDS:
        return _refused(provider, "login_took_too_long")
    answer = {k: v for k, v in request.args.items() if k in {"code", "state", "iss", "error"}}
    try:
        identity = oidc.complete(links.settings(provider), flow, answer, _callback_url())
    except oidc.OidcRefused as refusal:
        return _refused(provider, refusal.reason)
    outcome = run(links.sign_in, provider, identity).value
    if outcome.pending:
        flash(
            _(
                "You logged in at %(organisation)s. An administrator still has to link this "
                "login to your Consensus account; try again once that is done.",
                organisation=provider.organisation.short_name,
            ),
            "info",
        )
        return redirect(url_for("auth.login"))
    if outcome.user is None:
        flash(
            _("Logging in through your organisation did not succeed. Try again, please."),
            "error",
        )
        return redirect(url_for("auth.login"))
    logout_hint = {"provider": provider.id, "id_token": identity.id_token}
    method = f"oidc:{provider.organisation.slug}"
    return auth.after_first_factor(outcome.user, method, flow["next"], oidc_logout=logout_hint)


# --- Administration -------------------------------------------------------------------------


def _require_admin() -> None:
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    permissions.require(permissions.can_administer(current_user))


@bp.route("/admin/organisations/<int:organisation_id>/identity", methods=["GET", "POST"])
def provider_edit(organisation_id: int) -> str | Response:
    _require_admin()
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None:
        abort(404)
    provider = db.session.scalar(
        db.select(IdentityProvider).where(IdentityProvider.organisation_id == organisation.id)
    )
    form = IdentityProviderForm(obj=provider)
    if request.method == "GET" and provider is not None:
        form.allowed_domains.data = " ".join(provider.domains)
    if form.validate_on_submit() and run(
        links.configure_provider,
        organisation,
        actor=current_user,
        issuer=form.issuer.data or "",
        client_id=form.client_id.data or "",
        client_secret=form.client_secret.data or None,
        allowed_domains=form.allowed_domains.data or "",
        required_acr=form.required_acr.data or None,
        sso_required=form.sso_required.data,
        enabled=form.enabled.data,
        form=form,
        success=_("The identity provider has been saved."),
    ):
        return redirect(url_for("identity.provider_edit", organisation_id=organisation.id))
    return render_template(
        "admin/identity_provider.html",
        form=form,
        organisation=organisation,
        provider=provider,
        callback=_callback_url(),
    )


@bp.get("/admin/identity-links")
def pending_links() -> str:
    _require_admin()
    return render_template(
        "admin/identity_links.html",
        links=links.pending_links(),
        form=LinkApprovalForm(),
        empty=EmptyForm(),
    )


def _load_link(link_id: int) -> ExternalIdentity:
    link = db.session.get(ExternalIdentity, link_id)
    if link is None:
        abort(404)
    return link


@bp.post("/admin/identity-links/<int:link_id>/approve")
def approve_link(link_id: int) -> Response:
    _require_admin()
    link = _load_link(link_id)
    form = LinkApprovalForm()
    if form.validate_on_submit():
        run(
            links.approve_link,
            link,
            actor=current_user,
            email=form.email.data or "",
            success=_("The login has been linked to the account."),
        )
    else:
        flash(_("Enter the email address."), "error")
    return redirect(url_for("identity.pending_links"))


@bp.post("/admin/identity-links/<int:link_id>/reject")
def reject_link(link_id: int) -> Response:
    _require_admin()
    link = _load_link(link_id)
    if EmptyForm().validate_on_submit():
        run(links.reject_link, link, actor=current_user, success=_("The request was rejected."))
    return redirect(url_for("identity.pending_links"))
