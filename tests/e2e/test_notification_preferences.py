"""In a real browser: a representative sees the unread count in the header, reads the
inbox, and chooses per kind how e-mail reaches them (radio groups named by their legend),
the digest's hour and time zone; the choices stick. Screenshots of both pages are kept in
the test's temporary folder for a look."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from consensus.extensions import db
from consensus.models import NotificationKind
from consensus.notifications import preferences
from tests.endorsement_support import make_world
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def login(page, live_server, email):
    page.goto(live_server + "/login")
    page.get_by_label("E-mailadres").fill(email)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(live_server + "/")


def test_the_inbox_and_the_preferences_page(app, live_server, page, tmp_path):
    w = make_world(n=2)
    rep = w.reps[w.orgs[0].id]
    db.session.commit()
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, live_server, rep.email)
    messages = page.get_by_role("link", name="Berichten 2 ongelezen")
    expect(messages).to_be_visible()
    messages.click()
    expect(page.get_by_role("heading", name="Berichten", level=1)).to_be_visible()
    expect(page.get_by_role("link", name=f"Ronde \u201c{w.round.title}\u201d")).to_be_visible()
    page.screenshot(path=str(tmp_path / "inbox.png"), full_page=True)
    page.get_by_role("button", name="Alles als gelezen markeren").click()
    expect(page.get_by_role("link", name="Berichten", exact=True)).to_be_visible()

    page.get_by_role("link", name="Kies welke berichten u ook per e-mail krijgt").click()
    expect(page.get_by_role("heading", name="E-mailberichten", level=1)).to_be_visible()
    reminders = page.get_by_role("group", name="De procesbegeleider stuurt een herinnering")
    expect(reminders.get_by_role("radio", name="Direct")).to_be_checked()
    reminders.get_by_role("radio", name="Niet per e-mail").check()
    versions = page.get_by_role("group", name="Er verschijnt een nieuwe versie van een standpunt")
    expect(versions.get_by_role("radio", name="In de dagelijkse samenvatting")).to_be_checked()
    versions.get_by_role("radio", name="Direct").check()
    page.get_by_label("Tijdstip van de dagelijkse samenvatting").select_option("07:00")
    page.get_by_label("Tijdzone").select_option("Europe/London")
    page.screenshot(path=str(tmp_path / "preferences.png"), full_page=True)
    page.get_by_role("button", name="Instellingen opslaan").click()
    expect(page.get_by_text("Uw e-mailinstellingen zijn opgeslagen.")).to_be_visible()
    # The page shows what was saved, and so does the database.
    expect(reminders.get_by_role("radio", name="Niet per e-mail")).to_be_checked()
    expect(page.get_by_label("Tijdzone")).to_have_value("Europe/London")
    db.session.commit()  # end the test's own snapshot: the server wrote meanwhile
    chosen = preferences.preferences_of(rep)
    assert chosen[NotificationKind.REMINDER] == "off"
    assert chosen[NotificationKind.NEW_VERSION] == "immediate"
    settings = preferences.settings_of(rep.id)
    assert (settings.digest_hour, settings.time_zone) == (7, "Europe/London")
    print(f"screenshots: {tmp_path}")
