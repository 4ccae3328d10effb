"""The representative's journey with the keyboard only, with and without JavaScript: log
in, from the process page take the one primary action, register the stance. No mouse, no
clicks: Tab, arrow keys, Space and Enter (the accessibility statement relies on this)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.endorsement_support import make_world
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def _tab_to(page, description: str, test: str, limit: int = 80) -> None:
    """Press Tab until the focused element passes `test` (a JS expression on `el`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {test}; }})()"):
            visible = page.evaluate(
                "getComputedStyle(document.activeElement).outlineStyle !== 'none'"
                " || getComputedStyle(document.activeElement).boxShadow !== 'none'"
            )
            assert visible, f"no visible focus on {description}"
            return
    raise AssertionError(f"Tab never reached {description}")


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_a_representative_registers_a_stance_with_the_keyboard_only(
    app, browser, live_server, javascript
):
    w = make_world(2)
    org = w.orgs[0]
    context = browser.new_context(locale="nl-NL", java_script_enabled=javascript)
    page = context.new_page()
    try:
        page.goto(live_server + "/login")
        _tab_to(page, "the e-mail field", "el.name === 'email'")
        page.keyboard.type(w.reps[org.id].email)
        _tab_to(page, "the password field", "el.name === 'password'")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(live_server + "/")

        page.goto(f"{live_server}/processes/{w.process.slug}")
        _tab_to(page, "the primary action", "el.textContent.trim() === 'Ons standpunt bepalen'")
        page.keyboard.press("Enter")
        page.wait_for_url("**/endorsement#your-stance")
        _tab_to(page, "the first stance", "el.type === 'radio'")
        page.keyboard.press("ArrowDown")  # the second option: with reservations
        assert page.evaluate("document.activeElement.value") == "endorse_with_reservations"
        _tab_to(page, "the reservation", "el.tagName === 'TEXTAREA'")
        page.keyboard.type("Mits de financiering rond is.")
        _tab_to(page, "the submit button", "el.textContent.trim() === 'Standpunt vastleggen'")
        page.keyboard.press("Enter")
        recorded = f"Vastgelegd: {org.name} — Instemmen met voorbehoud."
        expect(page.get_by_text(recorded)).to_be_visible()
    finally:
        context.close()
