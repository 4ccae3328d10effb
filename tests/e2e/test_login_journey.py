"""In a real browser: a demo representative logs in and sees their organisation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_representative_logs_in_and_sees_vng(runner, live_server, page):
    assert runner.invoke(args=["demo"]).exit_code == 0
    page.goto(live_server + "/")
    page.get_by_role("link", name="Inloggen").first.click()
    page.get_by_label("E-mailadres").fill("representative.vng@example.org")
    page.get_by_label("Wachtwoord").fill("consensus-demo")
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(live_server + "/")
    expect(page.get_by_role("heading", name="Uw organisaties")).to_be_visible()
    expect(
        page.get_by_role("rowheader", name="Vereniging van Nederlandse Gemeenten (VNG)")
    ).to_be_visible()
    expect(page.get_by_text("Voorzitter commissie Informatiesamenleving")).to_be_visible()


def test_wrong_password_shows_a_message_in_the_error_summary(live_server, page):
    page.goto(live_server + "/login")
    page.get_by_label("E-mailadres").fill("nobody@example.org")
    page.get_by_label("Wachtwoord").fill("wrong password")
    page.get_by_role("button", name="Inloggen").click()
    summary = page.locator(".c-error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("Het e-mailadres of wachtwoord is niet juist.")
    expect(summary).to_be_focused()  # the summary takes focus so screen readers announce it
