"""Forms for stances, clearance, outcome statements and delegations."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DateTimeLocalField, RadioField, SelectField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from consensus.forms import choices
from consensus.services.endorsements import CLEARANCE_LABELS, MAX_TEXT, STANCE_LABELS

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class StanceForm(FlaskForm):
    """The organisation is a choice among those the person holds the mandate for; the
    gate checks it again on submit, so a forged value gets nowhere."""

    organisation_id = SelectField(_l("On behalf of"), coerce=int)
    kind = RadioField(
        _l("Stance"),
        choices=choices((kind.value, label) for kind, label in STANCE_LABELS.items()),
        validators=[InputRequired(_l("Choose a stance."))],
    )
    text = TextAreaField(
        _l("Reservation or reason"),
        validators=[Optional(), Length(max=MAX_TEXT)],
    )


class ClearanceForm(FlaskForm):
    organisation_id = SelectField(_l("On behalf of"), coerce=int)
    decision = RadioField(
        _l("Official clearance"),
        choices=choices((d.value, label) for d, label in CLEARANCE_LABELS.items()),
        validators=[InputRequired(_l("Choose whether you clear this version."))],
    )
    remarks = TextAreaField(_l("Remarks"), validators=[Optional(), Length(max=MAX_TEXT)])


class OutcomeStatementForm(FlaskForm):
    statement = TextAreaField(
        _l("Outcome statement"),
        validators=[DataRequired(_l("Write the outcome statement.")), Length(max=20000)],
    )
    review_on = DateField(_l("Review date"), validators=[Optional()])


class DelegationForm(FlaskForm):
    organisation_id = SelectField(_l("Organisation"), coerce=int)
    delegate_id = SelectField(_l("Substitute"), coerce=int)
    valid_from = DateTimeLocalField(
        _l("From"),
        format=DATETIME_FORMAT,
        validators=[InputRequired(_l("Enter a date and time."))],
    )
    valid_until = DateTimeLocalField(
        _l("Until"),
        format=DATETIME_FORMAT,
        validators=[InputRequired(_l("Enter a date and time."))],
    )
    note = TextAreaField(_l("Note (why, for what)"), validators=[Optional(), Length(max=2000)])
