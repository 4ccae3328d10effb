"""The application's wiring, in one place: which feature hooks into which, and who handles
which domain event. create_app calls `register(app)`; importing a module registers nothing.

The frame (services.processes, services.positions) does not know the features inside a
round; the features plug in here:

- processes.STATUS_PROVIDERS[round type]: who acted in a round (one query for many rounds);
- processes.ROUND_OPEN_CHECKS: run before a round opens (pin the version, clearance first);
- processes.ROUND_CLOSED_HOOKS: run when a round closes (fix the outcome, seal the letter);
- positions.VERSION_CREATED_HOOKS: a new version moves open clearance/endorsement rounds.

Domain events (consensus.events) get their handlers here too; they run after COMMIT. The
notification outbox's writers (consensus.notifications) run inside the transaction.
"""

from __future__ import annotations

from flask import Flask

from consensus import events, notifications, signing
from consensus.services import endorsements, positions, processes


def register(app: Flask) -> None:
    """Register every hook and event handler. Idempotent: a second app in the same
    process (tests, the CLI) finds each hook registered once."""
    processes.register()
    positions.register()
    endorsements.register()
    signing.register()

    events.init_app(app)
    # The notification outbox: writers inside the transaction, delivery after COMMIT.
    notifications.register(app)
