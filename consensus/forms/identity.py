"""Forms for logging in through an organisation's identity provider, its administration,
and passkeys."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class OrganisationLoginForm(FlaskForm):
    """Find the organisation's provider from the domain of an e-mail address."""

    email = EmailField(
        _l("Your work email address"),
        validators=[DataRequired(_l("Enter your email address.")), Length(max=254)],
    )


class IdentityProviderForm(FlaskForm):
    issuer = StringField(
        _l("Issuer URL"),
        validators=[DataRequired(_l("Enter the provider's issuer URL.")), Length(max=500)],
    )
    client_id = StringField(
        _l("Client ID"), validators=[DataRequired(_l("Enter the client ID.")), Length(max=200)]
    )
    client_secret = PasswordField(
        _l("Client secret"),
        description=_l("Stored encrypted. Leave empty to keep the stored secret."),
        validators=[Optional(), Length(max=1000)],
    )
    allowed_domains = TextAreaField(
        _l("Allowed e-mail domains"),
        description=_l("One or more, separated by spaces, such as gemeente.nl."),
        validators=[DataRequired(_l("Enter at least one e-mail domain.")), Length(max=1000)],
    )
    required_acr = StringField(
        _l("Required level of assurance (acr)"),
        validators=[Optional(), Length(max=200)],
    )
    sso_required = BooleanField(_l("Members must log in through this provider"))
    enabled = BooleanField(_l("Enabled"), default=True)


class LinkApprovalForm(FlaskForm):
    email = EmailField(
        _l("Account's email address"),
        validators=[DataRequired(_l("Enter the email address.")), Length(max=254)],
    )


class PasskeyNameForm(FlaskForm):
    name = StringField(
        _l("Name of this passkey"),
        validators=[DataRequired(_l("Enter a name, such as “work laptop”.")), Length(max=80)],
    )
