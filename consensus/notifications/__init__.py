"""Notifications: the in-app inbox and e-mail, written with the change (a transactional
outbox) and delivered by a worker. See docs/notifications.md.

- triggers.py     what triggers which notification, and to whom (event writers; the people
                  come from the rule book)
- outbox.py       notify() (inbox + outbox rows, as each person chose) and the worker
                  (deliver_due: claim, send, retry with back-off, dead letters)
- compose.py      subject, text, accessible HTML, deep links, the iCalendar deadline
- preferences.py  per person and kind: at once / daily digest / off; digest hour and time
                  zone; the signed one-click unsubscribe token (RFC 8058)
- digest.py       the daily digest
- deadlines.py    deadline warnings, from `rounds tick`
- security.py     security notices, sent right after COMMIT
- mail.py         SMTP (and the console in development)
"""

from __future__ import annotations

from flask import Flask

from consensus.notifications.security import send_security_notice

__all__ = ["register", "send_security_notice"]


def register(app: Flask) -> None:
    """Wire the outbox writers (inside the transaction) and the after-commit delivery
    (security notices at once; everything at once in development). Idempotent."""
    from consensus import events
    from consensus.notifications import outbox, triggers

    for event_type, writer in triggers.WRITERS:
        events.within(app, event_type, writer)
    events.on(app, events.SecurityChanged, send_security_notice)
    events.after_each_commit(app, outbox.deliver_in_development)
