"""Logging in through one's organisation's identity provider (issue 19 items 1, 2, 5),
against a real OpenID provider (npm `oidc-provider`) on loopback: the code flow with PKCE,
linking by verified e-mail or by an administrator, tampered ID tokens, a wrong state or
nonce, RP-initiated logout, and organisations that require it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import escape, unescape
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from sqlalchemy import select

from consensus.extensions import db
from consensus.identity import links
from consensus.models import (
    AuditEvent,
    ExternalIdentity,
    IdentityProvider,
    LinkStatus,
    MembershipRole,
    User,
)
from tests.factories import PASSWORD, make_membership, make_organisation, make_user
from tests.helpers import give_session
from tests.oidc_support import CLIENT_ID, CLIENT_SECRET, RealProvider, follow, real_provider


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealProvider]:
    with real_provider(tmp_path_factory.mktemp("oidc")) as running:
        yield running


@pytest.fixture
def vng(app, provider: RealProvider):
    """VNG with its provider (allowed domain example.org, the provider's e-mail domain)."""
    provider.tamper.mode = None
    organisation = make_organisation("vng", name="Vereniging van Nederlandse Gemeenten")
    admin = make_user("admin@beheer.example", is_admin=True)
    links.configure_provider(
        organisation,
        actor=admin,
        issuer=provider.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        allowed_domains="example.org",
        required_acr=None,
        sso_required=False,
        enabled=True,
    )
    db.session.commit()
    return organisation


def events(action: str) -> list[dict]:
    return [
        json.loads(p)
        for p in db.session.scalars(
            select(AuditEvent.payload).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
    ]


def start(client, slug: str = "vng") -> str:
    response = client.get(f"/login/via/{slug}")
    assert response.status_code == 302
    return response.headers["Location"]


def back(client, callback_url: str):
    """The browser arrives at our callback with the provider's answer."""
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def oidc_login(client, provider: RealProvider, login: str, browser=None):
    return back(client, provider.log_in(start(client), login, browser=browser))


def test_the_login_page_offers_the_organisations_login(client, vng):
    page = client.get("/login").get_data(as_text=True)
    assert "Inloggen via VNG" in page
    assert 'href="/login/via/vng"' in page


def test_the_authorization_request_follows_the_profile(client, vng, provider):
    query = parse_qs(urlsplit(start(client)).query)
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["client_id"] == [CLIENT_ID]
    assert "openid" in query["scope"][0].split()


def test_a_first_login_links_by_verified_email_then_logs_in(client, vng, provider):
    alice = make_user("alice@example.org", name="Alice")
    response = oidc_login(client, provider, "alice")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/account").status_code == 200
    assert events("identity.linked") == [
        {
            "provider": "vng",
            "subject": "alice",
            "email": "alice@example.org",
            "email_verified": True,
            "how": "verified_email",
        }
    ]
    assert events("user.logged_in")[-1] == {"method": "oidc:vng"}
    # Mandates stay ours: the login gave no membership or role.
    db.session.refresh(alice)
    assert alice.memberships == [] and not alice.is_admin and not alice.is_facilitator
    client.post("/logout")
    other_browser = client.application.test_client()
    assert oidc_login(other_browser, provider, "alice").status_code == 302
    assert other_browser.get("/account").status_code == 200
    assert len(events("identity.linked")) == 1


def test_the_email_domain_finds_the_provider(client, vng):
    # A page that sends the browser on (CSP form-action 'self' stops a form's redirect to
    # the provider): a link and an immediate refresh to the organisation's login.
    response = client.post("/login/organisation", data={"sso-email": "Alice@Example.org"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="0; url=/login/via/vng' in page
    assert 'href="/login/via/vng' in page
    unknown = client.post("/login/organisation", data={"sso-email": "bob@elsewhere.example"})
    assert unknown.status_code == 400
    assert "Voor dit e-mailadres is geen organisatie met een eigen inlog bekend." in (
        unknown.get_data(as_text=True)
    )


@pytest.mark.parametrize(
    ("login", "existing"),
    [
        ("unverified-bob", "bob@example.org"),  # the provider does not vouch for the address
        ("carol", None),  # no account with that address
    ],
)
def test_otherwise_the_link_waits_for_an_administrator(client, vng, provider, login, existing):
    if existing:
        make_user(existing)
    response = oidc_login(client, provider, login)
    assert response.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302  # not logged in
    page = client.get("/login").get_data(as_text=True)
    assert "moet deze inlog nog aan uw Consensus-account koppelen" in page
    assert len(events("identity.link_requested")) == 1
    # An administrator links it to an account; the next login gets in.
    target = make_user(f"{login}-account@example.org")
    admin_client = client.application.test_client()
    give_session(
        client.application, admin_client, db.session.scalar(select(User).where(User.is_admin))
    )
    listing = admin_client.get("/admin/identity-links").get_data(as_text=True)
    assert login.removeprefix("unverified-") in listing
    link = db.session.scalar(select(ExternalIdentity))
    assert (
        admin_client.post(
            f"/admin/identity-links/{link.id}/approve", data={"email": target.email}
        ).status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(ExternalIdentity, link.id).status == LinkStatus.LINKED
    assert events("identity.linked")[-1]["how"] == "administrator"
    browser = client.application.test_client()
    assert oidc_login(browser, provider, login).headers["Location"] == "/"
    assert browser.get("/account").get_data(as_text=True).count(target.email) >= 1


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("forged", "bad_signature"),
        ("unsigned", "bad_signature"),
        ("expired", "expired"),
        ("audience", "wrong_audience"),
        ("nonce", "wrong_nonce"),
        ("issuer", "wrong_issuer"),
    ],
)
def test_a_tampered_id_token_is_refused(client, vng, provider, mode, reason):
    make_user("alice@example.org")
    provider.tamper.mode = mode
    try:
        response = oidc_login(client, provider, "alice")
    finally:
        provider.tamper.mode = None
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302
    assert "Inloggen via uw organisatie is niet gelukt." in client.get("/login").get_data(
        as_text=True
    )
    assert events("identity.login_refused") == [{"reason": reason}]
    assert events("identity.linked") == [] and events("user.logged_in") == []


def test_a_wrong_state_is_refused(client, vng, provider):
    make_user("alice@example.org")
    callback = provider.log_in(start(client), "alice")
    forged = callback.replace("state=", "state=x")
    assert back(client, forged).headers["Location"] == "/login"
    assert client.get("/account").status_code == 302
    # The answer is spent with the attempt: the real one afterwards finds no login under way.
    assert back(client, callback).headers["Location"] == "/login"
    assert [e["reason"] for e in events("identity.login_refused")] == [
        "wrong_state",
        "no_login_in_progress",
    ]


def test_an_answer_brought_to_another_browser_is_refused(client, vng, provider):
    """Login CSRF: the attacker's own code, planted in the victim's browser."""
    make_user("alice@example.org")
    callback = provider.log_in(start(client), "alice")
    victim = client.application.test_client()
    assert back(victim, callback).headers["Location"] == "/login"
    assert victim.get("/account").status_code == 302


def test_logout_also_ends_the_session_at_the_provider(client, vng, provider):
    make_user("alice@example.org")
    browser = requests.Session()
    oidc_login(client, provider, "alice", browser=browser)
    response = client.post("/logout")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    location = unescape(
        re.search(r'id="continue-elsewhere"', page)
        and re.search(r'href="([^"]+)" hx-boost="false" id="continue-elsewhere"', page).group(1)
    )
    assert f'content="0; url={escape(location)}"' in page
    assert location.startswith(f"{provider.issuer}/session/end?")
    query = parse_qs(urlsplit(location).query)
    assert query["post_logout_redirect_uri"] == ["http://localhost/"]
    assert query["client_id"] == [CLIENT_ID] and query["id_token_hint"][0].count(".") == 2
    assert client.get("/account").status_code == 302
    assert follow(browser, location, until="http://localhost/") == "http://localhost/"
    # The provider asks for the login again: its session has ended too.
    page = browser.get(start(client), timeout=10).text
    assert 'name="login"' in page


def test_an_organisation_can_require_its_login(client, vng, provider):
    provider_row = db.session.scalar(select(IdentityProvider))
    provider_row.sso_required = True
    db.session.commit()
    member = make_user("alice@example.org")
    make_membership(member, vng, MembershipRole.REPRESENTATIVE)
    make_user("outsider@example.org")
    refused = client.post("/login", data={"email": "alice@example.org", "password": PASSWORD})
    assert refused.status_code == 403
    assert "VNG vereist dat u inlogt via de eigen inlog van de organisatie." in refused.get_data(
        as_text=True
    )
    assert client.get("/account").status_code == 302
    assert events("user.login_refused")[-1] == {"reason": "sso_required", "organisation": "vng"}
    # A wrong password says nothing about the requirement.
    wrong = client.post("/login", data={"email": "alice@example.org", "password": "wrong one!!"})
    assert "vereist" not in wrong.get_data(as_text=True)
    # Through the provider the member gets in; a non-member still uses a password.
    assert oidc_login(client, provider, "alice").headers["Location"] == "/"
    client.post("/logout")
    other = client.application.test_client()
    assert (
        other.post(
            "/login", data={"email": "outsider@example.org", "password": PASSWORD}
        ).status_code
        == 302
    )


def test_the_second_factor_follows_the_organisations_login(client, vng, provider):
    alice = make_user("alice@example.org")
    alice.totp_secret = pyotp.random_base32()
    alice.totp_enabled = True
    db.session.commit()
    assert oidc_login(client, provider, "alice").headers["Location"] == "/login/code"
    assert client.get("/account").status_code == 302
    code = pyotp.TOTP(alice.totp_secret).now()
    assert client.post("/login/code", data={"code": code}).status_code == 302
    assert client.get("/account").status_code == 200
    assert events("user.logged_in")[-1] == {"method": "oidc:vng+totp"}
    assert f'href="{provider.issuer}/session/end?' in client.post("/logout").get_data(as_text=True)


def test_an_administrator_configures_the_provider(client, login_as, provider):
    organisation = make_organisation("ipo", name="Interprovinciaal Overleg")
    login_as(make_user("admin@beheer.example", is_admin=True))
    url = f"/admin/organisations/{organisation.id}/identity"
    form = {
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "allowed_domains": "ipo.example, provincie.example",
        "required_acr": "",
        "enabled": "y",
    }
    bad = client.post(url, data={**form, "issuer": "http://idp.example.org"})
    assert "Vul de issuer van de provider in als https-adres" in bad.get_data(as_text=True)
    bad = client.post(url, data={**form, "allowed_domains": "not a domain!"})
    assert "is geen domeinnaam" in bad.get_data(as_text=True)
    assert db.session.scalar(select(IdentityProvider)) is None
    assert client.post(url, data=form).status_code == 302
    row = db.session.scalar(select(IdentityProvider))
    assert row.domains == ["ipo.example", "provincie.example"]
    assert CLIENT_SECRET not in row.sealed_client_secret
    assert links.settings(row).client_secret == CLIENT_SECRET
    (configured,) = events("identity_provider.configured")
    assert CLIENT_SECRET not in json.dumps(configured)
    # Saving again without a secret keeps the stored one.
    assert client.post(url, data={**form, "client_secret": ""}).status_code == 302
    db.session.expire_all()
    assert (
        links.settings(db.session.scalar(select(IdentityProvider))).client_secret == CLIENT_SECRET
    )
    assert "Inloggen via IPO" in client.application.test_client().get("/login").get_data(
        as_text=True
    )


def test_the_operator_sets_a_provider_from_the_command_line(app, client, provider):
    """The demo's way (docs/operations.md): `flask identity provider vng …`; then the login
    page offers it and a demo person logs in through it."""
    make_organisation("vng", name="Vereniging van Nederlandse Gemeenten")
    make_user("representative.vng@example.org")
    runner = app.test_cli_runner()
    arguments = ["identity", "provider", "vng", "--issuer", provider.issuer]
    arguments += ["--client-id", CLIENT_ID, "--domains", "example.org"]
    missing = runner.invoke(args=arguments)
    assert missing.exit_code == 1 and "Vul het clientgeheim in." in missing.output
    done = runner.invoke(args=[*arguments, "--client-secret", CLIENT_SECRET])
    assert done.exit_code == 0, done.output
    assert "Inloggen via VNG" in client.get("/login").get_data(as_text=True)
    assert oidc_login(client, provider, "representative.vng").headers["Location"] == "/"
    unknown = runner.invoke(args=["identity", "provider", "nope", *arguments[3:]])
    assert unknown.exit_code == 1 and "nope" in unknown.output


def test_the_ways_to_the_provider_are_not_boosted(client, vng):
    """htmx would follow the redirect to the provider with a background request, which a
    browser refuses (another origin): the link and the form navigate for real."""
    page = client.get("/login").get_data(as_text=True)
    listing = page[page.index('<ul class="c-login-organisation__list"') :]
    assert listing.split(">")[0].endswith('hx-boost="false"')
    form = page[page.index('action="/login/organisation"') :].split(">")[0]
    assert 'hx-boost="false"' in form
