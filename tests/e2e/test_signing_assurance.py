"""In a real browser: the public signatures page shows, per organisation, the assurance
level, the timestamping authority's time and the validation result (issue 22). Set
CONSENSUS_SCREENSHOT_DIR to keep a screenshot for a person to look at."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from consensus.extensions import db
from consensus.services import processes
from tests.pki_support import start_local_pki
from tests.signing_support import make_signing_world, sign_as

pytestmark = pytest.mark.e2e


def test_signatures_page_shows_the_assurance_level(app, live_server, page, tmp_path):
    pki = start_local_pki(tmp_path / "pki")
    try:
        app.config["TSA_URL"] = pki.tsa_url
        app.config["TRUST_ANCHORS"] = str(pki.anchors_dir)
        world = make_signing_world()
        for org in world.orgs:
            sign_as(world, org)
            db.session.commit()
        processes.close_round(world.signing, actor=world.facilitator)
        processes.schedule_publication(world.process, actor=world.facilitator, at=None)
        db.session.commit()
        slug = world.process.slug
    finally:
        pki.stop()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/public/{slug}/signatures")
    rows = page.locator("table[aria-labelledby=pdf-signatures] tbody tr")
    expect(rows).to_have_count(4)
    for index in range(4):
        row = rows.nth(index)
        expect(row).to_contain_text(
            "Geavanceerde elektronische handtekening (certificaat van de eigen CA van dit platform)"
        )
        expect(row).to_contain_text("van een tijdstempeldienst")
        expect(row.locator(".utrecht-status-badge")).to_have_text("geldig")
    expect(page.get_by_text("Verzegeld op")).to_be_visible()
    target = os.environ.get("CONSENSUS_SCREENSHOT_DIR")
    if target:
        page.screenshot(path=f"{target}/signatures-assurance.png", full_page=True)
