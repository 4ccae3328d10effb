"""Outgoing e-mail over SMTP, configured by CONSENSUS_MAIL_*: the password-reset link
(`send_mail`, sent at once) and the notification outbox's messages (`Mailer`, one
connection for a batch).

Plain smtplib: a timeout, and STARTTLS or implicit TLS in production. Nothing secret is
logged — a reset mail's body holds a reset link.

In development without CONSENSUS_MAIL_HOST there is no server to hand mail to: the whole
message is written to the log (the console of `flask serve`) instead, and pages that send
mail say so (`writes_to_console`). Production never does that.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage, Message
from types import TracebackType

from flask import current_app

log = logging.getLogger("consensus.mail")


class MailError(RuntimeError):
    """The message could not be handed to the SMTP server."""


def writes_to_console() -> bool:
    """Development without a mail server: messages go to the log, not to anyone's inbox."""
    config = current_app.config
    return not config["MAIL_HOST"] and not config["PRODUCTION"]


def _sender_headers(message: EmailMessage) -> None:
    config = current_app.config
    message["From"] = config["MAIL_SENDER"]
    if config.get("MAIL_REPLY_TO"):
        message["Reply-To"] = config["MAIL_REPLY_TO"]


def send_mail(to: str, subject: str, body: str) -> None:
    """Send one plain-text message; raises MailError (never leaks SMTP details upward)."""
    message = EmailMessage()
    _sender_headers(message)
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with Mailer() as mailer:
        mailer.send(message)


class Mailer:
    """One SMTP connection for several messages (opened on the first send), or the log in
    development without CONSENSUS_MAIL_HOST. `send` raises MailError.

    A refusal the server answered (a recipient, the sender or the message refused: smtplib
    has reset the transaction with RSET) keeps the connection for the next message; any
    other failure drops it, and the next send opens a new one. A connection that was already
    used and turns out closed when the next message starts (the server dropped it after a
    while or after its limit of messages per connection) is opened again once for that
    message: nothing of the message had been accepted."""

    def __init__(self) -> None:
        self._smtp: smtplib.SMTP | None = None
        self._used = False  # the open connection has carried a message
        self.connections = 0  # opened so far (the worker's log and tests)

    def __enter__(self) -> Mailer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None
        self._used = False

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None
        self._used = False

    def _connect(self) -> smtplib.SMTP:
        config = current_app.config
        host, port = config["MAIL_HOST"], int(config["MAIL_PORT"])
        timeout = config["MAIL_TIMEOUT"]
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if config["MAIL_SSL"]:
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        try:
            if config["MAIL_STARTTLS"] and not config["MAIL_SSL"]:
                smtp.starttls(context=context)
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        except BaseException:
            smtp.close()
            raise
        self.connections += 1
        return smtp

    def send(self, message: Message) -> None:
        config = current_app.config
        if writes_to_console():
            body = _plain_text(message)
            # Decoded, so a link reads as it would in a mail client (no quoted-printable).
            log.info(
                "no CONSENSUS_MAIL_HOST set (development): this mail was not sent\n"
                "From: %s\nTo: %s\nSubject: %s\n\n%s",
                config["MAIL_SENDER"],
                message["To"],
                message["Subject"],
                body,
            )
            return
        if not config["MAIL_HOST"]:
            log.warning("mail to a user could not be sent: CONSENSUS_MAIL_HOST is empty")
            raise MailError("no mail host")
        try:
            try:
                self._send(message)
            except (OSError, smtplib.SMTPException) as error:
                if not (self._used and _closed_between_messages(error)):
                    raise
                # A reused connection the server had closed: once more on a new one.
                self._drop()
                self._send(message)
        except (OSError, smtplib.SMTPException) as error:
            log.warning("mail to a user could not be sent: %s", type(error).__name__)
            if not isinstance(error, _ANSWERED) or _closed_between_messages(error):
                self._drop()
            raise MailError(describe(error)) from error

    def _send(self, message: Message) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        self._smtp.send_message(message)
        self._used = True


# The server answered about this message and smtplib reset the transaction (RSET): the
# connection serves the next message.
_ANSWERED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def _closed_between_messages(error: BaseException) -> bool:
    """The connection was closed before the message was accepted: found closed (not a
    timeout: the server may have the message then), or closed by the server with 421 to the
    sender or the recipient (e.g. "too many messages on this connection")."""
    if isinstance(error, smtplib.SMTPServerDisconnected | ConnectionResetError | BrokenPipeError):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return any(code == 421 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPSenderRefused) and error.smtp_code == 421


def _plain_text(message: Message) -> str:
    """The first text/plain part, decoded (the modern and the classic API's messages)."""
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def describe(error: BaseException) -> str:
    """A short, secret-free description of an SMTP failure (kept on the outbox row)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in error.recipients.values()})
        return f"recipient refused ({', '.join(str(c) for c in codes)})"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{type(error).__name__} {error.smtp_code}"
    return type(error).__name__


def is_permanent(error: BaseException | None) -> bool:
    """A 5xx answer about the message or its recipient: retrying will not help."""
    cause = error.__cause__ if error is not None else None
    if isinstance(cause, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in cause.recipients.values())
    if isinstance(cause, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        return cause.smtp_code >= 500
    return False


def is_about_the_recipient(error: BaseException | None) -> bool:
    """The server answered, but about this message's recipient: the next message may
    well go through (unlike a connection that failed)."""
    cause = error.__cause__ if error is not None else None
    return isinstance(cause, smtplib.SMTPRecipientsRefused)
