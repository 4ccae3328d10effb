"""Print styles (issue 24): the letter (version page), the disposition report and the
outcome page print as documents — no navigation, buttons, forms or discussion controls,
one column, report items and table rows not split across pages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import Position, Process, RoundType
from tests.e2e.test_accessibility import _login

pytestmark = pytest.mark.e2e

HIDDEN_ON_PAPER = ["nav", ".c-button", "form", ".c-breadcrumbs", ".c-footer__links"]


def _display(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => getComputedStyle(e).display)")


def _assert_prints_as_a_document(page) -> None:
    page.emulate_media(media="print")
    for selector in HIDDEN_ON_PAPER:
        assert set(_display(page, selector)) <= {"none"}, selector
    assert page.locator("main h1").is_visible()
    page.emulate_media(media="screen")
    assert page.locator("nav").first.is_visible()  # only on paper


def test_letter_report_and_outcome_print_as_documents(browser, live_server, runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    strategy = db.session.execute(
        select(Process).where(Process.slug == "digitaliseringsstrategie")
    ).scalar_one()
    position = (
        db.session.execute(select(Position).where(Position.process_id == strategy.id))
        .scalars()
        .first()
    )
    consultation = next(r for r in strategy.rounds if r.type == RoundType.CONSULTATION)
    base = "/processes/digitaliseringsstrategie"
    context = browser.new_context(locale="nl-NL")
    page = context.new_page()
    try:
        page.goto(live_server + "/public/digitaliseringsstrategie")  # the outcome, public
        _assert_prints_as_a_document(page)
        page.emulate_media(media="print")
        assert page.locator("svg[role=img]").first.is_visible()  # the chart stays
        assert page.locator("table").first.is_visible()
        page.emulate_media(media="screen")

        _login(page, live_server, "representative.vng@example.org")
        page.goto(f"{live_server}{base}/positions/{position.id}/versions/2")  # the letter
        _assert_prints_as_a_document(page)
        page.emulate_media(media="print")
        assert page.locator(".c-letter").is_visible()
        assert set(_display(page, ".c-para__discussion")) <= {"none"}
        assert set(_display(page, "aside:has(.c-version-list)")) == {"none"}
        page.emulate_media(media="screen")

        page.goto(f"{live_server}{base}/positions/rounds/{consultation.id}/disposition")
        _assert_prints_as_a_document(page)
        page.emulate_media(media="print")
        breaks = page.eval_on_selector_all(
            ".c-report__item", "els => els.map(e => getComputedStyle(e).breakInside)"
        )
        assert breaks and set(breaks) == {"avoid"}
        assert len(page.pdf(format="A4")) > 1000  # and it prints
    finally:
        context.close()
