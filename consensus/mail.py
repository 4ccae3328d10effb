"""Outgoing e-mail over SMTP (password-reset links), configured by CONSENSUS_MAIL_*.

Plain smtplib: one message, one connection, a timeout, and STARTTLS or implicit TLS in
production. Nothing secret is logged — the body holds a reset link.

In development without CONSENSUS_MAIL_HOST there is no server to hand mail to: the whole
message is written to the log (the console of `flask serve`) instead, and pages that send
mail say so (`writes_to_console`). Production never does that.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from flask import current_app

log = logging.getLogger("consensus.mail")


class MailError(RuntimeError):
    """The message could not be handed to the SMTP server."""


def writes_to_console() -> bool:
    """Development without a mail server: messages go to the log, not to anyone's inbox."""
    config = current_app.config
    return not config["MAIL_HOST"] and not config["PRODUCTION"]


def send_mail(to: str, subject: str, body: str) -> None:
    """Send one plain-text message; raises MailError (never leaks SMTP details upward)."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    if writes_to_console():
        # Decoded, so the link reads as it would in a mail client (no quoted-printable).
        log.info(
            "no CONSENSUS_MAIL_HOST set (development): this mail was not sent\n"
            "From: %s\nTo: %s\nSubject: %s\n\n%s",
            config["MAIL_SENDER"],
            to,
            subject,
            body,
        )
        return
    if not config["MAIL_HOST"]:
        log.warning("mail to a user could not be sent: CONSENSUS_MAIL_HOST is empty")
        raise MailError("no mail host")
    host, port, timeout = config["MAIL_HOST"], int(config["MAIL_PORT"]), config["MAIL_TIMEOUT"]
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if config["MAIL_SSL"]:
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if config["MAIL_STARTTLS"] and not config["MAIL_SSL"]:
                smtp.starttls(context=context)
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        log.warning("mail to a user could not be sent: %s", type(error).__name__)
        raise MailError(type(error).__name__) from error
