"""In a real browser (issue 21): officials of two organisations propose overlapping
amendments; the facilitator sees them grouped on the consolidation page, adopts a
compromise for the group, applies every decision in one step, and reads version 2 with
line numbers. Screenshots of both pages go to CONSENSUS_SCREENSHOTS when it is set."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.test_amendment_journey import log_in

pytestmark = pytest.mark.e2e


def _propose(page, live_server: str, email: str, text: str, why: str) -> str:
    log_in(page, live_server, email)
    page.goto(live_server + "/processes/datastrategie")
    page.get_by_role("link", name="Versie 1 lezen en reageren").click()
    paragraph = page.locator("section.c-para", has_text="Overheidsdata zijn van de samenleving")
    paragraph.locator("summary").click()
    paragraph.get_by_role("link", name=re.compile("^Wijziging voorstellen")).click()
    page.get_by_label("Voorgestelde tekst").fill(text)
    page.get_by_label("Toelichting").fill(why)
    page.get_by_role("button", name="Wijzigingsvoorstel indienen").click()
    expect(page.get_by_text(re.compile(r"Wijzigingsvoorstel \d+ is ingediend"))).to_be_visible()
    # The reference names the paragraph and the lines the amendment changes.
    expect(page.locator(".c-lineref-main")).to_have_text(re.compile(r"^alinea \d+, regels? \d+"))
    url = page.url
    page.get_by_role("button", name="Uitloggen").click()
    return url


def _shoot(page, name: str) -> None:
    folder = os.environ.get("CONSENSUS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_two_organisations_propose_and_the_facilitator_consolidates(runner, live_server, page):
    assert runner.invoke(args=["demo"]).exit_code == 0
    first = _propose(
        page,
        live_server,
        "official.vng@example.org",
        "Overheidsdata zijn van de samenleving en worden open gedeeld.",
        "Openheid voorop.",
    )
    _propose(
        page,
        live_server,
        "official.ipo@example.org",
        "Overheidsdata zijn van ons allemaal; wij delen ze verantwoord.",
        "Verantwoord delen.",
    )

    log_in(page, live_server, "facilitator@example.org")
    page.goto(first.rsplit("/amendments/", 1)[0] + "/amendments")
    page.get_by_role("link", name="Wijzigingsvoorstellen samenvoegen").click()
    group = page.locator("section.c-group", has_text="overlappende wijzigingsvoorstellen")
    expect(group).to_have_count(1)
    expect(group.locator(".c-group__item")).to_have_count(2)
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
