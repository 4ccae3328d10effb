"""The moment and date writers (consensus.formats.cldr) write exactly what Babel writes,
for every moment, every pattern it knows, both languages and across the summer-time changes
of Europe/Amsterdam; its month names are those of the installed Babel."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytz
from babel.dates import format_date, format_datetime, get_date_format, get_month_names
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.formats.cldr import (
    DATE_PATTERNS,
    DATE_WRITERS,
    MOMENT_WRITERS,
    MONTH_NAMES,
    month_names,
    write_date,
    write_moment,
)
from consensus.web import _MOMENT_PATTERNS

AMSTERDAM = pytz.timezone("Europe/Amsterdam")

moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
)
# The hours around the changes, where a wrong offset would show.
changes = st.sampled_from(
    [datetime(2026, 3, 29, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 0, 0, tzinfo=UTC)]
).flatmap(
    lambda start: st.integers(0, 4 * 60).map(lambda minutes: start + timedelta(minutes=minutes))
)


@settings(max_examples=400)
@given(
    moment=moments | changes,
    pattern=st.sampled_from(sorted(MOMENT_WRITERS)),
    locale=st.sampled_from(["nl", "en"]),
)
def test_the_fast_formatter_writes_what_babel_writes(moment, pattern, locale):
    expected = format_datetime(moment, pattern, tzinfo=AMSTERDAM, locale=locale)
    assert write_moment(moment, pattern, locale, AMSTERDAM) == expected


def test_other_patterns_and_values_go_to_babel():
    moment = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert write_moment(moment, "long", "nl", AMSTERDAM) is None
    assert write_moment(moment.date(), "d MMMM y", "nl", AMSTERDAM) is None  # type: ignore[arg-type]


def test_the_shorthands_are_patterns_the_fast_formatter_knows():
    assert set(_MOMENT_PATTERNS.values()) <= set(MOMENT_WRITERS)


def test_the_kept_month_names_are_babels_for_every_language_consensus_speaks(app):
    languages = app.config["LANGUAGES"]
    assert {language for language, _ in MONTH_NAMES} == set(languages)
    for language in languages:
        for width in ("wide", "abbreviated"):
            names = get_month_names(width, context="format", locale=language)
            assert MONTH_NAMES[(language, width)] == ("", *(names[i] for i in range(1, 13)))


def test_another_language_asks_babel():
    assert month_names("de")[3] == "März"
    assert (
        month_names("fr", "abbreviated")[2]
        == get_month_names("abbreviated", context="format", locale="fr")[2]
    )


def test_the_kept_date_patterns_are_babels(app):
    for language in app.config["LANGUAGES"]:
        for name in ("medium", "long"):
            assert DATE_PATTERNS[(language, name)] == get_date_format(name, locale=language).pattern
    assert set(DATE_PATTERNS.values()) <= set(DATE_WRITERS)


@settings(max_examples=300)
@given(
    day=st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)),
    fmt=st.sampled_from(["medium", "long", *sorted(DATE_WRITERS)]),
    locale=st.sampled_from(["nl", "en"]),
)
def test_dates_are_written_as_babel_writes_them(day, fmt, locale):
    assert write_date(day, fmt, locale) == format_date(day, fmt, locale=locale)


def test_other_date_formats_and_values_go_to_babel():
    assert write_date(date(2026, 3, 7), "full", "nl") is None
    assert write_date(date(2026, 3, 7), "short", "en") is None
    assert write_date(datetime(2026, 3, 7, 12, 0, tzinfo=UTC), "long", "nl") is None


def test_mails_and_letters_write_what_flask_babel_writes(app):
    """cldr.format_moment and format_day (mails, the letter's stamp) in the reader's
    language and time zone, as Flask-Babel's format_datetime and format_date."""
    from flask_babel import force_locale
    from flask_babel import format_date as babel_date
    from flask_babel import format_datetime as babel_moment

    from consensus.formats import cldr

    moment = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 winter time, then summer time
    with app.test_request_context():
        for language in ("nl", "en"):
            with force_locale(language):
                for pattern in ("d MMMM y, HH:mm", "HH:mm", "long"):
                    assert cldr.format_moment(moment, pattern) == babel_moment(moment, pattern)
                for fmt in ("d MMMM y", "medium", "long", "full"):
                    day = moment.date()
                    assert cldr.format_day(day, fmt) == babel_date(day, fmt)
        assert cldr.format_moment(moment, "d MMMM y, HH:mm") == "29 maart 2026, 01:30"
        assert cldr.format_day(None) == ""
