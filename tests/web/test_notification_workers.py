"""Two real worker processes (`flask notifications deliver --once`) drain one outbox at the
same time and a slow SMTP server (aiosmtpd) receives every message exactly once. On
PostgreSQL the workers skip each other's rows (FOR UPDATE SKIP LOCKED); on SQLite the claim
is one statement under the write lock."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter

from sqlalchemy import select

from consensus.extensions import db
from consensus.models import MailState, NotificationKind, OutgoingMail, User
from consensus.notifications import outbox
from consensus.notifications.compose import Content
from tests.factories import make_user
from tests.notification_support import MailServer, free_port, worker_command

MESSAGES = 120


class SlowServer(MailServer):
    """15 ms per message, as a remote relay may take: the two workers overlap."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        await asyncio.sleep(0.015)
        return await super().handle_DATA(server, session, envelope)


def test_two_workers_deliver_each_message_once(app, database_url, tmp_path):
    people = [make_user(f"person{n}@example.org") for n in range(MESSAGES)]
    db.session.commit()

    def make(user: User, organisations: list) -> Content:
        return Content(subject=f"Bericht voor {user.email}", paragraphs=["Een bericht."])

    outbox.notify(NotificationKind.REMINDER, [(p.id, None) for p in people], make)
    db.session.commit()
    assert len(db.session.execute(select(OutgoingMail.id)).all()) == MESSAGES
    db.session.commit()  # the test's reads end (a SQLite snapshot would hide the workers')

    server = SlowServer(free_port())
    server.start()
    flask, env = worker_command(database_url, server.port)
    try:
        workers = [
            subprocess.Popen(  # noqa: S603 - our own command line
                [flask, "--app", "consensus", "notifications", "deliver", "--once"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [w.communicate(timeout=120)[0] for w in workers]
    finally:
        server.stop()
    assert all(w.returncode == 0 for w in workers), outputs
    sent = [int(out.strip().splitlines()[-1].split()[0]) for out in outputs]
    assert sum(sent) == MESSAGES and min(sent) > 0, outputs  # both worked, together all
    received = Counter(str(m["Message-ID"]) for m in server.messages)
    assert len(received) == MESSAGES and set(received.values()) == {1}
    db.session.expire_all()
    rows = db.session.execute(select(OutgoingMail)).scalars().all()
    assert {r.state for r in rows} == {MailState.SENT}
    assert set(received) == {r.message_id for r in rows}
    assert sorted(str(m["To"]) for m in server.messages) == sorted(p.email for p in people)
