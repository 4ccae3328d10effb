"""Forms for facilitators and participants of processes."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from consensus.forms import choices
from consensus.models import DecisionRule, RoundType

RULE_LABELS = {
    DecisionRule.CONSENSUS: _l("Consensus"),
    DecisionRule.CONSENT: _l("Consent"),
    DecisionRule.UNANIMITY: _l("Unanimity"),
    DecisionRule.QUALIFIED_MAJORITY: _l("Qualified majority"),
}
RULE_HINTS = {
    DecisionRule.CONSENSUS: _l(
        "No objections, every participant endorses or abstains, and at least the quorum endorses."
    ),
    DecisionRule.CONSENT: _l("No objections, and at least the quorum responds."),
    DecisionRule.UNANIMITY: _l("Every participating organisation endorses."),
    DecisionRule.QUALIFIED_MAJORITY: _l(
        "At least the set share of participating organisations endorses, and the quorum responds."
    ),
}
ROUND_TYPE_LABELS = {
    RoundType.DRAFTING: _l("Drafting"),
    RoundType.CONSULTATION: _l("Consultation"),
    RoundType.CLEARANCE: _l("Official clearance"),
    RoundType.ENDORSEMENT: _l("Endorsement"),
    RoundType.SIGNING: _l("Signing"),
}
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class ProcessForm(FlaskForm):
    title = StringField(
        _l("Title"), validators=[DataRequired(_l("Enter a title.")), Length(max=200)]
    )
    purpose = TextAreaField(_l("Purpose"), validators=[Optional(), Length(max=20000)])
    themes = StringField(_l("Themes"), validators=[Optional(), Length(max=800)])
    decision_rule = SelectField(
        _l("Decision rule"),
        choices=choices((rule.value, label) for rule, label in RULE_LABELS.items()),
    )
    quorum = IntegerField(
        _l("Quorum (number of organisations)"),
        default=0,
        validators=[
            InputRequired(_l("Enter a number, 0 or more.")),
            NumberRange(min=0, max=1000, message=_l("Enter a number from 0 to 1000.")),
        ],
    )
    qualified_share_percent = IntegerField(
        _l("Share that must endorse (%)"),
        validators=[
            Optional(),
            NumberRange(min=1, max=100, message=_l("Enter a percentage from 1 to 100.")),
        ],
    )
    hide_tally_until_closed = BooleanField(_l("Hide the tally until the endorsement round closes"))
    require_clearance = BooleanField(_l("Require official clearance before endorsement"))


class ParticipantForm(FlaskForm):
    organisation_id = SelectField(
        _l("Organisation"), coerce=int, validators=[DataRequired(_l("Choose an organisation."))]
    )
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=500)])


class RemoveParticipantForm(FlaskForm):
    reason = StringField(
        _l("Reason for removing"),
        validators=[
            DataRequired(_l("Give a reason for removing this organisation.")),
            Length(max=500),
        ],
    )


class FacilitatorForm(FlaskForm):
    user_id = SelectField(
        _l("Facilitator"), coerce=int, validators=[DataRequired(_l("Choose a person."))]
    )


class RoundForm(FlaskForm):
    type = SelectField(
        _l("Kind of round"),
        choices=choices((t.value, label) for t, label in ROUND_TYPE_LABELS.items()),
    )
    title = StringField(
        _l("Title"), validators=[DataRequired(_l("Enter a title.")), Length(max=200)]
    )
    instructions = TextAreaField(
        _l("Instructions for participants"), validators=[Optional(), Length(max=10000)]
    )
    opens_at = DateTimeLocalField(
        _l("Opens at"),
        format=DATETIME_FORMAT,
        validators=[DataRequired(_l("Enter the date and time the round opens."))],
    )
    closes_at = DateTimeLocalField(
        _l("Closes at (deadline)"),
        format=DATETIME_FORMAT,
        validators=[DataRequired(_l("Enter the deadline."))],
    )


class ExtendForm(FlaskForm):
    closes_at = DateTimeLocalField(
        _l("New deadline"),
        format=DATETIME_FORMAT,
        validators=[DataRequired(_l("Enter the new deadline."))],
    )
    reason = StringField(
        _l("Reason"),
        validators=[DataRequired(_l("Give a reason for the extension.")), Length(max=500)],
    )


class WithdrawForm(FlaskForm):
    reason = StringField(
        _l("Reason"),
        validators=[
            DataRequired(_l("Give a reason for withdrawing the process.")),
            Length(max=500),
        ],
    )


class PublishForm(FlaskForm):
    publish_at = DateTimeLocalField(
        _l("Publish at (leave empty to publish now)"),
        format=DATETIME_FORMAT,
        validators=[Optional()],
    )


class ActForm(FlaskForm):
    """A button-only action for one organisation (e.g. "our input is complete")."""

    organisation_id = SelectField(
        _l("On behalf of"),
        coerce=int,
        validators=[DataRequired(_l("Choose the organisation you act for."))],
    )
