"""Passkeys in a real browser (Debian chromium) with its DevTools virtual authenticator
(issue 19 items 3 and 5): register two, log in without a password, use one as the second
factor after the password, and re-authenticate with one before a platform-held signature.
WebAuthn needs a secure context and a registrable domain, so the site is opened at
http://localhost (127.0.0.1 is refused as a relying party ID)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from consensus.extensions import db
from consensus.models import AuditEvent, CoSignature, Passkey
from tests.factories import PASSWORD, make_user
from tests.signing_support import make_signing_world

pytestmark = pytest.mark.e2e


@pytest.fixture
def site(live_server: str) -> str:
    return f"http://localhost:{urlsplit(live_server).port}"


def add_authenticator(page) -> tuple[object, str]:  # type: ignore[no-untyped-def]
    """A platform authenticator with a PIN or fingerprint that is always given."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def log_in_with_password(page, site: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(site + "/login")
    page.get_by_label("E-mailadres").first.fill(email)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen", exact=True).click()


def log_out(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Uitloggen").click()
    expect(page.get_by_text("U bent uitgelogd.")).to_be_visible()


def add_passkey(page, site: str, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(site + "/account")
    page.get_by_label("Naam van deze passkey").fill(name)
    page.get_by_role("button", name="Passkey toevoegen").click()
    expect(page.get_by_text(f"De passkey “{name}” is toegevoegd.")).to_be_visible()


def login_methods() -> list[str]:
    db.session.rollback()
    return [
        json.loads(p)["method"]
        for p in db.session.scalars(
            select(AuditEvent.payload)
            .where(AuditEvent.action == "user.logged_in")
            .order_by(AuditEvent.seq)
        )
    ]


def test_passkeys_register_log_in_and_confirm_the_password(app, live_server, site, page):
    make_user("rep@example.org", name="Marieke")
    log_in_with_password(page, site, "rep@example.org")
    page.wait_for_url(site + "/")

    cdp, first = add_authenticator(page)
    add_passkey(page, site, "Werklaptop")
    # A second device: another authenticator (the first is put away).
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": first})
    add_authenticator(page)
    add_passkey(page, site, "Telefoon")
    table = page.locator("#passkey-list")
    expect(table).to_contain_text("Werklaptop")
    expect(table).to_contain_text("Telefoon")
    db.session.rollback()
    assert len(db.session.scalars(select(Passkey)).all()) == 2

    # Without a password: the passkey of the second device.
    log_out(page)
    page.goto(site + "/login")
    page.get_by_role("button", name="Passkey gebruiken om in te loggen").click()
    page.wait_for_url(site + "/")
    page.goto(site + "/account")
    expect(page.locator("h1")).to_have_text("Uw account")
    db.session.rollback()
    phone = db.session.scalar(select(Passkey).where(Passkey.name == "Telefoon"))
    assert phone.last_used_at is not None and phone.sign_count >= 1

    # With the password, the passkey is the second factor.
    log_out(page)
    log_in_with_password(page, site, "rep@example.org")
    page.wait_for_url(site + "/login/code")
    expect(page.get_by_label("Code")).to_have_count(0)  # no authenticator app enrolled
    page.get_by_role("button", name="Een passkey gebruiken").click()
    page.wait_for_url(site + "/")
    assert login_methods() == ["password", "passkey", "password+passkey"]


def test_a_passkey_confirms_a_platform_held_signature(app, live_server, site, page):
    world = make_signing_world()
    org = world.orgs[0]
    rep = world.reps[org.id]
    email, slug, name = rep.email, world.process.slug, org.name
    log_in_with_password(page, site, email)
    page.wait_for_url(site + "/")
    add_authenticator(page)
    add_passkey(page, site, "Werklaptop")
    page.goto(f"{site}/processes/{slug}/signing")
    section = page.locator(f"#sign-{org.slug}").locator("xpath=..")
    section.get_by_role("button", name=f"Ondertekenen namens {name} met een passkey").click()
    expect(page.get_by_text(f"{name} heeft ondertekend.")).to_be_visible()
    db.session.rollback()
    (signature,) = db.session.scalars(select(CoSignature)).all()
    assert signature.organisation_id == org.id
    assert db.session.scalar(select(Passkey)).last_used_at is not None
