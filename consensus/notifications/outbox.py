"""The transactional outbox: notifications written with the change, mail sent by a worker.

`notify()` runs inside the transaction of the change (from an event writer, see
consensus.events.within): for each person it writes the in-app notice (the inbox) and, as
the person chose, a complete message in `outgoing_mail` (at once), a notice waiting for the
daily digest, or nothing more (off). Rolled back with the change, nothing remains; committed,
nothing is lost.

`deliver_due()` is the worker (`flask --app consensus notifications deliver`): it claims due
messages in batches (CONSENSUS_NOTIFICATIONS_BATCH_SIZE, 50) — `FOR UPDATE SKIP LOCKED` on
PostgreSQL, so several workers never take the same row, and one conditional update that also
holds on SQLite —, commits the claim, hands the batch to the SMTP server over one connection,
and records every message's result in one more transaction (each row only while the claim is
still its worker's). A failure is retried with exponential back-off (1, 2, 4 … minutes, at
most 30); a permanent refusal (5xx) or too many attempts make that message dead, which
administrators see on /admin/mail; the other messages of the batch go on. A batch sends for
at most SEND_WITHIN (half the lease) and releases the rest, so a claim never runs out under a
live worker. A worker that dies while holding a claim loses it after LEASE; its batch is then
sent by the next worker (the Message-ID stays the same, so a mail client shows a second copy
of the messages it had already handed over as one).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr, parseaddr

from flask import current_app
from flask_babel import force_locale
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from consensus.extensions import db
from consensus.models import (
    Delivery,
    MailState,
    Notice,
    NotificationKind,
    Organisation,
    OutgoingMail,
    User,
    utcnow,
)
from consensus.notifications import compose, preferences
from consensus.notifications.mail import (
    Mailer,
    MailError,
    is_about_the_recipient,
    is_permanent,
    writes_to_console,
)

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# A batch sends for at most this long after its claim (see _send_batch).
SEND_WITHIN = LEASE / 2
MAX_BACKOFF = timedelta(minutes=30)

# (user id, organisation id or None): a person, and whom they act for.
Person = tuple[int, int | None]
Maker = Callable[[User, list[Organisation]], compose.Content]


def notify(
    kind: NotificationKind,
    people: Iterable[Person],
    make: Maker,
    *,
    process_id: int | None = None,
    round_id: int | None = None,
) -> int:
    """Write one notification per person (inbox + outbox as they chose); returns how many.

    `make(user, organisations)` is called in the person's language and says what the
    notification says; `organisations` are the ones the person acts for here."""
    acting_for: dict[int, set[int]] = {}
    for user_id, organisation_id in people:
        acting_for.setdefault(user_id, set())
        if organisation_id is not None:
            acting_for[user_id].add(organisation_id)
    if not acting_for:
        return 0
    users = (
        db.session.execute(
            select(User).where(User.id.in_(sorted(acting_for)), User.active.is_(True))
        )
        .scalars()
        .all()
    )
    organisation_ids = {o for ids in acting_for.values() for o in ids}
    organisations = {
        o.id: o
        for o in db.session.execute(
            select(Organisation).where(Organisation.id.in_(sorted(organisation_ids) or [0]))
        ).scalars()
    }
    deliveries = preferences.deliveries((u.id for u in users), kind)
    for user in sorted(users, key=lambda u: u.id):
        own = sorted(
            (organisations[o] for o in acting_for[user.id] if o in organisations),
            key=lambda o: o.name,
        )
        with force_locale(user.locale):
            content = make(user, own)
        delivery = deliveries[user.id]
        db.session.add(
            Notice(
                user_id=user.id,
                process_id=process_id,
                round_id=round_id,
                organisation_id=own[0].id if len(own) == 1 else None,
                message=content.summary,
                kind=kind.value,
                link=compose.path_of(content.link) if content.link else None,
                digest="waiting" if delivery == Delivery.DIGEST else None,
            )
        )
        if delivery == Delivery.IMMEDIATE:
            enqueue(user, kind, content)
    db.session.flush()
    return len(users)


def enqueue(user: User, kind: NotificationKind, content: compose.Content) -> OutgoingMail:
    """A complete message for one person in the outbox (inside the caller's transaction).
    Switchable kinds carry the one-click unsubscribe address; security notices do not."""
    unsubscribe_url = None
    if kind in preferences.DEFAULTS:
        unsubscribe_url = compose.absolute_url(
            "notifications.unsubscribe", token=preferences.unsubscribe_token(user.id, kind)
        )
    text, html = compose.render(
        content,
        language=user.locale,
        name=user.display_name,
        unsubscribe_url=unsubscribe_url,
        preferences_url=compose.absolute_url("notifications.preferences"),
    )
    mail = OutgoingMail(
        user_id=user.id,
        kind=kind.value,
        recipient=user.email,
        message_id=compose.new_message_id(),
        language=user.locale,
        subject=content.subject[:300],
        body_text=text,
        body_html=html,
        calendar=compose.calendar_for(content),
        unsubscribe_url=unsubscribe_url,
        state=MailState.QUEUED,
        attempts=0,
        next_attempt_at=utcnow(),
        last_error="",
    )
    db.session.add(mail)
    return mail


# --- The worker ---------------------------------------------------------------------------------


@dataclass
class Pass:
    """What one delivery pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    digests: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.dead


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8, 16, 30, 30 … minutes after the 1st, 2nd, … failed attempt."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


# Text parts in UTF-8, quoted-printable: readable where the text is ASCII, safe on any relay.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP


class _Policy(Compat32):
    """The classic policy, but an address header such as List-Unsubscribe stays on one line:
    folded before a long <URL> (no space inside to fold at), a reader could keep the folding
    space in the value."""

    WHOLE = frozenset({"list-unsubscribe"})

    def fold(self, name: str, value: object) -> str:
        if name.lower() in self.WHOLE and isinstance(value, str) and value.isascii():
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)  # type: ignore[arg-type]

    def fold_binary(self, name: str, value: object) -> bytes:
        if name.lower() in self.WHOLE and isinstance(value, str) and value.isascii():
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)  # type: ignore[arg-type]


_POLICY = _Policy()


def _text_part(text: str, subtype: str) -> MIMEText:
    part = MIMEText(text, subtype, _UTF8, policy=_POLICY)
    del part["MIME-Version"]  # once, on the message itself
    return part


def _header(value: str) -> str | Header:
    """A header value as is when ASCII, else RFC 2047 encoded words."""
    return value if value.isascii() else Header(value, "utf-8")


def _address(value: str) -> str:
    """An address header ("Name <address>" or an address), its name encoded if need be."""
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8") if address else value


def as_email(mail: OutgoingMail) -> Message:
    """The outbox row as the message on the wire (the same bytes on every attempt, bar
    the Date header and the MIME boundaries): the text, the HTML as its alternative, the
    deadline as an iCalendar attachment.

    Made with the email package's classic MIME classes: the same message as the modern
    EmailMessage API makes, in a third of the time (that API parses every header it sets
    through its header registry, the worker's largest cost per message once the database
    work is batched). Long headers are folded at spaces only, so the unsubscribe address
    stays a plain <URL> (RFC 2369), never encoded words."""
    config = current_app.config
    message: Message
    body: Message = _text_part(mail.body_text, "plain")
    if mail.body_html:
        body = MIMEMultipart(
            "alternative", _subparts=[body, _text_part(mail.body_html, "html")], policy=_POLICY
        )
    if mail.calendar:
        calendar = _text_part(mail.calendar, "calendar")
        calendar.set_param("method", "PUBLISH")
        calendar.add_header("Content-Disposition", "attachment", filename="deadline.ics")
        if isinstance(body, MIMEMultipart):
            del body["MIME-Version"]
        message = MIMEMultipart("mixed", _subparts=[body, calendar], policy=_POLICY)
    else:
        message = body
        if "MIME-Version" not in message:
            message["MIME-Version"] = "1.0"
    headers: list[tuple[str, str | Header]] = [("From", _address(config["MAIL_SENDER"]))]
    if config.get("MAIL_REPLY_TO"):
        headers.append(("Reply-To", _address(config["MAIL_REPLY_TO"])))
    headers += [
        ("To", _address(mail.recipient)),
        ("Subject", _header(mail.subject)),
        ("Date", format_datetime(mail.created_at)),
        ("Message-ID", mail.message_id),
        ("Auto-Submitted", "auto-generated"),
    ]
    if mail.unsubscribe_url:
        # RFC 8058: a mail client may POST "List-Unsubscribe=One-Click" to this address.
        headers.append(("List-Unsubscribe", f"<{mail.unsubscribe_url}>"))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    headers.append(("Content-Language", mail.language))
    for name, value in headers:
        message[name] = value
    return message


def _claim(
    session: Session,
    now: datetime,
    worker: str,
    size: int,
    *,
    user_id: int | None,
    kinds: set[str] | None,
) -> list[OutgoingMail]:
    """Take up to `size` due messages for this worker, in one statement: PostgreSQL skips
    the rows other workers hold (FOR UPDATE SKIP LOCKED); SQLite runs the statement under
    its one write lock. The rows come back with the claim (RETURNING); the claim is
    committed at once and lasts LEASE. Oldest due first."""
    candidates = (
        select(OutgoingMail.id)
        .where(
            OutgoingMail.state == MailState.QUEUED,
            OutgoingMail.next_attempt_at <= now,
            or_(OutgoingMail.claimed_until.is_(None), OutgoingMail.claimed_until < now),
        )
        .order_by(OutgoingMail.next_attempt_at, OutgoingMail.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    if user_id is not None:
        candidates = candidates.where(OutgoingMail.user_id == user_id)
    if kinds is not None:
        candidates = candidates.where(OutgoingMail.kind.in_(sorted(kinds)))
    try:
        claimed = list(
            session.execute(
                update(OutgoingMail)
                .where(OutgoingMail.id.in_(candidates))
                .values(claimed_until=now + LEASE, claimed_by=worker)
                .returning(OutgoingMail)
                .execution_options(synchronize_session=False, populate_existing=True)
            ).scalars()
        )
        if claimed:
            session.commit()
        else:
            session.rollback()  # nothing changed: no second write (and fsync) for nothing
    except OperationalError:
        session.rollback()  # SQLite busy beyond its timeout: the next pass tries again
        return []
    return sorted(claimed, key=lambda mail: (mail.next_attempt_at, mail.id))


@dataclass
class _Results:
    """What happened to a batch's messages, recorded together by `_finish`."""

    sent: list[dict[str, object]]
    retried: list[dict[str, object]]
    dead: list[dict[str, object]]
    released: list[dict[str, object]]  # not tried (server away, or out of time): unclaimed


_outgoing = OutgoingMail.__table__


def _finish(session: Session, worker: str, results: _Results) -> None:
    """Record the results of a batch in one write transaction, each row only if the claim
    is still ours."""
    ours = (_outgoing.c.id == bindparam("mail_id")) & (_outgoing.c.claimed_by == worker)
    unclaimed = {"claimed_until": None, "claimed_by": None}
    for rows, values in (
        (
            results.sent,
            {
                "state": MailState.SENT,
                "attempts": bindparam("tries"),
                "last_error": "",
                "sent_at": bindparam("at"),
            },
        ),
        (
            results.retried,
            {
                "attempts": bindparam("tries"),
                "last_error": bindparam("error"),
                "next_attempt_at": bindparam("retry_at"),
            },
        ),
        (
            results.dead,
            {
                "state": MailState.DEAD,
                "attempts": bindparam("tries"),
                "last_error": bindparam("error"),
            },
        ),
        (results.released, {}),
    ):
        if rows:
            session.execute(update(_outgoing).where(ours).values(**unclaimed, **values), rows)
    session.commit()


def batch_size() -> int:
    """Messages claimed together (CONSENSUS_NOTIFICATIONS_BATCH_SIZE, at least 1)."""
    return max(1, int(current_app.config.get("NOTIFICATIONS_BATCH_SIZE", 50)))


def deliver_due(
    now: datetime | None = None,
    *,
    limit: int = 500,
    worker: str | None = None,
    user_id: int | None = None,
    kinds: set[str] | None = None,
    digests: bool = True,
    batch: int | None = None,
) -> Pass:
    """One pass of the worker: compose the digests that are due, then send due messages
    (at most `limit`) in batches of `batch` (default: the configured batch size). A batch is
    claimed in one short transaction, sent over one SMTP connection with no transaction
    open, and its results are recorded in one more; the pass's session is its own. `now`
    lets tests move time on."""
    from consensus.notifications import digest

    now = now or utcnow()
    worker = worker or worker_name()
    size = batch or batch_size()
    result = Pass()
    if digests and user_id is None:
        result.digests = digest.compose_due(now)
    max_attempts = int(current_app.config["NOTIFICATIONS_MAX_ATTEMPTS"])
    # Claimed rows stay readable after the claim's COMMIT: the messages are made from them
    # with no transaction open.
    started = time.monotonic()
    with Session(db.engine, expire_on_commit=False) as session, Mailer() as mailer:
        while result.total < limit:
            # Each batch's lease runs from its own claim, not from the start of a long pass
            # (the back-off of a failure still counts from the pass's `now`).
            at = now + timedelta(seconds=time.monotonic() - started)
            wanted = min(size, limit - result.total)
            claimed = _claim(session, at, worker, wanted, user_id=user_id, kinds=kinds)
            if not claimed:
                break
            server_away, released = _send_batch(
                session, mailer, claimed, now, worker, max_attempts, result
            )
            session.expunge_all()
            if server_away or (len(claimed) < wanted and not released):
                break  # the server is away, or nothing more was due
    return result


def _send_batch(
    session: Session,
    mailer: Mailer,
    claimed: list[OutgoingMail],
    now: datetime,
    worker: str,
    max_attempts: int,
    result: Pass,
) -> tuple[bool, int]:
    """Send one claimed batch over the mailer's connection and record the results; returns
    whether the server went away (the batch's untried rest is then released for the next
    pass) and how many messages were released untried.

    The batch sends for at most SEND_WITHIN of real time after its claim — well inside
    LEASE, so no claim runs out while its worker still holds the message; what is left then
    is released unsent, with no attempt counted, and claimed by the next batch (the first
    message is always tried, so every batch makes progress)."""
    results = _Results(sent=[], retried=[], dead=[], released=[])
    started = time.monotonic()
    server_away = False
    for number, mail in enumerate(claimed):
        attempts = mail.attempts + 1
        out_of_time = number > 0 and time.monotonic() - started > SEND_WITHIN.total_seconds()
        if server_away or out_of_time:
            results.released.append({"mail_id": mail.id})
            continue
        try:
            mailer.send(as_email(mail))
        except MailError as error:
            text = str(error)[:300]
            if is_permanent(error) or attempts >= max_attempts:
                results.dead.append({"mail_id": mail.id, "tries": attempts, "error": text})
                log.error("mail %s is dead after %d attempt(s): %s", mail.id, attempts, error)
                continue
            results.retried.append(
                {
                    "mail_id": mail.id,
                    "tries": attempts,
                    "error": text,
                    "retry_at": now + backoff(attempts),
                }
            )
            # A refused recipient: the next message may well go through. Otherwise the
            # server is away: the rest waits for the next pass.
            server_away = not is_about_the_recipient(error)
            continue
        results.sent.append({"mail_id": mail.id, "tries": attempts, "at": utcnow()})
    _finish(session, worker, results)
    result.sent += len(results.sent)
    result.retried += len(results.retried)
    result.dead += len(results.dead)
    return server_away, len(results.released)


def deliver_now(user_id: int, kinds: set[str]) -> None:
    """After a commit: send this person's messages of these kinds at once (security
    notices); in development every message goes to the console anyway (below)."""
    if writes_to_console():
        return  # deliver_in_development, once after the commit's handlers
    try:
        deliver_due(limit=20, user_id=user_id, kinds=kinds, digests=False)
    except Exception:
        log.exception("delivering at once failed; the worker will send the message")


def deliver_in_development() -> None:
    """Development without a mail server: no worker runs, so after each commit that
    recorded events every queued message is written to the console at once."""
    if not writes_to_console():
        return
    try:
        deliver_due(limit=500)
    except Exception:
        log.exception("writing queued mail to the console failed")


def queue_counts(session: Session | None = None) -> dict[str, int]:
    """{state: number of messages} for /metrics and the administrators' page."""
    session = session or db.session
    counts = dict(
        session.execute(select(OutgoingMail.state, func.count()).group_by(OutgoingMail.state)).all()
    )
    return {state.value: int(counts.get(state, 0)) for state in MailState}


def requeue(mail: OutgoingMail, *, actor: User) -> None:
    """An administrator sends a dead message again (after fixing the cause)."""
    from consensus import audit
    from consensus.services.errors import DomainError

    if mail.state != MailState.DEAD:
        from flask_babel import lazy_gettext as _l

        raise DomainError(str(_l("Only a message that could not be delivered can be retried.")))
    mail.state = MailState.QUEUED
    mail.attempts = 0
    mail.next_attempt_at = utcnow()
    mail.claimed_until = None
    audit.record(
        "mail.requeued",
        actor=actor,
        object_type="outgoing_mail",
        object_id=mail.id,
        payload={"kind": mail.kind},
    )
    db.session.flush()
