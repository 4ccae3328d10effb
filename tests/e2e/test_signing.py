"""In a real browser: a representative co-signs with the platform-held key after
confirming the password, and the letter then carries the organisation's signature."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from consensus import signing
from consensus.extensions import db
from consensus.signing import documents as letters
from tests.factories import PASSWORD
from tests.signing_support import make_signing_world

pytestmark = pytest.mark.e2e


def test_representative_signs_with_platform_held_key(app, live_server, page):
    world = make_signing_world()
    org = world.orgs[0]
    rep = world.reps[org.id]
    email, slug = rep.email, world.process.slug
    page.goto(live_server + "/login")
    page.get_by_label("E-mailadres").fill(email)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(live_server + "/")
    page.goto(f"{live_server}/processes/{slug}/signing")
    section = page.locator(f"#sign-{org.slug}").locator("xpath=..")
    expect(section.get_by_text("Het platform bewaart de ondertekeningssleutel")).to_be_visible()
    section.get_by_label("Uw wachtwoord").fill("not the password")
    section.get_by_role("button", name=f"Ondertekenen namens {org.name}").click()
    expect(page.locator(".c-error-summary")).to_contain_text("Het wachtwoord is niet juist.")
    section = page.locator(f"#sign-{org.slug}").locator("xpath=..")
    section.get_by_label("Uw wachtwoord").fill(PASSWORD)
    section.get_by_role("button", name=f"Ondertekenen namens {org.name}").click()
    expect(page.get_by_text(f"{org.name} heeft ondertekend.")).to_be_visible()
    expect(page.get_by_role("button", name="Deze handtekening intrekken")).to_be_visible()
    db.session.rollback()
    letter = signing.letter_of(world.signing)
    checks = letters.validate_pdf(letter.signed_pdf, signing.all_ca_pem())
    assert [c.field_name for c in checks] == [f"Signature-{org.slug}"]
    assert checks[0].valid and checks[0].intact
