"""E-mail to a person when something security-relevant changed on their account.

ASVS 2.2.3 / 2.5.5: a password change or reset, and turning two-factor authentication on
or off, are announced by e-mail so a person notices a take-over they did not do. The mail
carries no secrets and no links that act. The account services record a
`events.SecurityChanged`; this handler (registered in create_app, consensus.hooks) sends the
mail after the change is committed, never before, and a failure never undoes the change (it
is logged by consensus.mail).
"""

from __future__ import annotations

import contextlib

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from consensus.events import SecurityChanged
from consensus.mail import MailError, send_mail


def send_security_notice(event: SecurityChanged) -> None:
    """Tell the account holder, in their own language, what changed and when."""
    with force_locale(event.locale), contextlib.suppress(MailError):
        subjects = {
            "password_changed": _("Your Consensus password was changed"),
            "password_reset": _("Your Consensus password was reset"),
            "totp_enabled": _("Two-factor authentication was turned on for your Consensus account"),
            "totp_disabled": _(
                "Two-factor authentication was turned off for your Consensus account"
            ),
            "recovery_codes": _("New recovery codes were made for your Consensus account"),
            "api_token_created": _("A personal access token was made for your Consensus account"),
            "passkey_added": _("A passkey was added to your Consensus account"),
            "passkey_removed": _("A passkey was removed from your Consensus account"),
        }
        send_mail(
            event.email,
            subjects[event.change],
            render_template(
                "auth/security_change_mail.txt",
                user=event,
                subject=subjects[event.change],
                moment=event.at,
            ),
        )
