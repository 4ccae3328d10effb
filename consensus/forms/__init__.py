"""WTForms forms, one module per area. Every form carries a CSRF token."""

from collections.abc import Iterable

from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice


class EmptyForm(FlaskForm):
    """For button-only POSTs: the form exists so the CSRF token is checked."""


def choices(pairs: Iterable[tuple[object, object]]) -> list[SelectChoice]:
    """Select options from (value, label) pairs, in WTForms' SelectChoice form."""
    return [SelectChoice(str(value), label) for value, label in pairs]  # type: ignore[arg-type]
