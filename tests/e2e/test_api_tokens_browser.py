"""In a real browser: a demo representative makes a personal access token on the account
page (shown once), the token reads the API, and the reference page lists the operations.
Screenshots go to SCREENSHOT_DIR when it is set (for a person to look at)."""

from __future__ import annotations

import os
import re

import pytest
import requests
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=os.path.join(folder, name), full_page=True)


def test_a_token_made_in_the_browser_reads_the_api(runner, live_server, page):
    assert runner.invoke(args=["demo"]).exit_code == 0
    page.goto(live_server + "/login")
    page.get_by_label("E-mailadres").fill("representative.vng@example.org")
    page.get_by_label("Wachtwoord").fill("consensus-demo")
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(live_server + "/")
    page.goto(live_server + "/account#api-tokens")
    page.get_by_label("Naam", exact=True).fill("Zaaksysteem gemeente")
    page.get_by_label("Lezen en schrijven").check()
    page.get_by_role("button", name="Token maken").click()
    expect(page.get_by_role("heading", name="Uw nieuwe token")).to_be_visible()
    secret = page.get_by_label("Token").input_value()
    assert re.fullmatch(r"cns_[A-Za-z0-9_-]{43}", secret)
    _shot(page, "token-made.png")
    page.get_by_role("link", name="Ik heb het bewaard").click()
    expect(page.get_by_role("cell", name="Zaaksysteem gemeente")).to_be_visible()
    expect(page.get_by_text(secret)).to_have_count(0)  # never shown again
    page.locator("#api-tokens").scroll_into_view_if_needed()
    _shot(page, "account-tokens.png")

    me = requests.get(
        f"{live_server}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert me.status_code == 200 and me.headers["API-Version"] == "1.0.0"
    assert "vng" in {m["organisation"]["slug"] for m in me.json()["memberships"]}

    page.goto(live_server + "/api")
    expect(page.get_by_role("heading", name="API-naslag")).to_be_visible()
    expect(
        page.get_by_role("heading", name="POST /api/v1/processes/{slug}/rounds/{round_id}/stances")
    ).to_be_visible()
    _shot(page, "api-reference.png")
