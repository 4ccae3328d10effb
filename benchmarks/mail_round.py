"""The notification worker's throughput for bench.py: queue messages, let `flask
notifications deliver` send them to a local SMTP server (aiosmtpd, as the tests use), time it.

`queue` writes N complete messages into the outbox through the notification service
(`consensus.notifications.outbox.enqueue`: the text and HTML parts, the unsubscribe address
and the deadline's calendar attachment, as a "round opened" notice has them), one for each
of N people of the world; `remove` deletes them again afterwards, so the world the pages are
measured on stays the same. `SmtpCounter` is an aiosmtpd handler that takes every message
and notes when it arrived.

Run alone (only the worker, without the pages, the letter or `audit verify`):

    .venv/bin/python benchmarks/mail_round.py --rounds 2 [--scale 1] [--database-url URL]

builds or reuses the world as bench.py does and prints one JSON line per round
(`bench.mail_throughput`).
"""

from __future__ import annotations

import threading
import time
from typing import Any


def queue(app: Any, messages: int) -> list[int]:
    """N messages in the outbox, due now; returns their ids."""
    from sqlalchemy import select

    from consensus.extensions import db
    from consensus.models import NotificationKind, Process, Round, RoundState, User
    from consensus.notifications import outbox
    from consensus.notifications.compose import Content

    with app.test_request_context():
        round_ = db.session.execute(
            select(Round).where(Round.state == RoundState.OPEN).order_by(Round.id).limit(1)
        ).scalar_one()
        process = db.session.get(Process, round_.process_id)
        assert process is not None  # noqa: S101 - a round has a process
        people = (
            db.session.execute(
                select(User).where(User.active.is_(True)).order_by(User.id).limit(messages)
            )
            .scalars()
            .all()
        )
        if len(people) < messages:
            raise SystemExit(f"the world has {len(people)} people, not {messages}")
        content = Content(
            subject=f"Round open: {round_.title} ({process.title})",
            paragraphs=[
                f"The round \u201c{round_.title}\u201d of \u201c{process.title}\u201d has "
                "opened. You can act for your organisation until the deadline.",
            ],
            link=f"/processes/{process.slug}/rounds/{round_.id}/endorsement",
            link_label="Open the round",
            deadline=round_.closes_at,
            calendar_uid=f"round-{round_.id}@consensus",
            calendar_title=f"Deadline: {round_.title}",
        )
        queued = [outbox.enqueue(user, NotificationKind.ROUND_OPENED, content) for user in people]
        db.session.commit()
        return [mail.id for mail in queued]


def remove(app: Any, ids: list[int]) -> dict[str, int]:
    """Delete the benchmark's messages; returns how many were in each state."""
    from sqlalchemy import delete, func, select

    from consensus.extensions import db
    from consensus.models import OutgoingMail

    with app.app_context():
        states = dict(
            db.session.execute(
                select(OutgoingMail.state, func.count())
                .where(OutgoingMail.id.in_(ids))
                .group_by(OutgoingMail.state)
            ).all()
        )
        db.session.execute(delete(OutgoingMail).where(OutgoingMail.id.in_(ids)))
        db.session.commit()
    return {str(getattr(state, "value", state)): n for state, n in states.items()}


class SmtpCounter:
    """An aiosmtpd handler that accepts every message and notes when it arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.bytes = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._lock:
            self.arrivals.append(time.perf_counter())
            self.bytes += len(envelope.content)
        return "250 OK"


def main() -> None:
    import argparse
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench

    parser = argparse.ArgumentParser(description="The notification worker's throughput alone.")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--messages", type=int, default=bench.MAIL_MESSAGES)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    env = bench.world_env(args)
    bench.ensure_world(env, args.scale, rebuild=False)
    for _ in range(args.rounds):
        print(json.dumps(bench.mail_throughput(env, args.messages)), flush=True)


if __name__ == "__main__":
    main()
