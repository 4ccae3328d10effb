"""In a real browser (issue 20): the secretary of the Thorbecke table prepares the next
meeting's agenda and publishes it; a member then finds the meeting on the dashboard and the
item on the agenda. Screenshots of the body page, the meeting page and the public timeline
are written to $CONSENSUS_SCREENSHOTS when that is set (for a person to look at)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from consensus.worlds import demo

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n% Opzet van het onderzoek\n%%EOF\n"


def _login(page: Page, live_server: str, email: str) -> None:
    page.goto(live_server + "/login")
    page.get_by_label("E-mailadres").fill(email)
    page.get_by_label("Wachtwoord").fill("consensus-demo")
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(live_server + "/")


def _shot(page: Page, name: str) -> None:
    folder = os.environ.get("CONSENSUS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_a_secretary_prepares_the_agenda_and_members_see_it(runner, live_server, page, browser):
    assert runner.invoke(args=["demo"]).exit_code == 0
    _login(page, live_server, "secretaris@example.org")
    page.get_by_role("navigation", name="Hoofdnavigatie").get_by_role(
        "link", name="Overleggen"
    ).click()
    page.wait_for_url(live_server + "/bodies")
    page.get_by_role(
        "link", name="Bestuurlijk Overleg Digitalisering (Thorbecketafel)", exact=True
    ).click()
    page.wait_for_url(live_server + "/bodies/bo-digitalisering")
    expect(page.get_by_role("heading", name="Komende vergaderingen")).to_be_visible()
    _shot(page, "body")
    page.get_by_role("link", name="BO Digitalisering — najaar", exact=True).click()
    expect(page.get_by_role("heading", name="Agenda", exact=True)).to_be_visible()
    expect(page.get_by_text("De leden zien deze agenda nog niet.")).to_be_visible()

    # bad input first: a link that is not https is refused with a message at the field
    page.locator("#item-title").fill("Onderzoek investeringsagenda: opzet")
    page.locator("#item-document_url").fill("http://niet-veilig.example.org")
    page.get_by_role("button", name="Op de agenda zetten").click()
    expect(page.locator(".c-error-summary")).to_contain_text("https://")
    page.locator("#item-document_url").fill("https://example.org/opzet.pdf")
    page.locator("#item-kind").select_option(label="Ter besluitvorming")
    page.locator("#item-process_id").select_option(label=demo.STRATEGY_TITLE)
    page.get_by_role("button", name="Op de agenda zetten").click()
    expect(page.get_by_text("Het punt staat op de agenda.")).to_be_visible()
    expect(page.get_by_role("heading", name="Onderzoek investeringsagenda: opzet")).to_be_visible()
    page.get_by_role("button", name="De agenda publiceren voor de leden").click()
    expect(page.get_by_text("De agenda is gepubliceerd voor de leden.")).to_be_visible()
    # a document uploaded to the new item (a file, next to the link)
    page.locator("#document-item_id").select_option(label="3. Onderzoek investeringsagenda: opzet")
    page.locator("#document-title").fill("Opzet van het onderzoek")
    page.locator("#document-document").set_input_files(
        files=[{"name": "opzet.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.get_by_role("button", name="Document toevoegen").click()
    expect(page.get_by_text("Het document is aan het agendapunt toegevoegd.")).to_be_visible()
    expect(page.get_by_role("link", name="Opzet van het onderzoek")).to_be_visible()
    # the time as people write it: "… 2026, 12:00–14:00", no seconds, no zone name
    when = page.locator("dt", has_text="Wanneer").locator("xpath=following-sibling::dd")
    expect(when).to_have_text(re.compile(r"^\d{1,2} \w+ \d{4}, \d\d:\d\d–\d\d:\d\d$"))
    _shot(page, "meeting")

    member = browser.new_context(locale="nl-NL").new_page()
    try:
        _login(member, live_server, "representative.uvw@example.org")
        meetings = member.locator(
            "section", has=member.get_by_role("heading", name="Komende vergaderingen")
        )
        meetings.get_by_role("link", name="BO Digitalisering — najaar").click()
        expect(
            member.get_by_role("heading", name="Onderzoek investeringsagenda: opzet")
        ).to_be_visible()
        expect(member.get_by_role("link", name=demo.STRATEGY_TITLE).first).to_be_visible()
        member.goto(f"{live_server}/public/{demo.STRATEGY_SLUG}#timeline")
        expect(member.get_by_role("heading", name="Tijdlijn")).to_be_visible()
        expect(member.get_by_text("Antwoord ontvangen van De staatssecretaris")).to_be_visible()
        _shot(member, "public-timeline")
    finally:
        member.context.close()

    # the secretary cancels the meeting (after confirming), with the reason; it stays
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#cancel-reason").fill(
        "De staatssecretaris is verhinderd; een nieuwe datum volgt."
    )
    page.get_by_role("button", name="Vergadering laten vervallen").click()
    expect(
        page.get_by_text("De vergadering vervalt. De leden hebben bericht gekregen.")
    ).to_be_visible()
    expect(
        page.get_by_text("De staatssecretaris is verhinderd; een nieuwe datum volgt.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Vergadering laten vervallen")).to_have_count(0)
    _shot(page, "meeting-cancelled")
