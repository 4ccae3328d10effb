"""The fast moment formatter (consensus.web.fast_moment) writes exactly what Babel writes,
for every moment, both languages and across the summer-time changes of Europe/Amsterdam."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytz
from babel.dates import format_datetime
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.web import _MOMENT_PATTERNS, fast_moment

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
    pattern=st.sampled_from(sorted(_MOMENT_PATTERNS.values())),
    locale=st.sampled_from(["nl", "en"]),
)
def test_the_fast_formatter_writes_what_babel_writes(moment, pattern, locale):
    expected = format_datetime(moment, pattern, tzinfo=AMSTERDAM, locale=locale)
    assert fast_moment(moment, pattern, locale, AMSTERDAM) == expected


def test_other_patterns_and_values_go_to_babel():
    moment = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert fast_moment(moment, "long", "nl", AMSTERDAM) is None
    assert fast_moment(moment.date(), "d MMMM y", "nl", AMSTERDAM) is None  # type: ignore[arg-type]
