"""In a real browser: a word or address longer than the line wraps inside the text instead
of running out of it (what you see is what you sign; docs/signing.md)."""

from __future__ import annotations

import os

import pytest

from consensus.extensions import db
from tests.factories import PASSWORD
from tests.web.test_positions import V1, build_world
from tests.web.test_what_you_see import TOKEN, URL

pytestmark = pytest.mark.e2e

BODY = (
    V1
    + f"\n{TOKEN[:1200]}\n\nZie {URL} of [de bijlage]({URL}).\n\n"
    + f"```\n{TOKEN[:600]}\n```\n\n| kolom | lang |\n|---|---|\n| a | {TOKEN[:500]} |\n"
)


@pytest.mark.parametrize("width", [1280, 375])
def test_a_long_token_wraps_on_the_version_page(app, live_server, browser, width, tmp_path):
    w = build_world(body=BODY)
    db.session.commit()
    context = browser.new_context(locale="nl-NL", viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto(live_server + "/login")
        page.get_by_label("E-mailadres").fill(w.facilitator.email)
        page.get_by_label("Wachtwoord").fill(PASSWORD)
        page.get_by_role("button", name="Inloggen").click()
        page.wait_for_url(live_server + "/")
        page.goto(live_server + w.url("/versions/1"))
        # Nothing sticks out of the page sideways ...
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # ... nor out of any paragraph of the text, code block and table cell included.
        overflowing = page.evaluate(
            """() => [...document.querySelectorAll('.c-para__text, .c-para__text *')]
                .filter(e => getComputedStyle(e).display !== 'inline')
                .filter(e => e.scrollWidth > e.clientWidth + 1)
                .map(e => e.tagName + ' ' + e.scrollWidth + '>' + e.clientWidth)"""
        )
        assert overflowing == []
        shown = page.locator(".c-para__text").all_inner_texts()
        flat = "".join("".join(shown).split())
        assert TOKEN[:1200] in flat and URL in flat and TOKEN[:600] in flat
        target = os.environ.get("CONSENSUS_SCREENSHOT_DIR")
        if target:  # for a person to look at (docs/signing.md)
            page.screenshot(path=f"{target}/long-token-{width}.png", full_page=True)
    finally:
        context.close()
