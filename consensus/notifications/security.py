"""Security notices (ASVS 2.2.3 / 2.5.5): a password change or reset, and turning
two-factor authentication on or off, are announced by e-mail so a person notices a
take-over they did not do. The mail carries no secrets and no links that act.

The account services record an `events.SecurityChanged`; the outbox writer
(triggers.on_security_changed) puts the message in the outbox in the same transaction, and
this after-commit handler sends it at once — never before the change is committed, and a
failure never undoes the change (the worker retries it).
"""

from __future__ import annotations

from consensus.events import SecurityChanged
from consensus.models import NotificationKind
from consensus.notifications.outbox import deliver_now


def send_security_notice(event: SecurityChanged) -> None:
    """Send the account holder's queued security notice now (after COMMIT)."""
    deliver_now(event.user_id, {NotificationKind.SECURITY.value})
