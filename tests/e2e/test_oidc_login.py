"""In a real browser: "Inloggen via VNG" on the login page, the organisation's provider
(npm oidc-provider on loopback), back logged in, and logging out at both ends. The links
leave the site, so htmx must not take them over (it would follow the redirect to the
provider in the background, which the browser refuses)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.serving import make_server

from consensus.extensions import db
from consensus.identity import links
from consensus.models import CoSignature
from tests.e2e.conftest import _closing
from tests.factories import make_organisation, make_user
from tests.oidc_support import CLIENT_ID, CLIENT_SECRET, RealProvider, free_port, real_provider
from tests.signing_support import make_signing_world

pytestmark = pytest.mark.e2e


@pytest.fixture
def site(app: Flask, tmp_path) -> Iterator[tuple[str, RealProvider]]:  # type: ignore[no-untyped-def]
    """A live server on a port chosen first, so the provider knows our redirect URI."""
    port = free_port()
    address = f"http://127.0.0.1:{port}"
    with real_provider(tmp_path, site=address) as provider:
        server = make_server("127.0.0.1", port, _closing(app), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield address, provider
        finally:
            server.shutdown()
            thread.join(timeout=5)


def test_logging_in_and_out_through_the_organisations_provider(app, site, page):
    address, provider = site
    vng = make_organisation("vng", name="Vereniging van Nederlandse Gemeenten")
    make_user("representative.vng@example.org", name="Marieke de Vries")
    links.configure_provider(
        vng,
        actor=None,
        issuer=provider.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        allowed_domains="example.org",
        required_acr=None,
        sso_required=False,
        enabled=True,
    )
    db.session.commit()
    page.goto(address + "/login")
    page.get_by_role("link", name="Inloggen via VNG").click()
    page.wait_for_url(provider.issuer + "/**")
    page.fill("input[name=login]", "representative.vng")
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.click("button[type=submit]")  # the provider's consent
    page.wait_for_url(address + "/")
    expect(page.get_by_text("Ingelogd als")).to_contain_text("Marieke de Vries")

    # Logging out here sends the browser through the provider's end-session endpoint
    # (RP-initiated logout) and back to the start page.
    visited: list[str] = []
    page.on("request", lambda request: visited.append(request.url))
    page.get_by_role("button", name="Uitloggen").click()
    page.wait_for_url(provider.issuer + "/session/end**")
    page.click("button[name=logout][value=yes]")  # the provider asks to confirm
    page.wait_for_url(address + "/")
    expect(page.get_by_role("navigation").get_by_role("link", name="Inloggen")).to_be_visible()
    assert any(url.startswith(provider.issuer + "/session/end") for url in visited)
    # The provider's session has ended too: it asks for the login again. This time the
    # provider is found from the e-mail address (a form, then a page that sends one on).
    page.goto(address + "/login")
    page.get_by_label("Uw e-mailadres op het werk").fill("Representative.VNG@example.org")
    page.get_by_role("button", name="Zoek de inlog van mijn organisatie").click()
    page.wait_for_url(provider.issuer + "/**")
    expect(page.locator("input[name=login]")).to_be_visible()


@pytest.fixture
def local_site(app: Flask, tmp_path) -> Iterator[tuple[str, RealProvider]]:  # type: ignore[no-untyped-def]
    """As `site`, at http://localhost (passkeys need a registrable domain)."""
    port = free_port()
    address = f"http://localhost:{port}"
    with real_provider(tmp_path, site=address) as provider:
        server = make_server("127.0.0.1", port, _closing(app), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield address, provider
        finally:
            server.shutdown()
            thread.join(timeout=5)


def test_the_organisations_login_a_passkey_as_second_factor_and_a_signature(app, local_site, page):
    """Issue 19's "done when": a representative logs in through the organisation's provider
    without a Consensus password, confirms with a passkey, and signs with the platform-held
    key after re-authenticating with the passkey."""
    from tests.e2e.test_passkeys import add_authenticator, add_passkey, login_methods

    address, provider = local_site
    world = make_signing_world()
    org = world.orgs[0]
    rep = world.reps[org.id]
    email, slug, name, short = rep.email, world.process.slug, org.name, org.short_name
    links.configure_provider(
        org,
        actor=None,
        issuer=provider.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        allowed_domains="example.org",
        required_acr=None,
        sso_required=True,
        enabled=True,
    )
    db.session.commit()
    # First time: through the provider, then a passkey is added on the account page.
    page.goto(address + "/login")
    page.get_by_role("link", name=f"Inloggen via {short}").click()
    page.fill("input[name=login]", email.split("@")[0])
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.click("button[type=submit]")
    page.wait_for_url(address + "/")
    add_authenticator(page)
    add_passkey(page, address, "Werklaptop")
    page.get_by_role("button", name="Uitloggen").click()
    page.wait_for_url(provider.issuer + "/session/end**")
    page.click("button[name=logout][value=yes]")
    page.wait_for_url(address + "/")

    # Again through the provider: now the passkey is the second factor.
    page.goto(address + "/login")
    page.get_by_role("link", name=f"Inloggen via {short}").click()
    page.fill("input[name=login]", email.split("@")[0])
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.click("button[type=submit]")
    page.wait_for_url(address + "/login/code")
    page.get_by_role("button", name="Een passkey gebruiken").click()
    page.wait_for_url(address + "/")
    assert login_methods() == [f"oidc:{org.slug}", f"oidc:{org.slug}+passkey"]

    # The signature, re-authenticated by the passkey (no password: SSO is required).
    page.goto(f"{address}/processes/{slug}/signing")
    section = page.locator(f"#sign-{org.slug}").locator("xpath=..")
    section.get_by_role("button", name=f"Ondertekenen namens {name} met een passkey").click()
    expect(page.get_by_text(f"{name} heeft ondertekend.")).to_be_visible()
    db.session.rollback()
    (signature,) = db.session.scalars(select(CoSignature)).all()
    assert signature.organisation_id == org.id and signature.signer_id == rep.id
