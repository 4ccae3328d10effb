"""A real SMTP server (aiosmtpd) that can be stopped, restarted on the same port, and told
to refuse, for the notification tests; and helpers to run the worker and read what came."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from flask import Flask


def worker_command(database_url: str, mail_port: int) -> tuple[str, dict[str, str]]:
    """The `flask` program and the environment of a notification worker run as its own
    process (as an operator runs it), on the test's database and mail server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_")}
    env.update(
        CONSENSUS_INSTANCE_PATH=os.environ["CONSENSUS_INSTANCE_PATH"],
        CONSENSUS_SECRET_KEY="test-secret-key",
        CONSENSUS_DATABASE_URL=database_url,
        CONSENSUS_MAIL_HOST="127.0.0.1",
        CONSENSUS_MAIL_PORT=str(mail_port),
        CONSENSUS_MAIL_STARTTLS="0",
    )
    return str(Path(sys.executable).with_name("flask")), env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MailServer:
    """aiosmtpd on loopback. `refuse` set to an SMTP reply (e.g. "451 4.3.0 Try again
    later") makes it refuse every recipient; `stop()`/`start()` take it away and back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.refuse: str | None = None
        self._controller = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # --- reading what arrived ---

    def recipients(self) -> list[str]:
        return sorted(str(m["To"]) for m in self.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def clear(self) -> None:
        self.messages.clear()


@contextmanager
def mail_server(app: Flask) -> Iterator[MailServer]:
    server = MailServer(free_port())
    server.start()
    app.config.update(
        MAIL_HOST="127.0.0.1",
        MAIL_PORT=server.port,
        MAIL_STARTTLS=False,
        MAIL_SSL=False,
        MAIL_TIMEOUT=5,
    )
    try:
        yield server
    finally:
        server.stop()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())
