"""The form that makes a personal access token for the REST API."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from consensus.forms import choices
from consensus.services.api_tokens import EXPIRY_DAYS


class TokenForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[DataRequired(_l("Give the token a name.")), Length(max=100)],
    )
    scopes = RadioField(
        _l("What the token may do"),
        choices=choices([("read", _l("Read only")), ("read write", _l("Read and write"))]),
        default="read",
        validators=[DataRequired(_l("Choose what the token may do."))],
    )
    days = SelectField(
        _l("Expires after"),
        coerce=int,
        default=90,
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Worded per request, in the reader's language.
        self.days.choices = choices(
            (d, ngettext("%(num)d day", "%(num)d days", d)) for d in EXPIRY_DAYS
        )
