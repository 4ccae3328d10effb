"""The month names and date patterns of the languages Consensus speaks, as Babel (CLDR)
has them, and the dates the pages write with them.

Pages, mails and letters write moments and dates without Babel's general formatter
(`write_moment` and `write_date` here: a long table formats hundreds of moments, and Babel
takes tens of microseconds each), and the month names and the "medium"/"long" date patterns
were all they still asked Babel for. Asking loads Babel's global CLDR data and the whole
locale (every language, territory, currency and unit name of it): about 5 MiB per web
worker for two languages, resident from the first date a page shows, for 48 words and four
patterns. They are kept here instead; `tests/unit/test_moments.py` checks them against the
installed Babel for every language in `LANGUAGES`, so a change in CLDR fails the tests
rather than drifting, and `tests/web/test_locale_data.py` that the pages no longer load
Babel's data. A language or pattern not listed here is asked of Babel, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo

# Babel's get_month_names(width, context="format", locale=...), months 1..12, with "" at 0.
MONTH_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("nl", "wide"): (
        "",
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
    ("nl", "abbreviated"): (
        "",
        "jan",
        "feb",
        "mrt",
        "apr",
        "mei",
        "jun",
        "jul",
        "aug",
        "sep",
        "okt",
        "nov",
        "dec",
    ),
    ("en", "wide"): (
        "",
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    ("en", "abbreviated"): (
        "",
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    ),
}


# Babel's get_date_format(name, locale=...).pattern for the names the pages use.
DATE_PATTERNS: dict[tuple[str, str], str] = {
    ("nl", "medium"): "d MMM y",
    ("nl", "long"): "d MMMM y",
    ("en", "medium"): "MMM d, y",
    ("en", "long"): "MMMM d, y",
}


def month_names(locale: str, width: str = "wide") -> tuple[str, ...]:
    """Month names 1..12 (index 0 is empty) in the format context."""
    found = MONTH_NAMES.get((locale, width))
    if found is not None:
        return found
    from babel.dates import get_month_names

    names = get_month_names(width, context="format", locale=locale)
    return ("", *(names[i] for i in range(1, 13)))


def _month(value: date, locale: str, width: str) -> str:
    return month_names(locale, width)[value.month]


# The date patterns this module writes (what Babel writes for them, byte for byte).
DATE_WRITERS: dict[str, Callable[[date, str], str]] = {
    "d MMM y": lambda d, lang: f"{d.day} {_month(d, lang, 'abbreviated')} {d.year}",
    "d MMMM y": lambda d, lang: f"{d.day} {_month(d, lang, 'wide')} {d.year}",
    "MMM d, y": lambda d, lang: f"{_month(d, lang, 'abbreviated')} {d.day}, {d.year}",
    "MMMM d, y": lambda d, lang: f"{_month(d, lang, 'wide')} {d.day}, {d.year}",
}


def write_date(value: date, fmt: str, locale: str) -> str | None:
    """A calendar date as babel.dates.format_date writes it with this format (a pattern or
    "medium"/"long"), or None when this module does not know the format (ask Babel)."""
    if type(value) is not date:  # a datetime is first moved to the reader's time zone
        return None
    write = DATE_WRITERS.get(DATE_PATTERNS.get((locale, fmt), fmt))
    return write(value, locale) if write is not None else None


def _hm(t: datetime) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def _hms(t: datetime) -> str:
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


# The moment patterns this module writes, given the moment in the reader's time zone.
MOMENT_WRITERS: dict[str, Callable[[datetime, str], str]] = {
    "dd-MM-y HH:mm": lambda t, _: f"{t.day:02d}-{t.month:02d}-{t.year} {_hm(t)}",
    "d MMMM y, HH:mm": lambda t, lang: f"{DATE_WRITERS['d MMMM y'](t, lang)}, {_hm(t)}",
    "d MMMM y, HH:mm:ss": lambda t, lang: f"{DATE_WRITERS['d MMMM y'](t, lang)}, {_hms(t)}",
    "d MMMM y": lambda t, lang: DATE_WRITERS["d MMMM y"](t, lang),
    "d MMM y, HH:mm": lambda t, lang: f"{DATE_WRITERS['d MMM y'](t, lang)}, {_hm(t)}",
    "d MMM y": lambda t, lang: DATE_WRITERS["d MMM y"](t, lang),
    "HH:mm": lambda t, _: _hm(t),
    "HH:mm:ss": lambda t, _: _hms(t),
}


def write_moment(value: datetime, pattern: str, locale: str, zone: tzinfo) -> str | None:
    """A moment in `zone` as babel.dates.format_datetime writes it with this pattern (byte
    for byte: a property test compares them), or None for another pattern or value (ask
    Babel). A moment without a time zone is UTC, as Flask-Babel takes it."""
    if type(value) is not datetime:
        return None
    write = MOMENT_WRITERS.get(pattern)
    if write is None:
        return None
    return write((value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone), locale)


def format_moment(value: datetime, pattern: str) -> str:
    """flask_babel.format_datetime with a pattern: in the reader's language and time zone."""
    from flask_babel import format_datetime, get_locale, get_timezone

    locale = get_locale()
    written = None if locale is None else write_moment(value, pattern, str(locale), get_timezone())
    return written if written is not None else format_datetime(value, pattern)


def format_day(value: date | datetime | None, fmt: str = "medium") -> str:
    """flask_babel.format_date for the pages: the date in the reader's language."""
    if not value:
        return ""
    from flask_babel import format_date, get_locale

    locale = get_locale()
    written = None if locale is None else write_date(value, fmt, str(locale))  # type: ignore[arg-type]
    return written if written is not None else format_date(value, fmt)
