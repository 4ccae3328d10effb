"""The notification worker claims, sends and records messages in batches (issue 23): a real
SMTP server (aiosmtpd) that refuses some recipients, closes connections or hangs, the real
worker in-process and as a process that is killed mid-batch; the write transactions a batch
costs are counted at the database engine."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections import Counter
from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import event, select

from consensus.extensions import db
from consensus.models import MailState, NotificationKind, OutgoingMail, User, utcnow
from consensus.notifications import outbox
from consensus.notifications.compose import Content
from tests.factories import make_user
from tests.notification_support import MailServer, free_port, html_of, text_of, worker_command


class Server(MailServer):
    """aiosmtpd that answers given recipients with given replies (`refuse_for`), notes the
    connection (peer) each message came over, and can answer 421 to the sender after
    `messages_per_connection` messages on one connection (as a relay with such a limit)."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.refuse_for: dict[str, str] = {}
        self.peers: list[object] = []
        self.messages_per_connection: int | None = None
        self.raw: list[bytes] = []  # as on the wire
        self._on_connection: Counter[object] = Counter()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        limit = self.messages_per_connection
        if limit is not None and self._on_connection[session.peer] >= limit:
            return "421 4.7.0 Too many messages on this connection"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse_for:
            return self.refuse_for[address]
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self._on_connection[session.peer] += 1
        self.peers.append(session.peer)
        self.raw.append(envelope.original_content)
        return await super().handle_DATA(server, session, envelope)

    def message_ids(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in self.messages)


@pytest.fixture
def smtp(app):
    server = Server(free_port())
    server.start()
    app.config.update(
        MAIL_HOST="127.0.0.1", MAIL_PORT=server.port, MAIL_STARTTLS=False, MAIL_SSL=False
    )
    try:
        yield server
    finally:
        server.stop()


def queue_for(count: int, *, prefix: str = "persoon") -> list[User]:
    """`count` people with one due message each in the outbox."""
    people = [make_user(f"{prefix}{n}@example.org") for n in range(count)]
    db.session.commit()

    def make(user: User, organisations: list) -> Content:
        return Content(subject=f"Bericht voor {user.email}", paragraphs=["Een bericht."])

    outbox.notify(NotificationKind.REMINDER, [(p.id, None) for p in people], make)
    # The test's reads end (on SQLite an open snapshot would hide the worker's writes).
    db.session.commit()
    return people


def rows() -> dict[str, OutgoingMail]:
    db.session.expire_all()
    found = {m.recipient: m for m in db.session.execute(select(OutgoingMail)).scalars()}
    db.session.commit()
    return found


class Commits:
    """Counts COMMITs at the engine (every transaction the worker ends, read or write)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, connection) -> None:
        self.count += 1

    def __enter__(self) -> Commits:
        event.listen(db.engine, "commit", self)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(db.engine, "commit", self)


def test_a_batch_costs_two_transactions_and_one_connection(app, smtp):
    app.config["NOTIFICATIONS_BATCH_SIZE"] = 50
    people = queue_for(120)
    with Commits() as commits:
        done = outbox.deliver_due()
    assert (done.sent, done.retried, done.dead) == (120, 0, 0)
    # 50 + 50 + 20: each batch one claim and one record of its results; the short last
    # batch shows that nothing more is due. One message at a time took three per message.
    assert commits.count == 6
    assert len(set(smtp.peers)) == 1  # one SMTP connection for the whole pass
    assert smtp.recipients() == sorted(p.email for p in people)
    assert set(smtp.message_ids().values()) == {1}
    found = rows()
    assert {m.state for m in found.values()} == {MailState.SENT}
    assert {(m.attempts, m.claimed_by, m.claimed_until) for m in found.values()} == {
        (1, None, None)
    }
    assert all(m.sent_at is not None for m in found.values())
    assert set(smtp.message_ids()) == {m.message_id for m in found.values()}


def test_one_refused_recipient_fails_neither_the_batch_nor_the_others(app, smtp, login_as):
    people = queue_for(8)
    dead, later = people[2].email, people[5].email
    smtp.refuse_for = {dead: "550 5.1.1 No such user", later: "451 4.3.0 Try again later"}
    now = utcnow()
    done = outbox.deliver_due(now)
    assert (done.sent, done.retried, done.dead) == (6, 1, 1)
    others = sorted(p.email for p in people if p.email not in (dead, later))
    assert smtp.recipients() == others
    assert set(smtp.message_ids().values()) == {1}
    assert len(set(smtp.peers)) == 1  # the refusals did not cost the connection
    found = rows()
    assert (found[dead].state, found[dead].attempts, found[dead].last_error) == (
        MailState.DEAD,
        1,
        "recipient refused (550)",
    )
    assert (found[later].state, found[later].attempts, found[later].last_error) == (
        MailState.QUEUED,
        1,
        "recipient refused (451)",
    )
    assert found[later].next_attempt_at == now + timedelta(minutes=1)
    assert all(found[e].state == MailState.SENT for e in others)
    assert all(m.claimed_by is None and m.claimed_until is None for m in found.values())
    assert outbox.queue_counts() == {"queued": 1, "sent": 6, "dead": 1}
    # The administrators see the dead one, not the one that waits for its retry.
    admin = make_user("beheer@example.org", is_admin=True)
    db.session.commit()
    page = login_as(admin).get("/admin/mail")
    assert page.status_code == 200
    assert dead in page.text and "recipient refused (550)" in page.text
    assert later not in page.text
    # The next pass after the back-off: only the retried one, with its Message-ID.
    smtp.refuse_for = {}
    again = outbox.deliver_due(now + timedelta(minutes=2))
    assert (again.sent, again.retried, again.dead) == (1, 0, 0)
    assert [m["To"] for m in smtp.to(later)] == [later]
    assert smtp.to(later)[0]["Message-ID"] == found[later].message_id
    assert set(smtp.message_ids().values()) == {1} and len(smtp.messages) == 7
    assert smtp.to(dead) == []


def test_a_server_away_mid_batch_releases_the_rest_untried(app, smtp):
    queue_for(5)
    smtp.stop()
    done = outbox.deliver_due(utcnow())
    assert (done.sent, done.retried, done.dead) == (0, 1, 0)
    found = sorted(rows().values(), key=lambda m: m.id)
    assert [m.attempts for m in found] == [1, 0, 0, 0, 0]
    assert {m.state for m in found} == {MailState.QUEUED}
    assert all(m.claimed_by is None and m.claimed_until is None for m in found)


def test_a_connection_the_server_closes_is_opened_again(app, smtp):
    """A relay that takes 3 messages a connection (421 to the 4th sender): 10 messages go
    over 4 connections, each once, none counted as a failure."""
    smtp.messages_per_connection = 3
    people = queue_for(10)
    done = outbox.deliver_due()
    assert (done.sent, done.retried, done.dead) == (10, 0, 0)
    assert smtp.recipients() == sorted(p.email for p in people)
    assert set(smtp.message_ids().values()) == {1}
    assert sorted(Counter(smtp.peers).values()) == [1, 3, 3, 3]
    assert {(m.state, m.attempts) for m in rows().values()} == {(MailState.SENT, 1)}


def test_a_batch_out_of_time_releases_the_rest_for_the_next_batch(app, smtp, monkeypatch):
    """A batch sends for a bounded time after its claim (well inside the lease); here no
    time at all: each batch sends its first message and gives the rest back unclaimed,
    with no attempt counted, for the next batch."""
    monkeypatch.setattr(outbox, "SEND_WITHIN", timedelta(0))
    people = queue_for(4)
    with Commits() as commits:
        done = outbox.deliver_due()
    assert (done.sent, done.retried, done.dead) == (4, 0, 0)
    assert commits.count == 8  # four batches of one
    assert smtp.recipients() == sorted(p.email for p in people)
    assert set(smtp.message_ids().values()) == {1}
    assert {(m.state, m.attempts, m.claimed_by) for m in rows().values()} == {
        (MailState.SENT, 1, None)
    }


def test_the_message_on_the_wire(app, smtp):
    """Made with the classic MIME classes (faster): non-ASCII sender name and subject as
    encoded words, the text, HTML and calendar parts, and the unsubscribe address as one
    plain <URL> on one line (RFC 2369), never folded into encoded words."""
    app.config.update(
        MAIL_SENDER="Gemeente Één <consensus@example.org>", MAIL_REPLY_TO="balie@example.org"
    )
    person = make_user("lezer@example.org")
    person.locale = "en"
    db.session.commit()
    deadline = utcnow() + timedelta(days=3)

    def make(user: User, organisations: list) -> Content:
        return Content(
            subject="Ronde “Inbreng” geopend — één week " + "lang " * 20,
            paragraphs=["Tekst met één “aanhalingsteken”.", "x" * 200],
            link="/processes",
            link_label="Open",
            deadline=deadline,
            calendar_uid="round-1@consensus",
            calendar_title="Deadline: Inbreng",
        )

    outbox.notify(NotificationKind.ROUND_OPENED, [(person.id, None)], make)
    db.session.commit()
    assert outbox.deliver_due().sent == 1
    (mail,) = smtp.messages
    (raw,) = smtp.raw
    row = rows()[person.email]
    assert str(mail["From"]) == "Gemeente Één <consensus@example.org>"
    assert str(mail["Reply-To"]) == "balie@example.org"
    assert str(mail["To"]) == person.email
    assert str(mail["Subject"]) == row.subject
    assert str(mail["Message-ID"]) == row.message_id
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Content-Language"] == "en"
    assert mail["MIME-Version"] == "1.0"
    assert raw.isascii()
    (line,) = [x for x in raw.split(b"\r\n") if x.startswith(b"List-Unsubscribe:")]
    assert line == f"List-Unsubscribe: <{row.unsubscribe_url}>".encode()
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.get_content_type() == "multipart/mixed"

    def lines(text: str) -> list[str]:
        return text.replace("\r\n", "\n").rstrip("\n").split("\n")

    assert lines(text_of(mail)) == lines(row.body_text)
    assert lines(html_of(mail)) == lines(row.body_html)
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_filename() == "deadline.ics"
    event = Calendar.from_ical(attachment.get_content()).walk("VEVENT")[0]
    assert event.decoded("dtstart") == deadline.replace(microsecond=0)


class HangingServer(Server):
    """Takes two messages, then hangs on the third until released."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.hanging = threading.Event()
        self.released = False

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if len(self.messages) == 2 and not self.hanging.is_set():
            self.hanging.set()
            while not self.released:
                await asyncio.sleep(0.02)
            return "451 4.3.0 Too late"
        return await super().handle_DATA(server, session, envelope)


def test_a_worker_that_dies_mid_batch_loses_its_claim_after_the_lease(app, database_url):
    people = queue_for(5)
    server = HangingServer(free_port())
    server.start()
    flask, env = worker_command(database_url, server.port)
    app.config.update(
        MAIL_HOST="127.0.0.1", MAIL_PORT=server.port, MAIL_STARTTLS=False, MAIL_SSL=False
    )
    try:
        worker = subprocess.Popen(  # noqa: S603 - our own command line
            [flask, "--app", "consensus", "notifications", "deliver", "--once"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert server.hanging.wait(60), "the worker never reached the third message"
        finally:
            worker.kill()  # mid-batch: two messages handed over, none recorded
            output = worker.communicate(timeout=30)[0]
        server.released = True
        assert worker.returncode != 0, output
        assert len(server.messages) == 2
        # The whole batch is still claimed by the dead worker, nothing recorded as sent.
        found = rows()
        assert {(m.state, m.attempts) for m in found.values()} == {(MailState.QUEUED, 0)}
        assert len({m.claimed_by for m in found.values()}) == 1
        assert None not in {m.claimed_by for m in found.values()}
        # Within the lease no other worker takes them.
        assert outbox.deliver_due(utcnow(), worker="other").total == 0
        # After it, another worker sends the whole batch: none lost.
        later = utcnow() + outbox.LEASE + timedelta(seconds=1)
        done = outbox.deliver_due(later, worker="other", digests=False)  # no 08:00 digests
        assert (done.sent, done.retried, done.dead) == (5, 0, 0)
    finally:
        server.released = True
        server.stop()
    found = rows()
    assert {(m.state, m.claimed_by) for m in found.values()} == {(MailState.SENT, None)}
    received = server.message_ids()
    assert set(received) == {m.message_id for m in found.values()}
    # The two handed over before the crash came twice, with the same Message-ID (a mail
    # client shows them as one); the other three once.
    assert sorted(received.values()) == [1, 1, 1, 2, 2]
    assert sorted(str(m["To"]) for m in server.messages[2:]) == sorted(p.email for p in people)
