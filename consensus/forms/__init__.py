"""WTForms forms, one module per area. Every form carries a CSRF token."""

from flask_wtf import FlaskForm


class EmptyForm(FlaskForm):
    """For button-only POSTs: the form exists so the CSRF token is checked."""
