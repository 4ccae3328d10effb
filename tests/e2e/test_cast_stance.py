"""In a real browser: a representative registers a stance with a reservation, changes it,
and sees the tally; keyboard and no-JS friendly forms."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.endorsement_support import make_world
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def login(page, live_server, email):
    page.goto(live_server + "/login")
    page.get_by_label("E-mailadres").fill(email)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(live_server + "/")


def test_representative_casts_a_stance_with_a_reservation(app, live_server, page):
    w = make_world()
    org = w.orgs[0]
    rep = w.reps[org.id]
    address = f"{live_server}/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"
    login(page, live_server, rep.email)
    page.goto(address)
    expect(page.get_by_role("heading", name="Het standpunt van uw organisatie")).to_be_visible()
    page.get_by_role("radio", name="Instemmen met voorbehoud").check()
    page.get_by_label("Voorbehoud of reden").fill("Mits de financiering rond is.")
    page.get_by_role("button", name="Standpunt vastleggen").click()
    expect(page.get_by_text(f"Vastgelegd: {org.name}")).to_be_visible()
    table = page.locator("#tally-table")
    expect(table).to_contain_text("Mits de financiering rond is.")
    expect(table).to_contain_text(rep.display_name)
    expect(page.locator("#tally-explanation")).to_contain_text("1 van 4 organisaties stemde in")

    # Change it: the history keeps both.
    page.get_by_role("radio", name="Instemmen", exact=True).check()
    page.get_by_role("button", name="Standpunt vastleggen").click()
    expect(page.get_by_text(f"Vastgelegd: {org.name} — Instemmen.")).to_be_visible()
    page.get_by_text("2 standpunten in deze ronde").click()
    expect(page.get_by_text("Gewijzigd op")).to_be_visible()


def test_a_reservation_without_text_shows_the_error_summary(app, live_server, page):
    w = make_world()
    rep = w.reps[w.orgs[0].id]
    login(page, live_server, rep.email)
    page.goto(f"{live_server}/processes/{w.process.slug}/rounds/{w.round.id}/endorsement")
    page.get_by_role("radio", name="Bezwaar").check()
    page.get_by_role("button", name="Standpunt vastleggen").click()
    summary = page.locator(".c-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("Geef de reden van het bezwaar.")
