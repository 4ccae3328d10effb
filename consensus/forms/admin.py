"""Forms for the administrators' pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from consensus.forms import choices
from consensus.models import MembershipRole, OrganisationKind

KIND_LABELS = {
    OrganisationKind.MUNICIPALITIES: _l("Municipalities"),
    OrganisationKind.PROVINCES: _l("Provinces"),
    OrganisationKind.WATER_BOARDS: _l("Water boards"),
    OrganisationKind.NATIONAL_GOVERNMENT: _l("National government"),
    OrganisationKind.OTHER: _l("Other"),
}
ROLE_LABELS = {
    MembershipRole.REPRESENTATIVE: _l("Representative"),
    MembershipRole.OFFICIAL: _l("Official"),
    MembershipRole.OBSERVER: _l("Observer"),
}


class OrganisationForm(FlaskForm):
    name = StringField(
        _l("Name"), validators=[DataRequired(_l("Enter the name.")), Length(max=200)]
    )
    short_name = StringField(
        _l("Short name"),
        validators=[DataRequired(_l("Enter a short name, such as VNG.")), Length(max=40)],
    )
    slug = StringField(
        _l("Short address (slug)"),
        validators=[DataRequired(_l("Enter a short address.")), Length(max=40)],
    )
    kind = SelectField(
        _l("Kind"),
        choices=choices((k.value, label) for k, label in KIND_LABELS.items()),
        validators=[DataRequired()],
    )
    active = BooleanField(_l("Active"), default=True)


class UserForm(FlaskForm):
    email = EmailField(
        _l("Email address"),
        validators=[
            DataRequired(_l("Enter the email address.")),
            Email(_l("Enter an email address like name@example.org."), check_deliverability=False),
            Length(max=254),
        ],
    )
    display_name = StringField(
        _l("Name"), validators=[DataRequired(_l("Enter the name.")), Length(max=120)]
    )
    is_admin = BooleanField(_l("Administrator"))
    is_facilitator = BooleanField(_l("Facilitator"))
    active = BooleanField(_l("Active"), default=True)


class UserCreateForm(UserForm):
    password = PasswordField(
        _l("Initial password"),
        validators=[DataRequired(_l("Enter an initial password.")), Length(max=1024)],
    )


class MembershipForm(FlaskForm):
    organisation_id = SelectField(
        _l("Organisation"), coerce=int, validators=[DataRequired(_l("Choose an organisation."))]
    )
    role = SelectField(
        _l("Role"),
        choices=choices((r.value, label) for r, label in ROLE_LABELS.items()),
        validators=[DataRequired()],
    )
    title = StringField(_l("Job title"), validators=[Optional(), Length(max=200)])
    valid_from = DateField(_l("Valid from"), validators=[Optional()])
    valid_until = DateField(_l("Valid until"), validators=[Optional()])


class MembershipEditForm(FlaskForm):
    role = SelectField(
        _l("Role"),
        choices=choices((r.value, label) for r, label in ROLE_LABELS.items()),
        validators=[DataRequired()],
    )
    title = StringField(_l("Job title"), validators=[Optional(), Length(max=200)])
    valid_from = DateField(_l("Valid from"), validators=[Optional()])
    valid_until = DateField(_l("Valid until"), validators=[Optional()])
