"""In a real browser: an official comments inline and proposes an amendment; the
facilitator accepts it and applies it, and version 2 carries the new text."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

PASSWORD = "consensus-demo"  # noqa: S105 - the demo password


def log_in(page, live_server: str, email: str) -> None:
    page.goto(live_server + "/login")
    page.get_by_label("E-mailadres").fill(email)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(live_server + "/")


def test_official_proposes_and_facilitator_accepts(runner, live_server, page):
    assert runner.invoke(args=["demo"]).exit_code == 0
    log_in(page, live_server, "official.vng@example.org")
    page.goto(live_server + "/processes/datastrategie")
    page.get_by_role("link", name="Versie 1 lezen en reageren").click()
    expect(page.get_by_role("heading", name="Data als gemeenschappelijk goed")).to_be_visible()
    version_url = page.url

    # An inline comment (htmx): the thread updates in place.
    paragraph = page.locator("section.c-para", has_text="Overheidsdata zijn van de samenleving")
    paragraph.locator("summary").click()
    paragraph.get_by_label("Uw reactie op deze alinea").fill("Eens, mooi verwoord.")
    paragraph.get_by_role("button", name="Reactie plaatsen").click()
    posted = paragraph.locator("article.c-comment", has_text="Eens, mooi verwoord.")
    expect(posted).to_be_visible()
    expect(posted.locator(".c-voice__org")).to_have_text("Vereniging van Nederlandse Gemeenten")
    expect(posted.locator(".c-voice__role")).to_have_text("Ambtenaar")
    assert page.url == version_url

    # The amendment.
    paragraph.get_by_role("link", name=re.compile("^Wijziging voorstellen")).click()
    proposed = page.get_by_label("Voorgestelde tekst")
    expect(proposed).to_have_value(re.compile("Overheidsdata zijn van de samenleving"))
    proposed.fill(
        "Overheidsdata zijn van de samenleving. Wij delen data zo dat ze voor beleid en "
        "uitvoering bruikbaar zijn, met oog voor privacy en voor de registratielasten."
    )
    page.get_by_label("Toelichting").fill("Korter en concreter.")
    page.get_by_role("button", name="Wijzigingsvoorstel indienen").click()
    expect(page.get_by_text(re.compile(r"Wijzigingsvoorstel \d+ is ingediend"))).to_be_visible()
    number = re.search(r"/amendments/(\d+)$", page.url).group(1)
    amendment_url = page.url
    page.get_by_role("button", name="Uitloggen").click()

    # The facilitator accepts it, previews and creates version 2.
    log_in(page, live_server, "facilitator@example.org")
    page.goto(amendment_url)
    page.get_by_label("Overgenomen", exact=True).check()
    page.get_by_label("Reden").fill("Helder en in lijn met de strategie.")
    page.get_by_role("button", name="Besluit vastleggen").click()
    expect(page.get_by_text(f"Wijzigingsvoorstel {number}: Overgenomen.")).to_be_visible()
    page.goto(amendment_url.rsplit("/amendments/", 1)[0] + "/apply")
    expect(page.get_by_text("[toegevoegd:").first).to_be_attached()
    page.get_by_role("button", name="Versie 2 maken").click()
    expect(page.get_by_text("Versie 2 is gemaakt uit de wijzigingsvoorstellen.")).to_be_visible()
    expect(page.get_by_text("met oog voor privacy en voor de registratielasten")).to_be_visible()

    # The full hash on the page is the SHA-256 of the download.
    page.locator(".c-hashline__details summary").click()
    full_hash = page.locator(".c-hashline__details p code.c-hash").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", full_hash)
    href = page.get_by_role("link", name="Exacte tekst downloaden (.md)").get_attribute("href")
    response = page.request.get(live_server + href)
    assert response.ok and response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert hashlib.sha256(response.body()).hexdigest() == full_hash


def test_a_paragraph_discussion_loads_when_opened(app, runner, live_server, page):
    """A version with many comments sends each paragraph's discussion when the paragraph
    is opened; commenting there works as before."""
    app.config["VERSION_INLINE_COMMENTS"] = 0
    assert runner.invoke(args=["demo"]).exit_code == 0
    log_in(page, live_server, "official.vng@example.org")
    page.goto(live_server + "/processes/datastrategie")
    page.get_by_role("link", name="Versie 1 lezen en reageren").click()
    paragraph = page.locator("section.c-para", has_text="Overheidsdata zijn van de samenleving")
    expect(paragraph.get_by_label("Uw reactie op deze alinea")).to_have_count(0)
    paragraph.locator("summary").click()
    field = paragraph.get_by_label("Uw reactie op deze alinea")
    expect(field).to_be_visible()
    field.fill("Eens, na het openen geladen.")
    paragraph.get_by_role("button", name="Reactie plaatsen").click()
    expect(paragraph.locator("article.c-comment", has_text="na het openen geladen")).to_be_visible()
