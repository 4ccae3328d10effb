"""Forms for drafting as partner organisations do it (issue 21)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class GroupDecisionForm(FlaskForm):
    """One group of overlapping amendments decided at once. `decision` is "adopt:<n>",
    "reject" or "compromise"; its choices are the group's amendments."""

    numbers = HiddenField(validators=[DataRequired(), Length(max=2000)])
    decision = RadioField(_l("Decision"), validators=[DataRequired(_l("Choose a decision."))])
    reason = TextAreaField(
        _l("Reason for the adopted text"), validators=[Optional(), Length(max=10_000)]
    )
    shared_reason = TextAreaField(
        _l("Shared reason for the rejected amendments"),
        validators=[Optional(), Length(max=10_000)],
    )
    compromise_text = TextAreaField(
        _l("Compromise text"), validators=[Optional(), Length(max=200_000)]
    )
