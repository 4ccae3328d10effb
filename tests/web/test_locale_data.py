"""Pages show their dates without Babel's CLDR data (issue 23: lean workers).

Babel's global data and a language's locale data (every language, territory, currency and
unit name CLDR has for it) take about 5 MiB of a web worker, loaded by the first date a
page shows. The pages' moments and dates are written by consensus.formats.cldr with the
month names and date patterns kept there, so a worker loads that data only for the pages
that still ask Babel for something else (listed below, with what they ask). Every GET page
of the authorization matrix is asked for, as four kinds of user; a page that starts (or
stops) formatting through Babel fails here until the list says so — or uses the `datetime`
and `day` filters.
"""

from __future__ import annotations

import babel.core
import babel.localedata
import pytest

from consensus.formats.cldr import MONTH_NAMES
from tests.web.matrix_world import build_matrix_world
from tests.web.test_authorization_matrix import _url
from tests.web.test_page_cache import GET_ROUTES, ROLES
from tests.web.test_public_index import _publish_many

# Pages that still load Babel's data, and why: a meeting's documents show their sizes with
# the language's decimal separator and grouping (format_decimal: "7,4 kB", "1.023,5 kB").
ASKS_BABEL = {"bodies.meeting"}


def _forget() -> None:
    """Babel as in a fresh worker: nothing loaded (the world's mails and other tests of this
    process loaded it)."""
    babel.localedata._cache.clear()
    babel.localedata._dict_cache.clear()
    babel.core._global_data = None


@pytest.fixture
def no_locale_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test works on empty stand-ins for Babel's caches; the real ones come back after."""
    assert hasattr(babel.localedata, "_cache"), "Babel keeps its loaded data elsewhere now"
    assert hasattr(babel.core, "_global_data"), "Babel keeps its global data elsewhere now"
    monkeypatch.setattr(babel.localedata, "_cache", {})
    monkeypatch.setattr(babel.localedata, "_dict_cache", {})
    monkeypatch.setattr(babel.core, "_global_data", None)


def _loaded() -> bool:
    return bool(babel.localedata._cache) or babel.core._global_data is not None


MONTHS = MONTH_NAMES[("nl", "wide")][1:]


def test_the_dashboard_shows_dutch_dates_without_babels_data(app, no_locale_data):
    world = build_matrix_world()
    client = world.client_for(app, "representative")
    _forget()
    page = client.get("/").get_data(as_text=True)
    assert any(f" {month} 20" in page for month in MONTHS), "the dashboard shows a date"
    assert not _loaded()
    # The probe itself works: a date Babel writes loads its data.
    from flask_babel import format_date

    with app.test_request_context():
        format_date(world.round.closes_at, "long")
    assert _loaded()


def test_only_the_listed_pages_load_babels_data(app, no_locale_data):
    world = build_matrix_world()
    published = _publish_many(1, [world.participant, world.other_participant])[0]
    clients = {role: world.client_for(app, role) for role in ROLES}
    loaders = set()
    for path in ("/public/", f"/public/{published.slug}"):
        _forget()
        page = clients["anonymous"].get(path).get_data(as_text=True)
        assert published.title in page
        if _loaded():
            loaders.add(path)
    for role, client in clients.items():
        for endpoint in GET_ROUTES:
            _forget()
            client.get(_url(app, world, endpoint)).close()
            if _loaded():
                loaders.add(endpoint)
    assert loaders == ASKS_BABEL, f"pages that load Babel's data: {sorted(loaders)}"
