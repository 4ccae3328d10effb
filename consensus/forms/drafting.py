"""Forms for drafting as partner organisations do it (issue 21)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    HiddenField,
    RadioField,
    SelectField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from consensus.forms import choices
from consensus.forms.processes import DATETIME_FORMAT


class GroupDecisionForm(FlaskForm):
    """One group of overlapping amendments decided at once. `decision` is "adopt:<n>",
    "reject" or "compromise"; its choices are the group's amendments."""

    # The reasons and the compromise text are required or not by the chosen decision (the
    # rule is services.drafting.decide_group's): none is marked "(optional)", and each hint
    # says when it is required.
    numbers = HiddenField(validators=[DataRequired(), Length(max=2000)])
    decision = RadioField(_l("Decision"), validators=[DataRequired(_l("Choose a decision."))])
    reason = TextAreaField(_l("Reason for the adopted text"), validators=[Length(max=10_000)])
    shared_reason = TextAreaField(
        _l("Shared reason for the amendments not adopted"), validators=[Length(max=10_000)]
    )
    compromise_text = TextAreaField(_l("Compromise text"), validators=[Length(max=200_000)])


CONTRIBUTION_KINDS = {
    "replace": _l("Change or remove paragraphs"),
    "insert": _l("Add a new paragraph"),
    "comment": _l("A comment"),
}


class ContributionForm(FlaskForm):
    """A contribution of the organisation in preparation."""

    kind = RadioField(
        _l("What does your organisation contribute?"),
        choices=choices(CONTRIBUTION_KINDS.items()),
        default="replace",
        validators=[DataRequired(_l("Choose what you propose."))],
    )
    paragraph = SelectField(_l("Paragraph"), validators=[Optional()])
    end_paragraph = SelectField(_l("Through paragraph"), validators=[Optional()])
    text = TextAreaField(_l("Text"), validators=[Optional(), Length(max=200_000)])
    rationale = TextAreaField(_l("Rationale"), validators=[Optional(), Length(max=10_000)])


class ContributionEditForm(FlaskForm):
    text = TextAreaField(_l("Text"), validators=[Optional(), Length(max=200_000)])
    rationale = TextAreaField(_l("Rationale"), validators=[Optional(), Length(max=10_000)])


class NoteForm(FlaskForm):
    body = TextAreaField(
        _l("Internal comment"),
        validators=[DataRequired(_l("Write a comment.")), Length(max=10_000)],
    )


class DraftingSettingsForm(FlaskForm):
    individual_contributions = BooleanField(
        _l("Officials may also comment and propose amendments individually")
    )


class SendDispositionForm(FlaskForm):
    respond_by = DateTimeLocalField(
        _l("Organisations respond until"),
        format=DATETIME_FORMAT,
        validators=[DataRequired(_l("Enter the end of the feedback period."))],
    )
    publish_at = DateTimeLocalField(
        _l("Publish the report at"),
        format=DATETIME_FORMAT,
        validators=[DataRequired(_l("Enter when the report is published."))],
    )


FEEDBACK_CHOICES = {
    "agree": _l("We agree"),
    "contest": _l("We contest this decision"),
}


class FeedbackForm(FlaskForm):
    response = RadioField(
        _l("Your organisation's answer"),
        choices=choices(FEEDBACK_CHOICES.items()),
        validators=[DataRequired(_l("Choose whether you agree."))],
    )
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=10_000)])
