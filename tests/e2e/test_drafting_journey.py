"""In a real browser (issue 21): two organisations each prepare an amendment in their own
space — an official drafts it, the organisation's representative clears and submits it —
and the amendments overlap; the facilitator sees them grouped on the consolidation page,
adopts a compromise for the group, applies every decision in one step, and reads version
2 with line numbers. Screenshots of both pages go to CONSENSUS_SCREENSHOTS when set."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.test_amendment_journey import log_in

pytestmark = pytest.mark.e2e


def _contribute(page, live_server: str, org: str, text: str, why: str) -> str:
    """The official drafts in the organisation's space; the representative clears and
    submits it, once, as the organisation's."""
    log_in(page, live_server, f"official.{org}@example.org")
    page.goto(live_server + "/processes/datastrategie")
    page.get_by_role("link", name="Versie 1 lezen en reageren").click()
    page.get_by_role("link", name=re.compile("^Inbreng voorbereiden met collega's")).click()
    expect(page).to_have_url(re.compile(r"/organisations/\d+/contributions$"))
    space = page.url
    page.get_by_label("Alinea's wijzigen of schrappen").check()
    paragraph = page.get_by_role("combobox", name=re.compile("^Alinea"))
    option = paragraph.locator("option", has_text="Overheidsdata zijn van de samenleving")
    paragraph.select_option(option.first.get_attribute("value"))
    page.get_by_role("textbox", name=re.compile("^Tekst")).fill(text)
    page.get_by_role("textbox", name=re.compile("^Toelichting")).fill(why)
    page.get_by_role("button", name="Als concept bewaren").click()
    expect(page.get_by_text("Het concept staat in de ruimte van uw organisatie.")).to_be_visible()
    # The writer cannot clear it: four eyes.
    expect(page.get_by_role("button", name=re.compile("^Vrijgeven namens"))).to_have_count(0)
    page.get_by_role("textbox", name="Interne opmerking").fill("Graag even kijken.")
    page.get_by_role("button", name="Interne opmerking toevoegen").click()
    expect(page.locator("article.c-comment", has_text="Graag even kijken.")).to_be_visible()
    draft = page.url
    page.get_by_role("button", name="Uitloggen").click()
    page.wait_for_url(live_server + "/")

    log_in(page, live_server, f"representative.{org}@example.org")
    page.goto(draft)
    expect(page.get_by_text("Graag even kijken.")).to_be_visible()
    page.get_by_role("button", name=re.compile("^Vrijgeven namens")).click()
    expect(page.get_by_text("De bijdrage is vrijgegeven.")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=re.compile("^Indienen namens")).click()
    expect(page.get_by_text(re.compile("De bijdrage is ingediend namens"))).to_be_visible()
    page.get_by_role("link", name="Ingediend als wijzigingsvoorstel van de organisatie").click()
    expect(page).to_have_url(re.compile(r"/amendments$"))
    page.get_by_role("button", name="Uitloggen").click()
    page.wait_for_url(live_server + "/")
    return space


def _shoot(page, name: str) -> None:
    folder = os.environ.get("CONSENSUS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_two_organisations_propose_and_the_facilitator_consolidates(runner, live_server, page):
    assert runner.invoke(args=["demo"]).exit_code == 0
    space = _contribute(
        page,
        live_server,
        "vng",
        "Overheidsdata zijn van de samenleving en worden open gedeeld.",
        "Openheid voorop.",
    )
    _contribute(
        page,
        live_server,
        "ipo",
        "Overheidsdata zijn van ons allemaal; wij delen ze verantwoord.",
        "Verantwoord delen.",
    )
    amendments_url = space.split("/organisations/")[0] + "/amendments"

    log_in(page, live_server, "facilitator@example.org")
    page.goto(amendments_url)
    page.get_by_role("link", name="Wijzigingsvoorstellen samenvoegen").click()
    # The demo world has its own overlapping pair (IPO's and VNG's on the data system
    # paragraph); this journey's pair is the one with IPO's rationale of this test.
    group = page.locator("section.c-group", has_text="overlappende wijzigingsvoorstellen").filter(
        has_text="Verantwoord delen."
    )
    expect(group).to_have_count(1)
    expect(group.locator(".c-group__item")).to_have_count(2)
    expect(group.get_by_text("Vereniging van Nederlandse Gemeenten")).to_have_count(1)
    expect(group.get_by_text("Interprovinciaal Overleg")).to_have_count(1)
    _shoot(page, "consolidation.png")
    group.get_by_label("Een eigen compromistekst overnemen").check()
    group.get_by_label("Reden voor de overgenomen tekst").fill("Beide voorstellen samengevoegd.")
    group.get_by_role("textbox", name=re.compile("^Compromistekst")).fill(
        "Overheidsdata zijn van de samenleving; wij delen ze open en verantwoord."
    )
    group.get_by_role("button", name="Over deze groep besluiten").click()
    expect(page.get_by_text(re.compile(r"Het besluit over wijzigingsvoorstellen"))).to_be_visible()
    expect(page.get_by_text("Compromis besloten")).to_be_visible()

    page.get_by_role("link", name=re.compile(r"^Voorbeeld van versie 2")).click()
    expect(page.get_by_text("[toegevoegd:").first).to_be_attached()
    page.get_by_role("button", name="Versie 2 maken").click()
    expect(page.get_by_text("Versie 2 is gemaakt uit de wijzigingsvoorstellen.")).to_be_visible()

    # Line numbers: a toggle without JavaScript; the lines carry the compromise.
    page.get_by_role("link", name="Regelnummers tonen").click()
    expect(page.get_by_role("link", name="Regelnummers verbergen")).to_be_visible()
    line = page.locator(".c-line", has_text="open en verantwoord")
    expect(line).to_have_count(1)
    assert re.fullmatch(r"\d+", line.locator(".c-line__num").inner_text())
    _shoot(page, "version-lines.png")
