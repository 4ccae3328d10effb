"""Dates as people in the Netherlands mean them, stored as UTC moments."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def start_of_day(day: date) -> datetime:
    """Midnight at the start of `day` in Amsterdam, as a UTC moment."""
    return datetime.combine(day, time.min, tzinfo=AMSTERDAM).astimezone(UTC)


def end_of_day(day: date) -> datetime:
    """The first moment after `day` in Amsterdam (an exclusive end), as a UTC moment."""
    return start_of_day(day + timedelta(days=1))


def local_day(moment: datetime) -> date:
    return moment.astimezone(AMSTERDAM).date()


def last_day(exclusive_end: datetime) -> date:
    """The last Amsterdam day that an exclusive end still includes."""
    return local_day(exclusive_end - timedelta(microseconds=1))


def from_local_input(naive: datetime) -> datetime:
    """A wall-clock time typed in a form means Amsterdam time."""
    return naive.replace(tzinfo=AMSTERDAM).astimezone(UTC)


def to_local_input(moment: datetime) -> datetime:
    """The naive Amsterdam wall-clock time to pre-fill a datetime-local field."""
    return moment.astimezone(AMSTERDAM).replace(tzinfo=None, second=0, microsecond=0)
