"""Behind a reverse proxy (issue 25): absolute links come from CONSENSUS_BASE_URL and other
hosts are refused; the rate limiter and the audit trail see the real client, with as many
trusted proxies as configured (and none by default); the production session cookie is
`__Host-session`. Requests go through the whole app (consensus.web.proxy wraps it), as from
nginx (REMOTE_ADDR 127.0.0.1 plus its headers) and as from clients without a proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask, url_for
from sqlalchemy import select

from consensus import create_app
from consensus.config import ConfigError, base_url_settings, load_config
from consensus.extensions import db
from consensus.models import AuditEvent, PasswordResetToken, UserSession
from consensus.services import processes
from tests.endorsement_support import make_world
from tests.factories import PASSWORD, make_user
from tests.helpers import give_session, set_production_environment
from tests.security.test_passwords import inbox  # noqa: F401 - fixture

BASE = "https://consensus.example.org"
NGINX = {"REMOTE_ADDR": "127.0.0.1"}
ATTACKER, COLLEAGUE = "203.0.113.7", "198.51.100.9"


@pytest.fixture
def public(app: Flask) -> Flask:
    """The app with its production base URL (the test client then asks for that host)."""
    app.config.update(base_url_settings(BASE))
    return app


def origins(action: str) -> list[str]:
    db.session.expire_all()
    return list(
        db.session.execute(select(AuditEvent.origin).where(AuditEvent.action == action)).scalars()
    )


def log_in(client, email: str, password: str = PASSWORD, **kwargs):  # type: ignore[no-untyped-def]
    return client.post("/login", data={"email": email, "password": password}, **kwargs)


# --- 1. Links from the base URL, other hosts refused --------------------------------------------


def test_a_forged_host_gets_no_reset_link_and_the_real_one_uses_the_base_url(public, inbox):  # noqa: F811
    """Password-reset poisoning: a POST naming another host (as the documented nginx passed
    on) is refused before anything happens; through our host, the mailed link is the base
    URL's, whatever scheme the request came with."""
    make_user("rep@example.org")
    client = public.test_client()
    for host in ["evil.example", "consensus.example.org.evil.example", "127.0.0.1:8000"]:
        response = client.post(
            "/password/forgot",
            data={"email": "rep@example.org"},
            headers={"Host": host, "X-Forwarded-Proto": "https"},
            buffered=True,
        )
        assert response.status_code == 400, host
        assert "This host name does not belong to this site" in response.text
        assert "Traceback" not in response.text
    assert inbox.messages == []
    assert db.session.scalar(select(PasswordResetToken.id)) is None

    response = client.post(
        "/password/forgot",
        data={"email": "rep@example.org"},
        base_url="http://CONSENSUS.example.org:8000",  # plain HTTP, another port: still ours
        buffered=True,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    (message,) = inbox.messages
    links = re.findall(r"\S+/password/reset/\S+", message.get_content())
    assert len(links) == 1 and links[0].startswith(f"{BASE}/password/reset/"), links


@pytest.mark.parametrize(
    "base", [BASE, "https://gov.example.org/consensus", "http://localhost:8443/"]
)
def test_every_absolute_link_uses_the_base_url(app, base):
    """security.txt, the calendar feed and its page, the transparency page: all from the base
    URL, also when the app is mounted under a path (whether or not the server says so in
    SCRIPT_NAME), and also outside a request (for mail sent later)."""
    app.config.update(base_url_settings(base))
    base = base.rstrip("/")
    prefix = base.split("/", 3)[3] if base.count("/") > 2 else ""
    w = make_world()
    rep = w.reps[w.orgs[0].id]
    token = processes.reset_calendar_token(rep)
    db.session.commit()

    client = app.test_client()  # Flask's test client: SCRIPT_NAME is the base URL's path
    text = client.get("/.well-known/security.txt").text
    assert f"Canonical: {base}/.well-known/security.txt" in text
    assert f"Policy: {base}/about" in text
    feed = client.get(f"/calendar/{token}.ics").text.replace("\r\n ", "")
    assert f"{base}/processes/{w.process.slug}/rounds/{w.round.id}" in feed
    page = client.get("/transparency").text
    assert f"curl -o allowed_signers {base}/transparency/allowed_signers" in page
    assert f'href="/{prefix + "/" if prefix else ""}static/css/consensus.css"' in page
    give_session(app, client, rep)
    assert f"{base}/calendar/{token}.ics" in client.get("/account/calendar").text

    host = base.split("/")[2]
    # A server that passes the whole path on (no SCRIPT_NAME) or strips the prefix first.
    for path in {
        f"/{prefix}/.well-known/security.txt".replace("//", "/"),
        "/.well-known/security.txt",
    }:
        answer = app.test_client().get(path, base_url=f"http://{host}")
        assert answer.status_code == 200, path
        assert f"Canonical: {base}/.well-known/security.txt" in answer.text

    if prefix:  # the mount point itself leads to the home page
        home = app.test_client().get(f"/{prefix}", base_url=f"http://{host}")
        assert home.status_code == 308 and home.headers["Location"] == f"{base}/"
        home = app.test_client().get(f"/{prefix}/", base_url=f"http://{host}")
        assert home.status_code == 200 and f'href="/{prefix}/about"' in home.text

    with app.app_context():  # no request: a mail sent by a command or a worker
        assert url_for("main.about", _external=True) == f"{base}/about"


def test_probes_answer_a_load_balancer_that_asks_by_address(public):
    """A load balancer or Prometheus asks each instance by its own address: /healthz and
    /readyz answer whatever the Host header says; every other page for that host is still
    refused, and a POST to a probe's path is not let through either."""
    client = public.test_client()
    for host in ["10.0.0.11:8000", "127.0.0.1:8000"]:
        assert client.get("/healthz", headers={"Host": host}).status_code == 200
        assert client.get("/readyz", headers={"Host": host}).status_code == 200
        assert client.get("/login", headers={"Host": host}).status_code == 400
        assert client.post("/healthz", headers={"Host": host}).status_code == 400
    public.config.update(base_url_settings(BASE + "/consensus"))
    assert client.get("/healthz", headers={"Host": "10.0.0.11:8000"}).status_code == 200


def test_without_a_base_url_links_follow_the_request(client):
    """Development: CONSENSUS_BASE_URL unset, every host is served and links use it."""
    text = client.get("/.well-known/security.txt", base_url="http://dev.example:5000").text
    assert "Canonical: http://dev.example:5000/.well-known/security.txt" in text


def test_forwarded_host_and_prefix_are_never_trusted(app):
    """Even with a trusted proxy and no base URL, X-Forwarded-Host and -Prefix change no
    link: only the proxy's Host header (and, in production, the base URL) names us."""
    app.config["TRUSTED_PROXIES"] = 1
    client = app.test_client()
    client.environ_base.update(NGINX)
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Prefix": "/evil"}
    text = client.get("/.well-known/security.txt", headers=forged).text
    assert "Canonical: http://localhost/.well-known/security.txt" in text
    assert "evil" not in text


def test_the_base_url_is_checked_and_required_in_production(monkeypatch, tmp_path):
    monkeypatch.setenv("CONSENSUS_SECRET_KEY", "k" * 48)
    monkeypatch.delenv("CONSENSUS_BASE_URL", raising=False)
    assert load_config(str(tmp_path))["BASE_URL"] == ""  # development may leave it out
    for wrong in [
        "consensus.example.org",
        "ftp://consensus.example.org",
        "https://user@consensus.example.org",
        "https://consensus.example.org:port",
        "https://consensus.example.org/?next=x",
    ]:
        with pytest.raises(ConfigError, match="CONSENSUS_BASE_URL"):
            base_url_settings(wrong)
    settings = base_url_settings("https://Gov.example.org:8443/consensus/")
    assert settings["BASE_URL"] == "https://gov.example.org:8443/consensus"
    assert settings["SERVER_NAME"] == "gov.example.org:8443"
    assert settings["APPLICATION_ROOT"] == "/consensus"

    set_production_environment(monkeypatch)
    monkeypatch.delenv("CONSENSUS_BASE_URL")
    with pytest.raises(ConfigError, match="CONSENSUS_BASE_URL must be set"):
        load_config(str(tmp_path))
    monkeypatch.setenv("CONSENSUS_BASE_URL", "http://consensus.example.org")
    with pytest.raises(ConfigError, match="https"):
        load_config(str(tmp_path))
    monkeypatch.setenv("CONSENSUS_BASE_URL", BASE)
    assert load_config(str(tmp_path))["BASE_URL"] == BASE
    for wrong in ["-1", "one", "1.5"]:
        monkeypatch.setenv("CONSENSUS_TRUSTED_PROXIES", wrong)
        with pytest.raises(ConfigError, match="CONSENSUS_TRUSTED_PROXIES"):
            load_config(str(tmp_path))
    monkeypatch.setenv("CONSENSUS_TRUSTED_PROXIES", "1")
    assert load_config(str(tmp_path))["TRUSTED_PROXIES"] == 1


# --- 2. The real client address ------------------------------------------------------------------


def test_behind_one_proxy_limits_and_audit_follow_the_real_client(public):
    """CONSENSUS_TRUSTED_PROXIES=1 (nginx in front): ten failed logins of one client lock
    out that client only; a colleague behind the same proxy logs in; the audit trail and the
    session list name each client's own address. A forged X-Forwarded-For in front of the
    one nginx adds does not get the attacker out of the limit."""
    public.config["TRUSTED_PROXIES"] = 1
    make_user("victim@example.org")
    make_user("colleague@example.org")
    attacker = public.test_client()
    attacker.environ_base.update(NGINX)
    via = {"X-Forwarded-For": ATTACKER, "X-Forwarded-Proto": "https"}
    for _ in range(10):
        assert (
            log_in(attacker, "victim@example.org", "wrong password!!", headers=via).status_code
            == 200
        )
    assert log_in(attacker, "victim@example.org", headers=via).status_code == 429
    forged = {"X-Forwarded-For": f"{COLLEAGUE}, {ATTACKER}", "X-Forwarded-Proto": "https"}
    assert log_in(attacker, "victim@example.org", headers=forged).status_code == 429

    colleague = public.test_client()
    colleague.environ_base.update(NGINX)
    colleague_via = {"X-Forwarded-For": COLLEAGUE, "X-Forwarded-Proto": "https"}
    assert log_in(colleague, "colleague@example.org", headers=colleague_via).status_code == 302
    assert colleague.get("/account", headers=colleague_via).status_code == 200

    assert origins("user.login_failed") == [ATTACKER] * 10
    assert set(origins("user.login_throttled")) == {ATTACKER}
    assert origins("user.logged_in") == [COLLEAGUE]
    assert db.session.scalar(select(UserSession.origin)) == COLLEAGUE


def test_two_proxies_trust_two_hops(public):
    """A load balancer in front of nginx: CONSENSUS_TRUSTED_PROXIES=2 takes the second
    address from the right, whatever the client wrote in front of it."""
    public.config["TRUSTED_PROXIES"] = 2
    client = public.test_client()
    client.environ_base.update(NGINX)
    forwarded = {"X-Forwarded-For": f"10.9.9.9, {ATTACKER}, 10.0.0.2"}
    log_in(client, "nobody@example.org", "wrong password!!", headers=forwarded)
    assert origins("user.login_failed") == [ATTACKER]


def test_without_a_trusted_proxy_forwarded_headers_are_ignored(app):
    """The default (no proxy; CONSENSUS_TRUSTED_PROXIES=0): anyone can send X-Forwarded-For,
    so it is ignored. A client cannot dodge the limit or put another address in the audit
    trail with it; another client (another address) is not affected by the first."""
    assert app.config["TRUSTED_PROXIES"] == 0
    make_user("rep@example.org")
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ATTACKER
    for n in range(10):
        forged = {"X-Forwarded-For": f"192.0.2.{n}"}
        assert (
            log_in(client, "rep@example.org", "wrong password!!", headers=forged).status_code == 200
        )
    assert (
        log_in(client, "rep@example.org", headers={"X-Forwarded-For": "192.0.2.99"}).status_code
        == 429
    )
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = COLLEAGUE
    assert log_in(other, "rep@example.org").status_code == 302
    assert origins("user.login_failed") == [ATTACKER] * 10
    assert origins("user.logged_in") == [COLLEAGUE]


def test_behind_an_untrusted_proxy_everyone_shares_its_address(app):
    """What issue 25 found, kept visible: with the proxy's headers ignored (count 0 while a
    proxy is in front), every client is the proxy. The fix is configuration, tested above."""
    client = app.test_client()
    client.environ_base.update(NGINX)
    log_in(client, "nobody@example.org", "wrong", headers={"X-Forwarded-For": ATTACKER})
    assert origins("user.login_failed") == ["127.0.0.1"]


# --- 5. The production session cookie ---------------------------------------------------------


@pytest.fixture
def production_app(app: Flask, database_url: str, monkeypatch) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    set_production_environment(monkeypatch)
    monkeypatch.setenv("CONSENSUS_BASE_URL", "https://gov.example.org/consensus")
    # No Redis here: this test is about the cookie (limits: tests/scaleout, test_wsgi).
    monkeypatch.setenv("CONSENSUS_RATELIMIT_ENABLED", "0")
    monkeypatch.setenv("CONSENSUS_TRUSTED_PROXIES", "1")
    own = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "WTF_CSRF_ENABLED": False})
    try:
        yield own
    finally:
        with own.app_context():
            db.engine.dispose()


def test_the_production_session_cookie_is_host_only(production_app):
    """ASVS 3.4.4: in production the session cookie is `__Host-session`: Secure, Path=/ (even
    with the app under /consensus) and no Domain, so browsers accept it only like that."""
    make_user("rep@example.org")
    client = production_app.test_client()
    client.environ_base.update(NGINX)
    response = log_in(client, "rep@example.org", headers={"X-Forwarded-For": COLLEAGUE})
    assert response.status_code == 302
    (cookie,) = response.headers.getlist("Set-Cookie")
    assert cookie.startswith("__Host-session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "path"} <= attributes and "domain" not in attributes
    assert "Path=/;" in cookie or cookie.endswith("Path=/")
    assert client.get_cookie("session") is None
    account = client.get("/account", headers={"X-Forwarded-For": COLLEAGUE})
    assert account.status_code == 200
