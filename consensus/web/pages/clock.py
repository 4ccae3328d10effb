"""The round clock's next due moment, asked before every page (web.apply_the_clock)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from consensus.web.pages import CachedValue, declare_key


@declare_key
@dataclass(frozen=True)
class MinuteKey:
    """The next due moment only moves with an audited change: kept by the log's head, and
    for at most a minute (a deadline edited outside the application is still honoured)."""

    minute: int


NEXT_DUE = CachedValue("clock-next-due", MinuteKey)


def next_due_at() -> datetime | None:
    from consensus.services import processes

    return NEXT_DUE.get(MinuteKey(int(time.time() // 60)), compute=processes.next_due_at)
