"""WCAG 1.4.10 Reflow: at 320 CSS pixels (400 % zoom) a page does not scroll sideways as a
whole; a wide data table scrolls inside its own container instead."""

from __future__ import annotations

import pytest

from tests.e2e.test_accessibility import _login

pytestmark = pytest.mark.e2e


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_pages_with_tables_reflow_at_320_pixels(browser, live_server, runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    context = browser.new_context(locale="nl-NL", viewport={"width": 320, "height": 640})
    page = context.new_page()
    wide = {}
    try:
        for url in ("/public/digitaliseringsstrategie", "/accessibility"):
            page.goto(live_server + url)
            wide[url] = _page_width(page)
        _login(page, live_server, "representative.vng@example.org")
        for url in (
            "/",
            "/processes/digitale-weerbaarheid",
            "/processes/datastrategie",
            "/account",
        ):
            page.goto(live_server + url)
            wide[url] = _page_width(page)
    finally:
        context.close()
    assert {url: width for url, width in wide.items() if width > 320} == {}
