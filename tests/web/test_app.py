"""App-wide behaviour: headers, CSRF, languages, configuration, CLI, demo world, migrations."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, inspect, select

from consensus import create_app
from consensus.config import ConfigError, load_config
from consensus.extensions import db
from consensus.models import AuditEvent, Base, Membership, Organisation, User
from tests.conftest import TEST_CONFIG
from tests.factories import PASSWORD, make_user
from tests.helpers import give_session, set_production_environment


def test_security_headers_on_every_response(client):
    for url in ["/", "/login", "/does-not-exist"]:
        response = client.get(url)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_no_inline_scripts_or_styles(client):
    page = client.get("/login").get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert " style=" not in page
    assert " onclick=" not in page


def test_session_cookie_flags(client):
    make_user("rep@example.org")
    response = client.post("/login", data={"email": "rep@example.org", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_authenticated_pages_are_not_cached(client, login_as):
    login_as(make_user())
    assert client.get("/account").headers["Cache-Control"] == "no-store"


def test_csrf_token_is_required(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    make_user("rep@example.org")
    response = client.post("/login", data={"email": "rep@example.org", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/account").status_code == 302

    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": "rep@example.org", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302


def test_htmx_requests_carry_the_csrf_token_header(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    page = client.get("/login").get_data(as_text=True)
    match = re.search(
        r"hx-headers='\{&#34;X-CSRFToken&#34;: &#34;([^&]+)&#34;\}'", page
    ) or re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page)
    assert match, "the body must send the CSRF token with htmx requests"
    response = client.post(
        "/language",
        data={"locale": "en", "next": "/"},
        headers={"X-CSRFToken": match.group(1), "HX-Request": "true"},
    )
    assert response.status_code == 302


def test_dutch_by_default_and_english_selectable(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="nl"' in page
    assert "Wachtwoord" in page
    response = client.post("/language", data={"locale": "en", "next": "/login"})
    assert response.headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="en"' in page
    assert "Password" in page


def test_locale_choice_is_kept_per_user(app, client, login_as):
    user = make_user()
    login_as(user)
    client.post("/language", data={"locale": "en", "next": "//evil.example"})
    db.session.expire_all()
    assert db.session.get(User, user.id).locale == "en"
    other_client = give_session(app, app.test_client(), user)
    assert '<html lang="en"' in other_client.get("/").get_data(as_text=True)


def test_unknown_locale_is_refused(client):
    assert client.post("/language", data={"locale": "xx"}).status_code == 400


def test_error_pages_show_no_traceback(fresh_app):
    app, client = fresh_app, fresh_app.test_client()

    @app.get("/boom")
    def boom():  # pragma: no cover - exercised through the client
        raise RuntimeError("secret internals")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "secret internals" not in page and "Traceback" not in page
    assert client.get("/nope").status_code == 404


def test_production_demands_a_secret_key(monkeypatch, tmp_path):
    set_production_environment(monkeypatch)
    monkeypatch.delenv("CONSENSUS_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        load_config(str(tmp_path))
    monkeypatch.setenv("CONSENSUS_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("CONSENSUS_BASE_URL", "https://consensus.example.org")
    config = load_config(str(tmp_path))
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["DEMO_PASSWORD_ALLOWED"] is False


def test_development_secret_key_is_generated_once(monkeypatch, tmp_path):
    monkeypatch.delenv("CONSENSUS_SECRET_KEY", raising=False)
    monkeypatch.delenv("CONSENSUS_ENV", raising=False)
    first = load_config(str(tmp_path))["SECRET_KEY"]
    assert first == load_config(str(tmp_path))["SECRET_KEY"]
    assert (tmp_path / "secret-key").stat().st_mode & 0o077 == 0


def test_database_url_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONSENSUS_DATABASE_URL", "postgresql://u:p@localhost/consensus")
    assert load_config(str(tmp_path))["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")


def test_create_admin_command(runner):
    result = runner.invoke(
        args=["create-admin", "Boss@Example.org", "--name", "Boss"],
        input="a long admin password\na long admin password\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.execute(select(User).where(User.email == "boss@example.org")).scalar_one()
    assert user.is_admin
    result = runner.invoke(
        args=["create-admin", "boss@example.org"],
        input="a long admin password\na long admin password\n",
    )
    assert result.exit_code != 0


def test_production_refuses_the_demo_password(app, runner):
    app.config["DEMO_PASSWORD_ALLOWED"] = False
    result = runner.invoke(args=["demo"])
    assert result.exit_code != 0
    assert "refused" in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def _snapshot() -> dict[str, list[tuple]]:
    snapshot = {}
    for table in Base.metadata.sorted_tables:
        rows = db.session.execute(select(table)).all()
        snapshot[table.name] = sorted(tuple(map(repr, row)) for row in rows)
    return snapshot


def test_demo_world_is_idempotent(runner):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "consensus-demo" in result.output
    first = _snapshot()
    assert len(first["organisation"]) == 4
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert _snapshot() == first

    slugs = set(db.session.execute(select(Organisation.slug)).scalars())
    assert slugs == {"vng", "ipo", "uvw", "bzk"}
    for slug in slugs:
        # Each organisation: its representative and two officials (one drafts an
        # organisation contribution, the other clears it).
        for account, role in (
            ("representative", "representative"),
            ("official", "official"),
            ("official2", "official"),
        ):
            user = db.session.execute(
                select(User).where(User.email == f"{account}.{slug}@example.org")
            ).scalar_one()
            (membership,) = user.memberships
            assert membership.role.value == role
            assert membership.organisation.slug == slug
            assert membership.title
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 12
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) > 0


def test_demo_representative_sees_vng(client, runner):
    runner.invoke(args=["demo"])
    client.post(
        "/login", data={"email": "representative.vng@example.org", "password": "consensus-demo"}
    )
    page = client.get("/").get_data(as_text=True)
    assert "Vereniging van Nederlandse Gemeenten" in page


def test_migrations_downgrade_and_upgrade_without_drift(tmp_path, database_url):
    """Upgrade → downgrade → upgrade on a scratch database, then compare with the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import create_engine, text

    if database_url.startswith("postgresql"):
        scratch = database_url.rsplit("/", 1)[0] + "/consensus_migrations"
        admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS consensus_migrations"))
            conn.execute(text("CREATE DATABASE consensus_migrations"))
        admin.dispose()
    else:
        scratch = f"sqlite:///{tmp_path / 'scratch.sqlite'}"
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": scratch})
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
        db.engine.dispose()


def test_the_layouts_fixed_addresses_follow_the_mount_point(client):
    """The layout's style sheets and navigation are built once per mount point: an app
    served under a path prefix still links under that prefix after a request at the root."""
    assert 'href="/static/css/consensus.css"' in client.get("/about").text
    mounted = client.get("/about", base_url="http://localhost/consensus").text
    assert 'href="/consensus/static/css/consensus.css"' in mounted
    assert 'href="/consensus/about"' in mounted
    assert 'href="/static/css/consensus.css"' in client.get("/about").text


def test_breadcrumb_trails_are_one_list_of_links_on_every_page(client, login_as):
    """Pages whose heading names them show the trail above them in the same list as every
    other page (not loose links with slashes), and no crumb claims to be the current page."""
    login_as(make_user(is_admin=True))
    page = client.get("/admin/users").text
    trail = page.split('<nav class="c-breadcrumbs', 1)[1].split("</nav>", 1)[0]
    assert 'class="utrecht-breadcrumb-nav__list' in trail
    assert 'href="/admin/"' in trail or 'href="/admin"' in trail
    assert "aria-current" not in trail
    assert " / " not in trail


def test_an_instance_names_itself_only_when_told(app, client, database_url):
    """Behind a load balancer each instance may say who answered (CONSENSUS_INSTANCE_NAME);
    without a name no header tells the world anything."""
    assert "X-Consensus-Instance" not in client.get("/login").headers
    named = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_NAME": "web-2"}
    )
    with named.app_context():
        try:
            answers = [named.test_client().get(path) for path in ("/login", "/no-such-page")]
        finally:
            db.session.remove()
            db.engine.dispose()
    assert [a.headers.get("X-Consensus-Instance") for a in answers] == ["web-2", "web-2"]
    assert [a.status_code for a in answers] == [200, 404]
