"""WCAG 2.1 A/AA checks with axe-core in the real browser, on the main pages of the demo
world, for the people who use them (anonymous, representative, facilitator, admin).

axe cannot prove accessibility, but it catches what machines can: contrast, names of
controls and links, landmarks, headings, labels, ARIA misuse, language of the page.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import (
    FollowUpAction,
    Meeting,
    Organisation,
    Position,
    Process,
    Round,
    RoundType,
    StandingBody,
)

pytestmark = pytest.mark.e2e

AXE = (Path(__file__).parent / "vendor" / "axe-4.14.1.min.js").read_text()
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def _violations(page) -> list[str]:
    page.evaluate(AXE)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] for node in v["nodes"][:3])
        for v in result["violations"]
    ]


def _login(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("E-mailadres").fill(email)
    page.get_by_label("Wachtwoord").fill("consensus-demo")
    page.locator("main button[type=submit]").click()
    page.wait_for_url(base + "/")


@pytest.fixture
def demo_pages(runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    strategy = db.session.execute(
        select(Process).where(Process.slug == "digitaliseringsstrategie")
    ).scalar_one()
    position = (
        db.session.execute(select(Position).where(Position.process_id == strategy.id))
        .scalars()
        .first()
    )
    endorsement = db.session.execute(
        select(Round)
        .join(Process)
        .where(Process.slug == "digitale-weerbaarheid", Round.type == RoundType.ENDORSEMENT)
    ).scalar_one()
    consultation = db.session.execute(
        select(Round)
        .join(Process)
        .where(Process.slug == "datastrategie", Round.type == RoundType.CONSULTATION)
    ).scalar_one()
    base = "/processes/digitaliseringsstrategie"
    positions = f"{base}/positions/{position.id}"
    strategy_consultation = next(r for r in strategy.rounds if r.type == RoundType.CONSULTATION)
    vng = db.session.execute(select(Organisation).where(Organisation.slug == "vng")).scalar_one()
    bo = "/bodies/bo-digitalisering"
    bo_meetings = (
        db.session.execute(
            select(Meeting.id)
            .join(StandingBody)
            .where(StandingBody.slug == "bo-digitalisering")
            .order_by(Meeting.starts_at)
        )
        .scalars()
        .all()
    )
    action = (
        db.session.execute(select(FollowUpAction.id).order_by(FollowUpAction.id)).scalars().first()
    )
    anonymous = [
        "/",
        "/login",
        "/public/",
        "/public/digitaliseringsstrategie",
        "/transparency",
        "/about",
        "/accessibility",
        "/password/forgot",
    ]
    return {
        "-": anonymous,
        "- en": anonymous,  # the same pages in English
        "representative.vng@example.org": [
            "/",
            "/processes/",
            base,
            f"{positions}/versions/2",
            f"{positions}/diff?from=1&to=2",
            f"{positions}/amendments",
            f"{base}/positions/rounds/{strategy_consultation.id}/disposition",
            f"/processes/digitale-weerbaarheid/rounds/{endorsement.id}/endorsement",
            f"/processes/datastrategie/rounds/{consultation.id}",
            f"{base}/signing",
            "/account",
            "/account/delegations",
            "/account/notifications",
            "/messages",
            "/audit/vng",
            "/bodies",
            f"{bo}/meetings/{bo_meetings[0]}",
            "/actions",
        ],
        # standing bodies (issue 20): the secretary's pages with their forms
        "secretaris@example.org": [
            bo,
            f"{bo}/meetings/{bo_meetings[1]}",
            f"{bo}/meetings/{bo_meetings[2]}",
            f"{bo}/meetings/new",
            f"/actions/{action}",
        ],
        "facilitator@example.org": [
            "/",
            f"{base}/manage",
            f"{base}/rounds/new",
            f"{base}/edit",
            "/processes/new",
            "/processes/datastrategie",
            f"{base}/follow-up",
            f"{base}/follow-up/actions/new",
        ],
        "admin@example.org": [
            "/admin/",
            "/admin/users",
            "/admin/organisations",
            "/admin/audit",
            f"/admin/organisations/{vng.id}",
            f"/admin/organisations/{vng.id}/signing",
            "/admin/mail",
            "/bodies/new",
            f"{bo}/edit",
        ],
    }


def test_main_pages_have_no_wcag_violations(browser, live_server, demo_pages):
    failures: dict[str, list[str]] = {}
    for who, urls in demo_pages.items():
        context = browser.new_context(locale="nl-NL", bypass_csp=True)
        page = context.new_page()
        try:
            if who == "- en":
                page.goto(live_server + "/")
                page.get_by_role("button", name="English").click()
                page.wait_for_load_state()
                assert page.locator("html").get_attribute("lang") == "en"
            elif who != "-":
                _login(page, live_server, who)
            for url in urls:
                response = page.goto(live_server + url)
                assert response is not None and response.status == 200, (who, url)
                found = _violations(page)
                if found:
                    failures[f"{who} {url}"] = found
        finally:
            context.close()
    assert not failures, "\n".join(f"{k}: {v}" for k, v in failures.items())
