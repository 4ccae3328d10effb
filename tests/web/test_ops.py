"""/healthz, /readyz and /metrics: what a load balancer and Prometheus see (issue 15)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from consensus import audit, create_app
from consensus.extensions import db
from consensus.models import utcnow
from consensus.models.processes import RoundType
from consensus.services import processes as process_service
from tests.conftest import TEST_CONFIG
from tests.factories import make_organisation, make_process, make_user
from tests.web.test_quickstart import _free_port

TOKEN = "metrics-token-for-tests-0123456789"  # noqa: S105 - test value


@pytest.fixture
def metered_app(app, database_url):
    """An application with CONSENSUS_METRICS_TOKEN set (the hooks are wired at creation)."""
    own = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "METRICS_TOKEN": TOKEN}
    )
    with own.app_context():
        try:
            yield own
        finally:
            db.session.remove()
            db.engine.dispose()


def _sample(page: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", page, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_healthz_answers_without_touching_the_database(client, count_queries):
    with count_queries() as counter:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "ok\n"
    assert counter.count == 0
    assert "Set-Cookie" not in response.headers


def test_readyz_checks_database_migrations_and_audit_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "audit": "ok"},
    }
    assert "Set-Cookie" not in response.headers


def test_readyz_is_not_ready_before_db_upgrade(client):
    (current,) = db.session.execute(text("SELECT version_num FROM alembic_version")).scalars()
    db.session.execute(text("UPDATE alembic_version SET version_num = '0005_sessions'"))
    db.session.commit()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"] == "ok"
        assert "0005_sessions" in body["checks"]["migrations"]
        assert "db upgrade" in body["checks"]["migrations"]
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
        db.session.commit()
    assert client.get("/readyz").status_code == 200


def test_unreachable_database_is_not_ready_but_alive(tmp_path):
    missing = tmp_path / "no-such-folder" / "consensus.sqlite"
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{missing}"})
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "unreachable"}
    assert client.get("/healthz").status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_probes_are_never_rate_limited(client):
    for _ in range(30):
        assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_metrics_do_not_exist_without_a_token(client):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_metrics_need_the_bearer_token(metered_app):
    client = metered_app.test_client()
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401
    assert "consensus_http" not in wrong.get_data(as_text=True)


def test_metrics_count_requests_and_read_the_database(metered_app):
    client = metered_app.test_client()
    facilitator = make_user("facilitator@example.org", is_facilitator=True)
    now = utcnow()
    make_process(
        facilitator,
        [make_organisation("VNG"), make_organisation("IPO")],
        rounds=[(RoundType.CONSULTATION, now - timedelta(minutes=5), now + timedelta(days=2))],
    )
    process_service.tick()
    db.session.commit()
    auth = {"Authorization": f"Bearer {TOKEN}"}

    before = client.get("/metrics", headers=auth).get_data(as_text=True)
    for _ in range(3):
        assert client.get("/login").status_code == 200
    assert client.get("/no-such-page").status_code == 404
    response = client.get("/metrics", headers=auth)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    page = response.get_data(as_text=True)

    login = {"endpoint": "auth.login", "method": "GET"}
    counted = _sample(page, "consensus_http_requests_total", **login, status="200")
    assert counted - _sample(before, "consensus_http_requests_total", **login, status="200") == 3
    timed = _sample(page, "consensus_http_request_duration_seconds_count", **login)
    assert timed - _sample(before, "consensus_http_request_duration_seconds_count", **login) == 3
    assert _sample(page, "consensus_http_request_duration_seconds_sum", **login) > 0
    assert _sample(page, "consensus_http_requests_total", endpoint="none", method="GET",
                   status="404") >= 1  # fmt: skip
    assert _sample(page, "consensus_audit_log_events") == audit.tree_head()[0] > 0
    assert _sample(page, "consensus_rounds_open") == 1


def test_strange_methods_do_not_grow_the_labels(metered_app):
    client = metered_app.test_client()
    client.open("/login", method="BREW")
    page = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(
        as_text=True
    )
    assert 'method="BREW"' not in page
    assert 'method="other"' in page


def test_metrics_hooks_add_no_queries(metered_app, count_queries):
    client = metered_app.test_client()
    client.get("/login")
    with count_queries() as counter:
        client.get("/healthz")
    assert counter.count == 0


def _wait_for(url: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            assert server.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not answer in time"
            time.sleep(0.3)


def test_gunicorn_workers_add_up_in_multiprocess_mode(tmp_path):
    """Real gunicorn workers, PROMETHEUS_MULTIPROC_DIR set: one scrape counts the requests
    that every worker answered, including workers that have since been replaced (each one
    retires after 10 requests here, so at least four processes serve the 40). Our gunicorn
    settings (consensus.gunicorn_config) clear what a previous run left in the directory."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"left over from a previous run")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_")}
    env.update(
        CONSENSUS_INSTANCE_PATH=str(tmp_path / "instance"),
        CONSENSUS_METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
    )
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "flask"), "--app", "consensus", "db", "upgrade"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    port = _free_port()
    server = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "--config", "python:consensus.gunicorn_config",
         "--workers", "2", "--max-requests", "10",
         "--bind", f"127.0.0.1:{port}", "consensus.wsgi:app"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz", server)
        scrape = urllib.request.Request(
            f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        healthz = {"endpoint": "ops.healthz", "method": "GET", "status": "200"}
        with urllib.request.urlopen(scrape, timeout=60) as response:
            before = _sample(response.read().decode(), "consensus_http_requests_total", **healthz)
        for _ in range(40):
            # Workers retire every 10 requests and boot anew: allow for a slow boot.
            urllib.request.urlopen(f"{base}/healthz", timeout=60).close()
        with urllib.request.urlopen(scrape, timeout=60) as response:
            page = response.read().decode()
        assert _sample(page, "consensus_http_requests_total", **healthz) - before == 40
        workers = list(multiproc.glob("counter_*.db"))
        assert len(workers) >= 4, workers
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/metrics", timeout=60)
        assert refused.value.code == 401
        refused.value.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
