"""Forms for positions, versions, comments and amendments."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from consensus.forms import choices
from consensus.models import AmendmentState

DECISION_LABELS = {
    AmendmentState.ACCEPTED: _l("Accepted"),
    AmendmentState.ACCEPTED_IN_PART: _l("Accepted in part"),
    AmendmentState.REJECTED: _l("Rejected"),
}
STATE_LABELS = {
    AmendmentState.PENDING: _l("Pending"),
    **DECISION_LABELS,
    AmendmentState.WITHDRAWN: _l("Withdrawn"),
}


class PositionForm(FlaskForm):
    title = StringField(
        _l("Title"), validators=[DataRequired(_l("Enter a title.")), Length(max=200)]
    )
    subject = StringField(_l("Subject"), validators=[Optional(), Length(max=300)])
    addressee = TextAreaField(_l("Addressee"), validators=[Optional(), Length(max=2000)])
    place = StringField(_l("Place"), validators=[Optional(), Length(max=100)])
    letter_date = DateField(_l("Date of the letter"), validators=[Optional()])
    reference = StringField(_l("Reference number"), validators=[Optional(), Length(max=100)])


class NewPositionForm(PositionForm):
    body = TextAreaField(
        _l("Text (version 1)"),
        validators=[DataRequired(_l("Enter the text of the position.")), Length(max=200_000)],
    )


class VersionForm(FlaskForm):
    organisation_id = SelectField(_l("On behalf of"), coerce=int, validate_choice=True)
    body = TextAreaField(
        _l("Text"),
        validators=[DataRequired(_l("Enter the text of the position.")), Length(max=200_000)],
    )
    change_summary = TextAreaField(
        _l("What changed"),
        validators=[DataRequired(_l("Describe what changed.")), Length(max=2000)],
    )


class CommentForm(FlaskForm):
    organisation_id = SelectField(_l("On behalf of"), coerce=int)
    paragraph_anchor = HiddenField(validators=[Optional(), Length(max=40)])
    parent_id = HiddenField(validators=[Optional(), Length(max=20)])
    body = TextAreaField(
        _l("Comment"), validators=[DataRequired(_l("Write a comment.")), Length(max=10_000)]
    )


class CommentEditForm(FlaskForm):
    body = TextAreaField(
        _l("Comment"), validators=[DataRequired(_l("Write a comment.")), Length(max=10_000)]
    )


AMENDMENT_KINDS = {
    "replace": _l("Change or remove the text of paragraphs"),
    "insert": _l("Add a new paragraph"),
}


class AmendmentForm(FlaskForm):
    organisation_id = SelectField(_l("On behalf of"), coerce=int)
    kind = RadioField(
        _l("What do you propose?"),
        choices=choices(AMENDMENT_KINDS.items()),
        default="replace",
        validators=[DataRequired(_l("Choose what you propose."))],
    )
    paragraph = SelectField(_l("Paragraph"), validators=[DataRequired(_l("Choose a paragraph."))])
    end_paragraph = SelectField(_l("Through paragraph"), validators=[Optional()])
    proposed_text = TextAreaField(_l("Proposed text"), validators=[Optional(), Length(max=200_000)])
    rationale = TextAreaField(
        _l("Rationale"),
        validators=[DataRequired(_l("Explain why you propose this change.")), Length(max=10_000)],
    )


class DecisionForm(FlaskForm):
    decision = RadioField(
        _l("Decision"),
        choices=choices((s.value, label) for s, label in DECISION_LABELS.items()),
        validators=[DataRequired(_l("Choose a decision."))],
    )
    adopted_text = TextAreaField(
        _l("Text adopted (for \u201caccepted in part\u201d)"),
        validators=[Optional(), Length(max=200_000)],
    )
    reason = TextAreaField(
        _l("Reason"),
        validators=[DataRequired(_l("Give the reason for this decision.")), Length(max=10_000)],
    )


class RebaseForm(FlaskForm):
    paragraph = SelectField(_l("Paragraph in the latest version"))
    adopted_text = TextAreaField(_l("Text adopted"), validators=[Optional(), Length(max=200_000)])


class ApplyForm(FlaskForm):
    preview_sha256 = HiddenField(validators=[DataRequired(), Length(min=64, max=64)])
    change_summary = TextAreaField(_l("What changed"), validators=[Optional(), Length(max=2000)])


class PinForm(FlaskForm):
    round_id = SelectField(_l("Round"), coerce=int)
