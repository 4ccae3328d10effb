"""The notification preferences form: one choice per kind, the digest's hour and zone."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField
from wtforms.validators import Length

from consensus.forms import choices
from consensus.models import Delivery
from consensus.notifications.preferences import DEFAULTS, LABELS, time_zones

DELIVERY_CHOICES = [
    (Delivery.IMMEDIATE.value, _l("At once")),
    (Delivery.DIGEST.value, _l("In the daily summary")),
    (Delivery.OFF.value, _l("Not by e-mail")),
]


class NotificationPreferencesForm(FlaskForm):
    """Fields named after the kinds (NotificationKind values); see `kind_fields`."""

    digest_hour = SelectField(
        _l("Time of the daily summary"),
        coerce=int,
        choices=choices((hour, f"{hour:02d}:00") for hour in range(24)),
    )
    time_zone = SelectField(_l("Time zone"), choices=[])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone.choices = choices((zone, zone.replace("_", " ")) for zone in time_zones())

    def kind_fields(self) -> list[RadioField]:
        return [getattr(self, kind.value) for kind in DEFAULTS]

    def choices_made(self) -> dict[str, str]:
        return {kind.value: str(getattr(self, kind.value).data) for kind in DEFAULTS}


for _kind in DEFAULTS:
    setattr(
        NotificationPreferencesForm,
        _kind.value,
        RadioField(LABELS[_kind], choices=choices(DELIVERY_CHOICES), default=DEFAULTS[_kind].value),
    )


class DeadlineWarningsForm(FlaskForm):
    deadline_warning_days = StringField(
        _l("Warn before a deadline (days)"), validators=[Length(max=40)]
    )
