"""E-mail to a person when something security-relevant changed on their account.

ASVS 2.2.3 / 2.5.5: a password change or reset, and turning two-factor authentication on
or off, are announced by e-mail so a person notices a take-over they did not do. The mail
carries no secrets and no links that act; sending happens after the change is committed
and a failure never undoes the change (it is logged by consensus.mail).
"""

from __future__ import annotations

import contextlib

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from consensus.mail import MailError, send_mail
from consensus.models import User, utcnow


def notify_security_change(user: User, change: str) -> None:
    """Tell the account holder, in their own language, what changed and when."""
    with force_locale(user.locale), contextlib.suppress(MailError):
        subjects = {
            "password_changed": _("Your Consensus password was changed"),
            "password_reset": _("Your Consensus password was reset"),
            "totp_enabled": _("Two-factor authentication was turned on for your Consensus account"),
            "totp_disabled": _(
                "Two-factor authentication was turned off for your Consensus account"
            ),
            "recovery_codes": _("New recovery codes were made for your Consensus account"),
        }
        send_mail(
            user.email,
            subjects[change],
            render_template(
                "auth/security_change_mail.txt",
                user=user,
                subject=subjects[change],
                moment=utcnow(),
            ),
        )
