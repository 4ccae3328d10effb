"""Forms for standing bodies, meetings, follow-up actions and the letter's dispatch."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileSize
from wtforms import (
    DateField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from consensus.forms import choices
from consensus.models import (
    ActionStatus,
    AgendaItemKind,
    BodyLevel,
    DecisionOutcome,
    DispatchChannel,
)

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"

LEVEL_LABELS = {
    BodyLevel.OFFICIAL: _l("Official (civil servants)"),
    BodyLevel.ADMINISTRATIVE: _l("Administrative (board members)"),
}
ITEM_KIND_LABELS = {
    AgendaItemKind.DECISION: _l("For decision"),
    AgendaItemKind.DISCUSSION: _l("For discussion"),
    AgendaItemKind.INFORMATION: _l("For information"),
}
OUTCOME_LABELS = {
    DecisionOutcome.CLEARED: _l("Cleared (official clearance)"),
    DecisionOutcome.ADOPTED: _l("Adopted"),
    DecisionOutcome.NOT_ADOPTED: _l("Not adopted"),
    DecisionOutcome.DEFERRED: _l("Deferred"),
    DecisionOutcome.NOTED: _l("Decision"),
}
STATUS_LABELS = {
    ActionStatus.OPEN: _l("Open"),
    ActionStatus.IN_PROGRESS: _l("In progress"),
    ActionStatus.DONE: _l("Completed"),
    ActionStatus.CANCELLED: _l("Cancelled"),
}
CHANNEL_LABELS = {
    DispatchChannel.EMAIL: _l("E-mail"),
    DispatchChannel.POST: _l("Post"),
    DispatchChannel.PORTAL: _l("Digital portal"),
    DispatchChannel.HAND: _l("Handed over"),
}


class BodyForm(FlaskForm):
    name = StringField(
        _l("Name"), validators=[DataRequired(_l("Enter the name.")), Length(max=200)]
    )
    slug = StringField(
        _l("Short address (slug)"),
        validators=[DataRequired(_l("Enter a short address.")), Length(max=60)],
    )
    level = SelectField(
        _l("Level"),
        choices=choices((k.value, label) for k, label in LEVEL_LABELS.items()),
        validators=[DataRequired()],
    )
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    prepares_for = SelectField(_l("Prepares for"), coerce=int, validators=[Optional()])
    secretary = SelectField(_l("Secretary"), coerce=int, validators=[Optional()])
    agenda_notice_days = IntegerField(
        _l("Agenda to the members, days before a meeting"),
        default=7,
        validators=[
            InputRequired(_l("Enter a number of days.")),
            NumberRange(min=0, max=60, message=_l("Between 0 and 60 days.")),
        ],
    )


class SeatForm(FlaskForm):
    organisation_id = SelectField(
        _l("Organisation"), coerce=int, validators=[DataRequired(_l("Choose an organisation."))]
    )
    seat_holder_id = SelectField(_l("Seat holder"), coerce=int, validators=[Optional()])
    substitute_id = SelectField(_l("Substitute"), coerce=int, validators=[Optional()])


class MeetingForm(FlaskForm):
    title = StringField(
        _l("Title"), validators=[DataRequired(_l("Enter a title.")), Length(max=200)]
    )
    starts_at = DateTimeLocalField(
        _l("Starts at"),
        format=DATETIME_FORMAT,
        validators=[DataRequired(_l("Enter the date and time the meeting starts."))],
    )
    ends_at = DateTimeLocalField(
        _l("Ends at"),
        format=DATETIME_FORMAT,
        validators=[DataRequired(_l("Enter the date and time the meeting ends."))],
    )
    place = StringField(_l("Place"), validators=[Optional(), Length(max=200)])
    video_url = StringField(_l("Video link"), validators=[Optional(), Length(max=500)])


class AgendaItemForm(FlaskForm):
    title = StringField(
        _l("Title"), validators=[DataRequired(_l("Enter a title.")), Length(max=300)]
    )
    kind = SelectField(
        _l("Kind"),
        choices=choices((k.value, label) for k, label in ITEM_KIND_LABELS.items()),
        default=AgendaItemKind.DISCUSSION.value,
    )
    description = TextAreaField(_l("Explanation"), validators=[Optional(), Length(max=5000)])
    process_id = SelectField(_l("Process"), coerce=int, validators=[Optional()])
    position_id = SelectField(_l("Position"), coerce=int, validators=[Optional()])
    round_id = SelectField(_l("Round"), coerce=int, validators=[Optional()])
    document_title = StringField(_l("Document title"), validators=[Optional(), Length(max=200)])
    document_url = StringField(_l("Document link"), validators=[Optional(), Length(max=500)])


class DecisionForm(FlaskForm):
    text = TextAreaField(
        _l("Decision"), validators=[DataRequired(_l("Enter the decision.")), Length(max=5000)]
    )
    outcome = SelectField(
        _l("Kind of decision"),
        choices=choices((k.value, label) for k, label in OUTCOME_LABELS.items()),
        default=DecisionOutcome.NOTED.value,
    )
    item_id = SelectField(_l("Agenda item"), coerce=int, validators=[Optional()])


class MinutesForm(FlaskForm):
    minutes = TextAreaField(_l("Minutes"), validators=[Optional(), Length(max=100_000)])


class ActionForm(FlaskForm):
    title = StringField(
        _l("What has to be done"),
        validators=[DataRequired(_l("Say what has to be done.")), Length(max=300)],
    )
    owner_id = SelectField(
        _l("Owner organisation"),
        coerce=int,
        validators=[DataRequired(_l("Choose the organisation that owns the action."))],
    )
    due_on = DateField(_l("Due date"), validators=[DataRequired(_l("Enter the due date."))])
    description = TextAreaField(_l("Explanation"), validators=[Optional(), Length(max=5000)])
    theme = SelectField(_l("Theme"), validators=[Optional()])
    link_url = StringField(_l("Link"), validators=[Optional(), Length(max=500)])


class SourcedActionForm(ActionForm):
    """From a process: out of its outcome, or out of its letter."""

    source = SelectField(
        _l("Comes from"),
        choices=choices([("outcome", _l("The outcome")), ("letter", _l("The letter"))]),
        default="outcome",
    )


class ProgressForm(FlaskForm):
    status = SelectField(
        _l("Status"), choices=choices((k.value, label) for k, label in STATUS_LABELS.items())
    )
    note = TextAreaField(_l("Progress note"), validators=[Optional(), Length(max=5000)])


class DispatchForm(FlaskForm):
    addressee = StringField(
        _l("Addressee"), validators=[DataRequired(_l("Enter the addressee.")), Length(max=300)]
    )
    sent_on = DateField(_l("Sent on"), validators=[DataRequired(_l("Enter the date."))])
    channel = SelectField(
        _l("Channel"), choices=choices((k.value, label) for k, label in CHANNEL_LABELS.items())
    )
    reference = StringField(_l("Reference"), validators=[Optional(), Length(max=120)])


class ReplyForm(FlaskForm):
    received_on = DateField(_l("Received on"), validators=[DataRequired(_l("Enter the date."))])
    summary = TextAreaField(
        _l("Summary"), validators=[DataRequired(_l("Summarise the reply.")), Length(max=5000)]
    )
    reference = StringField(_l("Reference"), validators=[Optional(), Length(max=120)])
    document = FileField(
        _l("The reply (PDF)"),
        validators=[
            FileSize(max_size=5 * 1024 * 1024, message=_l("The file is larger than 5 MB."))
        ],
    )


class CancelMeetingForm(FlaskForm):
    reason = TextAreaField(
        _l("Why is the meeting cancelled?"),
        validators=[DataRequired(_l("Say why the meeting is cancelled.")), Length(max=2000)],
    )


class DocumentForm(FlaskForm):
    item_id = SelectField(_l("Agenda item"), coerce=int)
    title = StringField(_l("Document title"), validators=[Optional(), Length(max=200)])
    document = FileField(
        _l("File (PDF, ODF or Office, at most 10 MB)"),
        validators=[
            FileSize(max_size=10 * 1024 * 1024, message=_l("The file is larger than 10 MB."))
        ],
    )
