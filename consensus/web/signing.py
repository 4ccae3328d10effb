"""Co-signing pages: custody and certificates (admin), keys (representatives), the signing
round, the letter, and public verification. load → require → service → commit → render."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from consensus import permissions, signing, transactions
from consensus.extensions import db, limiter
from consensus.forms import EmptyForm
from consensus.forms.signing import (
    CustodyForm,
    EnrolKeyForm,
    Pkcs12Form,
    ReauthForm,
    RemoteSigningForm,
    RevokeKeyForm,
    UploadSignatureForm,
)
from consensus.models import (
    CertificateAuthority,
    CoSignature,
    KeyCustody,
    Organisation,
    Process,
    Round,
    SigningKey,
    SigningSettings,
    utcnow,
)
from consensus.services.errors import DomainError
from consensus.signing import bundle, longterm, remote
from consensus.web.loaders import load_organisation, load_process, load_published_process
from consensus.web.usecase import run
from consensus.web.utils import round_closed_page, too_late

bp = Blueprint("signing", __name__)


@bp.context_processor
def labels() -> dict[str, object]:
    return {"custody_labels": signing.CUSTODY_LABELS, "KeyCustody": KeyCustody}


def _organisation_by_id(org_id: int) -> Organisation:
    organisation = db.session.get(Organisation, org_id)
    if organisation is None:
        abort(404)
    return organisation


def load_public_process(slug: str) -> Process:
    """Published processes for everyone; participants see theirs before publication."""
    return load_published_process(slug, or_visible=True)


def _signing_round(process: Process) -> Round:
    round_ = signing.current_signing_round(process)
    if round_ is None:
        abort(404)
    return round_


# --- Administrator: custody and certificates --------------------------------------------------


@bp.route("/admin/organisations/<int:org_id>/signing", methods=["GET", "POST"])
@login_required
def admin_organisation(org_id: int) -> str | Response:
    permissions.require(permissions.can_administer(current_user))
    organisation = _organisation_by_id(org_id)
    form = CustodyForm(prefix="custody")
    if request.method == "GET":
        form.custody.data = signing.custody_of(organisation).value
    elif form.validate_on_submit() and run(
        signing.set_custody,
        organisation,
        KeyCustody(form.custody.data),
        actor=current_user,
        form=form,
        success=_("Custody saved."),
    ):
        return redirect(url_for("signing.admin_organisation", org_id=org_id))
    return render_template(
        "signing/admin_organisation.html",
        organisation=organisation,
        form=form,
        pkcs12_form=Pkcs12Form(prefix="p12"),
        issue_form=EmptyForm(),
        revoke_form=RevokeKeyForm(prefix="revoke"),
        remote_form=_remote_form(organisation),
        remote_settings=remote.csc_settings(organisation),
        certificate=signing.current_certificate(organisation),
        keys=signing.keys_of(organisation),
        custody=signing.custody_of(organisation),
    )


@bp.post("/admin/organisations/<int:org_id>/signing/certificate")
@login_required
def issue_certificate(org_id: int) -> Response:
    permissions.require(permissions.can_administer(current_user))
    organisation = _organisation_by_id(org_id)
    if EmptyForm().validate_on_submit():
        run(
            signing.issue_certificate,
            organisation,
            actor=current_user,
            success=_("A new certificate was issued."),
        )
    return redirect(url_for("signing.admin_organisation", org_id=org_id))


@bp.post("/admin/organisations/<int:org_id>/signing/pkcs12")
@login_required
def upload_pkcs12(org_id: int) -> str | Response:
    permissions.require(permissions.can_administer(current_user))
    organisation = _organisation_by_id(org_id)
    form = Pkcs12Form(prefix="p12")
    if form.validate_on_submit():
        name = (form.file.data.filename or "").lower()
        if not name.endswith((".p12", ".pfx")):
            form.file.errors = [_("Upload a .p12 or .pfx file.")]
        else:
            if run(
                signing.upload_pkcs12,
                organisation,
                actor=current_user,
                data=form.file.data.read(signing.PKCS12_MAX_BYTES + 1),
                password=form.password.data or "",
                form=form,
                success=_("The certificate was uploaded."),
            ):
                return redirect(url_for("signing.admin_organisation", org_id=org_id))
    custody_form = CustodyForm(prefix="custody")
    custody_form.custody.data = signing.custody_of(organisation).value
    return render_template(
        "signing/admin_organisation.html",
        organisation=organisation,
        form=custody_form,
        pkcs12_form=form,
        issue_form=EmptyForm(),
        revoke_form=RevokeKeyForm(prefix="revoke"),
        remote_form=_remote_form(organisation),
        remote_settings=remote.csc_settings(organisation),
        certificate=signing.current_certificate(organisation),
        keys=signing.keys_of(organisation),
        custody=signing.custody_of(organisation),
    ), 400


@bp.post("/admin/organisations/<int:org_id>/signing/certificate/revoke")
@login_required
def revoke_certificate(org_id: int) -> Response:
    permissions.require(permissions.can_administer(current_user))
    organisation = _organisation_by_id(org_id)
    certificate = signing.current_certificate(organisation)
    if certificate is None:
        abort(404)
    form = RevokeKeyForm(prefix="revoke")
    if form.validate_on_submit():
        run(
            signing.revoke_certificate,
            certificate,
            actor=current_user,
            reason=form.reason.data or "",
            success=_("The certificate is revoked."),
        )
    else:
        flash(_("Give the reason for the revocation."), "error")
    return redirect(url_for("signing.admin_organisation", org_id=org_id))


def _remote_form(organisation: Organisation, form: RemoteSigningForm | None = None):  # type: ignore[no-untyped-def]
    if form is not None:
        return form
    form = RemoteSigningForm(prefix="csc")
    settings = db.session.get(SigningSettings, organisation.id)
    if settings is not None:
        form.enabled.data = settings.csc_enabled
        form.service_url.data = settings.csc_service_url
        form.credential_id.data = settings.csc_credential_id
    return form


@bp.post("/admin/organisations/<int:org_id>/signing/remote")
@login_required
def remote_signing(org_id: int) -> str | Response | tuple[str, int]:
    permissions.require(permissions.can_administer(current_user))
    organisation = _organisation_by_id(org_id)
    form = RemoteSigningForm(prefix="csc")
    if form.validate_on_submit() and run(
        remote.set_csc,
        organisation,
        actor=current_user,
        enabled=bool(form.enabled.data),
        service_url=form.service_url.data or "",
        credential_id=form.credential_id.data or "",
        token=form.token.data or "",
        form=form,
        success=_("Remote signing saved."),
    ):
        return redirect(url_for("signing.admin_organisation", org_id=org_id))
    custody_form = CustodyForm(prefix="custody")
    custody_form.custody.data = signing.custody_of(organisation).value
    return render_template(
        "signing/admin_organisation.html",
        organisation=organisation,
        form=custody_form,
        pkcs12_form=Pkcs12Form(prefix="p12"),
        issue_form=EmptyForm(),
        revoke_form=RevokeKeyForm(prefix="revoke"),
        remote_form=form,
        remote_settings=remote.csc_settings(organisation),
        certificate=signing.current_certificate(organisation),
        keys=signing.keys_of(organisation),
        custody=signing.custody_of(organisation),
    ), 400


@bp.get("/pki/ca-<int:ca_id>.crl")
def certificate_revocation_list(ca_id: int) -> Response:
    """The platform CA's CRL (DER), signed when asked: the address every certificate the
    CA issues names as its CRL distribution point. Public, like any CA's CRL."""
    ca = db.session.get(CertificateAuthority, ca_id)
    if ca is None:
        abort(404)
    return Response(
        signing.crl_der(ca),
        mimetype="application/pkix-crl",
        headers={"Content-Disposition": f'attachment; filename="ca-{ca.id}.crl"'},
    )


# --- Keys of an organisation ------------------------------------------------------------------


def _require_key_manager(organisation: Organisation) -> None:
    permissions.require(
        permissions.can_administer(current_user)
        or permissions.holds_mandate(current_user, organisation)
    )


def _render_keys(
    organisation: Organisation, form: EnrolKeyForm | None = None, status: int = 200
) -> tuple[str, int]:
    custody = signing.custody_of(organisation)
    return render_template(
        "signing/keys.html",
        organisation=organisation,
        custody=custody,
        keys=signing.keys_of(organisation),
        form=form or EnrolKeyForm(),
        revoke_form=RevokeKeyForm(),
        button_form=EmptyForm(),
        may_enrol=custody == KeyCustody.SIGNER_HELD
        and permissions.holds_mandate(current_user, organisation),
    ), status


@bp.get("/organisations/<slug>/keys")
@login_required
def keys(slug: str) -> tuple[str, int]:
    organisation = load_organisation(slug)
    _require_key_manager(organisation)
    return _render_keys(organisation)


@bp.post("/organisations/<slug>/keys")
@login_required
def enrol_key(slug: str) -> Response | tuple[str, int]:
    organisation = load_organisation(slug)
    _require_key_manager(organisation)
    form = EnrolKeyForm()
    if form.validate_on_submit() and run(
        signing.enrol_key,
        organisation,
        actor=current_user,
        public_key_line=form.public_key.data or "",
        label=form.label.data or "",
        form=form,
        success=_("Your key is enrolled."),
    ):
        return redirect(url_for("signing.keys", slug=slug))
    return _render_keys(organisation, form, 400)


def _load_key(organisation: Organisation, key_id: int) -> SigningKey:
    key = db.session.get(SigningKey, key_id)
    if key is None or key.organisation_id != organisation.id:
        abort(404)
    return key


@bp.post("/organisations/<slug>/keys/<int:key_id>/rotate")
@login_required
def rotate_key(slug: str, key_id: int) -> Response:
    organisation = load_organisation(slug)
    _require_key_manager(organisation)
    key = _load_key(organisation, key_id)
    form = EnrolKeyForm() if key.custody == KeyCustody.SIGNER_HELD else EmptyForm()
    if form.validate_on_submit():
        run(
            signing.rotate_key,
            key,
            actor=current_user,
            public_key_line=getattr(form, "public_key", None) and form.public_key.data or "",
            success=_("The key was replaced. Signatures made with the old key stay valid."),
        )
    else:
        flash(_("Paste the new public key."), "error")
    return redirect(url_for("signing.keys", slug=slug))


@bp.post("/organisations/<slug>/keys/<int:key_id>/revoke")
@login_required
def revoke_key(slug: str, key_id: int) -> Response:
    organisation = load_organisation(slug)
    _require_key_manager(organisation)
    key = _load_key(organisation, key_id)
    form = RevokeKeyForm()
    if form.validate_on_submit():
        run(
            signing.revoke_key,
            key,
            actor=current_user,
            reason=form.reason.data or "",
            success=_("The key is revoked."),
        )
    else:
        flash(_("Give the reason for the revocation."), "error")
    return redirect(url_for("signing.keys", slug=slug))


# --- The signing round ------------------------------------------------------------------------


def _round_page(
    process: Process,
    round_: Round,
    *,
    reauth_forms: dict[int, ReauthForm] | None = None,
    upload_forms: dict[int, UploadSignatureForm] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    letter = signing.letter_of(round_)
    eligible = signing.eligible_organisations(process, round_)
    current = {s.organisation_id: s for s in signing.current_signatures(round_)}
    acting = [
        o
        for o in eligible
        if permissions.may_sign(current_user, process, round_, o)  # type: ignore[arg-type]
        or (o.id in current and permissions.holds_mandate(current_user, o))
    ]
    return render_template(
        "signing/round.html",
        process=process,
        round=round_,
        letter=letter,
        eligible=eligible,
        current=current,
        acting=acting,
        custody={o.id: signing.custody_of(o) for o in acting},
        my_keys={o.id: signing.keys_held_by(current_user, o) for o in acting},  # type: ignore[arg-type]
        platform_keys={o.id: signing.platform_key(o) for o in acting},
        signs_remotely={o.id: remote.csc_settings(o) is not None for o in acting},
        reauth_forms=reauth_forms or {},
        upload_forms=upload_forms or {},
        reauth_form=ReauthForm,
        upload_form=UploadSignatureForm,
        button_form=EmptyForm(),
        final=signing.letter_is_final(process, round_),
        now=utcnow(),
        round_open=round_.is_open_at(utcnow()),
    ), status


@bp.get("/processes/<slug>/signing")
@login_required
def round_page(slug: str) -> tuple[str, int]:
    process = load_process(slug)
    round_ = _signing_round(process)
    # The letter was laid out when the round opened (signing.cosigning._on_round_opened):
    # the page only reads.
    return _round_page(process, round_)


def _acting_organisation(process: Process, round_: Round, org_slug: str) -> Organisation:
    organisation = load_organisation(org_slug)
    decision = permissions.may_sign(current_user, process, round_, organisation)  # type: ignore[arg-type]
    if not decision:
        late = too_late(round_, _("Nothing was signed."))
        if late:
            abort(round_closed_page(late, url_for("signing.round_page", slug=process.slug)))
        abort(403)
    return organisation


@bp.get("/processes/<slug>/signing/<org_slug>/statement.json")
@login_required
def statement(slug: str, org_slug: str) -> Response:
    process = load_process(slug)
    round_ = _signing_round(process)
    organisation = _acting_organisation(process, round_, org_slug)
    key = db.session.get(SigningKey, request.args.get("key", type=int) or 0)
    if key is None:
        abort(404)
    try:
        data = signing.prepare_statement(
            process,
            round_,
            organisation,
            actor=current_user,
            key=key,  # type: ignore[arg-type]
        )
    except DomainError as error:
        abort(error.status_code if error.status_code in (403, 404) else 400)
    return Response(
        data,
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{organisation.slug}.json"'
        },
    )


def _signer_authorisation(form: ReauthForm | UploadSignatureForm) -> remote.SignerAuthorisation:
    """The PIN/one-time code for the organisation's CSC provider, as typed: handed to the
    use case, which passes it to the provider only (never stored or logged)."""
    return remote.SignerAuthorisation(
        (form.csc_pin.data or "").strip(), (form.csc_otp.data or "").strip()
    )


@bp.post("/processes/<slug>/signing/<org_slug>/upload")
@login_required
def upload(slug: str, org_slug: str) -> Response | tuple[str, int]:
    process = load_process(slug)
    round_ = _signing_round(process)
    organisation = _acting_organisation(process, round_, org_slug)
    form = UploadSignatureForm(prefix=f"up{organisation.id}")
    if form.validate_on_submit() and run(
        signing.accept_uploaded_signature,
        process,
        round_,
        organisation,
        actor=current_user,
        statement=form.statement.data.read(signing.STATEMENT_MAX_BYTES + 1),
        signature=form.signature.data.read(signing.SIGNATURE_MAX_BYTES + 1),
        remote_authorisation=_signer_authorisation(form),
        form=form,
        success=_("The signature of %(org)s is verified and recorded.", org=organisation.name),
    ):
        return redirect(url_for("signing.round_page", slug=slug))
    return _round_page(process, round_, upload_forms={organisation.id: form}, status=400)


@bp.post("/processes/<slug>/signing/<org_slug>/platform")
@login_required
@limiter.limit("10 per 5 minutes", methods=["POST"])
def platform_sign(slug: str, org_slug: str) -> Response | tuple[str, int]:
    # The password's argon2 check first, outside SQLite's write lock (everything is
    # checked again inside it; the check only spares the lock its tenth of a second).
    checked = None
    with transactions.reads_before_the_view():
        organisation_id = db.session.execute(
            select(Organisation.id).where(Organisation.slug == org_slug)
        ).scalar_one_or_none()
        if organisation_id is not None:
            password = request.form.get(f"re{organisation_id}-password", "")
            checked = signing.check_password_first(current_user, password)  # type: ignore[arg-type]
    process = load_process(slug)
    round_ = _signing_round(process)
    organisation = _acting_organisation(process, round_, org_slug)
    form = ReauthForm(prefix=f"re{organisation.id}")
    if form.validate_on_submit():
        signed = run(
            signing.sign_with_platform_key,
            process,
            round_,
            organisation,
            actor=current_user,
            proof=signing.ReAuthentication(form.password.data or "", form.code.data or "", checked),
            remote_authorisation=_signer_authorisation(form),
            form=form,
            success=_("%(org)s has signed.", org=organisation.name),
        )
        if signed:
            return redirect(url_for("signing.round_page", slug=slug))
        assert signed.error is not None
        run(
            signing.record_failed_reauthentication,
            round_,
            organisation,
            actor=current_user,
            reason=signed.error.message,
        )
    return _round_page(process, round_, reauth_forms={organisation.id: form}, status=400)


@bp.post("/processes/<slug>/signing/signatures/<int:signature_id>/withdraw")
@login_required
def withdraw(slug: str, signature_id: int) -> Response:
    process = load_process(slug)
    cosignature = db.session.get(CoSignature, signature_id)
    if cosignature is None or cosignature.process_id != process.id:
        abort(404)
    if EmptyForm().validate_on_submit():
        run(
            signing.withdraw,
            cosignature,
            actor=current_user,
            success=_withdrawn_message,
        )
    return redirect(url_for("signing.round_page", slug=slug))


def _withdrawn_message(taken_off: list[str]) -> str:
    message = _("The signature was withdrawn.")
    if taken_off:
        message += " " + _(
            "The signature of %(orgs)s came off the letter too: its signing service wants "
            "its signer's own authorisation for a new signature, so it must sign again.",
            orgs=", ".join(taken_off),
        )
    return message


def _pdf(data: bytes, name: str) -> Response:
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/processes/<slug>/signing/letter.pdf")
@login_required
def letter_pdf(slug: str) -> Response:
    """The signed letter once final; before that, the letter as signed so far."""
    process = load_process(slug)
    letter = signing.letter_of(_signing_round(process))
    if letter is None:
        abort(404)
    return _pdf(letter.signed_pdf or letter.unsigned_pdf, f"letter-{process.slug}.pdf")


@bp.get("/processes/<slug>/signing/letter-unsigned.pdf")
@login_required
def unsigned_pdf(slug: str) -> Response:
    process = load_process(slug)
    letter = signing.letter_of(_signing_round(process))
    if letter is None:
        abort(404)
    return _pdf(letter.unsigned_pdf, f"letter-{process.slug}-unsigned.pdf")


# --- Public verification ----------------------------------------------------------------------


def public_signature_context(process: Process) -> dict[str, object]:
    """Each current co-signature checked now, for the public pages (also the outcome page)."""
    round_ = signing.current_signing_round(process)
    letter = signing.letter_of(round_) if round_ is not None else None
    checks = (
        [signing.check_signature(s, letter) for s in signing.current_signatures(round_)]
        if round_ is not None and letter is not None
        else []
    )
    assessed = longterm.assess(letter.signed_pdf) if letter is not None else {}
    return {
        "signing_round": round_,
        "letter": letter,
        "checks": checks,
        # The PAdES signature of each organisation, judged offline against the configured
        # trust anchors (docs/signing.md "Assurance").
        "assessments": {
            c.signature.organisation_id: assessed.get(f"Signature-{c.signature.organisation.slug}")
            for c in checks
        },
        "sealed": letter is not None and letter.sealed_at is not None,
        "bundle_name": bundle.bundle_name(process),
        "final": round_ is not None and signing.letter_is_final(process, round_),
    }


@bp.get("/public/<slug>/signatures")
def public_signatures(slug: str) -> str:
    process = load_public_process(slug)
    return render_template(
        "signing/public.html", process=process, **public_signature_context(process)
    )


@bp.get("/public/<slug>/verification-<bundle_slug>.zip")
def public_bundle(slug: str, bundle_slug: str) -> Response:
    process = load_public_process(slug)
    if bundle_slug != process.slug:
        abort(404)
    name = bundle.bundle_name(process)
    round_ = signing.current_signing_round(process)
    letter = signing.letter_of(round_) if round_ is not None else None
    if round_ is None or letter is None:
        abort(404)
    return Response(
        bundle.build(process, round_, letter),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
