"""In a real browser: a representative whose organisation signs at its qualified provider
(CSC) types the PIN and one-time code of the credential on the signing page; a wrong PIN
is refused in Dutch, the right one signs, and the public page then calls the signature
qualified. Set CONSENSUS_SCREENSHOT_DIR to keep screenshots for a person to look at."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from consensus.extensions import db
from consensus.services import processes
from consensus.signing import remote
from tests.factories import PASSWORD, make_user
from tests.pki_support import start_local_csc, start_local_pki
from tests.signing_support import make_signing_world

pytestmark = pytest.mark.e2e

PIN, OTP = "527381", "604219"


def _shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    target = os.environ.get("CONSENSUS_SCREENSHOT_DIR")
    if target:
        page.screenshot(path=f"{target}/{name}.png", full_page=True)


def test_the_signer_authorises_at_the_provider_in_the_browser(app, live_server, page, tmp_path):
    pki = start_local_pki(tmp_path / "pki")
    csc = start_local_csc(pki)
    csc.pin, csc.otp = PIN, OTP
    try:
        app.config["TSA_URL"] = pki.tsa_url
        app.config["TRUST_ANCHORS"] = str(pki.anchors_dir)
        world = make_signing_world()
        org = world.orgs[0]
        remote.set_csc(
            org,
            actor=make_user(is_admin=True),
            enabled=True,
            service_url=csc.url,
            credential_id=csc.credential("qualified-signer"),
            token=csc.token,
        )
        db.session.commit()
        email, slug, name = world.reps[org.id].email, world.process.slug, org.name
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(live_server + "/login")
        page.get_by_label("E-mailadres").fill(email)
        page.get_by_label("Wachtwoord").fill(PASSWORD)
        page.get_by_role("button", name="Inloggen").click()
        page.wait_for_url(live_server + "/")
        page.goto(f"{live_server}/processes/{slug}/signing")
        section = page.locator(f"#sign-{org.slug}").locator("xpath=..")
        expect(section.get_by_text("Uw toestemming bij de ondertekendienst")).to_be_visible()
        section.get_by_label("Uw wachtwoord").fill(PASSWORD)
        section.get_by_label("Pincode van uw certificaat bij de ondertekendienst").fill("999999")
        section.get_by_label("Eenmalige code van uw ondertekendienst").fill(OTP)
        _shoot(page, "signing-csc-form")
        section.get_by_role("button", name=f"Ondertekenen namens {name}").click()
        expect(page.locator(".c-error-summary")).to_contain_text(
            "de pincode of de eenmalige code klopte niet"
        )
        _shoot(page, "signing-csc-refused")
        section = page.locator(f"#sign-{org.slug}").locator("xpath=..")
        section.get_by_label("Uw wachtwoord").fill(PASSWORD)
        section.get_by_label("Pincode van uw certificaat bij de ondertekendienst").fill(PIN)
        section.get_by_label("Eenmalige code van uw ondertekendienst").fill(OTP)
        section.get_by_role("button", name=f"Ondertekenen namens {name}").click()
        expect(page.get_by_text(f"{name} heeft ondertekend.")).to_be_visible()
        _shoot(page, "signing-csc-signed")
        db.session.rollback()
        processes.close_round(world.signing, actor=world.facilitator)
        processes.schedule_publication(world.process, actor=world.facilitator, at=None)
        db.session.commit()
    finally:
        csc.stop()
        pki.stop()
    page.goto(f"{live_server}/public/{slug}/signatures")
    row = page.locator("table[aria-labelledby=pdf-signatures] tbody tr").first
    expect(row).to_contain_text("Gekwalificeerde elektronische handtekening")
    expect(row.locator(".utrecht-status-badge")).to_have_text("geldig")
    _shoot(page, "signatures-qualified")
