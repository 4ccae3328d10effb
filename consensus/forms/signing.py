"""Forms for keys, certificates and co-signing. Uploads are size-limited and type-checked."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired, FileSize
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from consensus.forms import choices
from consensus.models import KeyCustody
from consensus.signing import (
    CUSTODY_LABELS,
    PKCS12_MAX_BYTES,
    SIGNATURE_MAX_BYTES,
    STATEMENT_MAX_BYTES,
)


class CustodyForm(FlaskForm):
    custody = SelectField(
        _l("Who holds the signing key"),
        choices=choices((c.value, CUSTODY_LABELS[c]) for c in KeyCustody),
        validators=[DataRequired()],
    )


class Pkcs12Form(FlaskForm):
    file = FileField(
        _l("Certificate and private key (PKCS#12, .p12 or .pfx)"),
        validators=[FileRequired(), FileSize(max_size=PKCS12_MAX_BYTES)],
    )
    password = PasswordField(_l("Password of the file"), validators=[Optional(), Length(max=1024)])


class EnrolKeyForm(FlaskForm):
    public_key = TextAreaField(
        _l("Public key"),
        description=_l("The line from id_ed25519.pub or id_ed25519_sk.pub."),
        validators=[DataRequired(), Length(max=2000)],
    )
    label = StringField(_l("Name of this key (optional)"), validators=[Length(max=120)])


class RevokeKeyForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class RemoteAuthorisationFields:
    """The signer's own authorisation at the organisation's CSC provider (shown only when
    the organisation signs remotely): sent to the provider only, never stored."""

    csc_pin = PasswordField(
        _l("PIN of your credential at the signing service"),
        description=_l(
            "Only if your signing service asks for it. It goes to the service only; "
            "Consensus does not keep it."
        ),
        validators=[Optional(), Length(max=100)],
    )
    csc_otp = StringField(
        _l("One-time code from your signing service"),
        description=_l("Only if your signing service uses one."),
        validators=[Optional(), Length(max=100)],
    )


class ReauthForm(FlaskForm, RemoteAuthorisationFields):
    """Re-authentication at the moment of a platform-held signature."""

    password = PasswordField(_l("Your password"), validators=[DataRequired(), Length(max=1024)])
    code = StringField(
        _l("Code from your authenticator app"),
        validators=[Optional(), Length(max=20)],
    )


class UploadSignatureForm(FlaskForm, RemoteAuthorisationFields):
    statement = FileField(
        _l("The statement you signed (statement-….json)"),
        validators=[FileRequired(), FileSize(max_size=STATEMENT_MAX_BYTES)],
    )
    signature = FileField(
        _l("Its signature (statement-….json.sig)"),
        validators=[FileRequired(), FileSize(max_size=SIGNATURE_MAX_BYTES)],
    )


class RemoteSigningForm(FlaskForm):
    """The organisation's CSC remote signing service (docs/signing.md)."""

    enabled = BooleanField(_l("Sign the PDF at the organisation's own signing service (CSC)"))
    service_url = StringField(
        _l("Service address"),
        description=_l("The CSC API base address, e.g. https://csc.provider.example/csc/v1"),
        validators=[Optional(), Length(max=500)],
    )
    credential_id = StringField(
        _l("Credential id"),
        description=_l("The id of the signer's certificate and key at the provider."),
        validators=[Optional(), Length(max=300)],
    )
    token = PasswordField(
        _l("Access token"),
        description=_l("Kept encrypted; leave empty to keep the stored one."),
        validators=[Optional(), Length(max=4000)],
    )
