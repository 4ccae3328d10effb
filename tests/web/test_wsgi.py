"""The production entry point (docs/operations.md): `gunicorn consensus.wsgi:app` serves, and
the module freezes the start-up objects out of the garbage collector's view."""

from __future__ import annotations

import http.client
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from flask_migrate import upgrade

from consensus import create_app
from consensus.extensions import db
from tests.factories import make_user
from tests.web.test_quickstart import ROOT, _free_port, fetch_when_up


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_")}
    env["CONSENSUS_INSTANCE_PATH"] = str(tmp_path / "instance")
    return env


def test_the_wsgi_module_freezes_start_up_objects(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import gc, consensus.wsgi; print(gc.get_freeze_count())"],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(done.stdout.strip()) > 10_000


def test_gunicorn_serves_the_wsgi_app(tmp_path):
    env = _env(tmp_path)
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "flask"), "--app", "consensus", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            str(bin_dir / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "consensus.wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page = fetch_when_up(f"http://127.0.0.1:{port}/about", server, 60)
        assert "Consensus" in page and "</html>" in page, (
            server.stdout.read() if server.poll() is not None else "gunicorn did not answer"
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stdout:
            server.stdout.close()


# --- Behind the documented proxy (issue 25) ---------------------------------------------------

PUBLIC_HOST = "consensus.example.org"


def _request(port: int, method: str, path: str, headers: dict[str, str], body: str = ""):  # type: ignore[no-untyped-def]
    """One request on its own connection, as nginx forwards it; (status, headers, text)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        connection.close()


def test_gunicorn_behind_the_documented_proxy(tmp_path):
    """The production server as docs/operations.md runs it behind nginx (one trusted proxy,
    a base URL), with a mail relay that takes 0.3 s per message: a forged Host is refused;
    the reset answer for a known address comes as fast as for an unknown one, because the
    server writes it before it runs the token and the mail; the mail then arrives with a
    link to the base URL; the audit trail names the client, not the proxy."""
    from aiosmtpd.controller import Controller

    from tests.security.test_passwords import SlowInbox

    database = tmp_path / "consensus.sqlite"
    scratch = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "TESTING": True})
    with scratch.app_context():
        upgrade()
        make_user("rep@example.org")
        db.session.remove()
        db.engine.dispose()

    inbox = SlowInbox()
    mail_port = _free_port()
    relay = Controller(inbox, hostname="127.0.0.1", port=mail_port)
    relay.start()
    port = _free_port()
    env = _env(tmp_path) | {
        "CONSENSUS_DATABASE_URL": f"sqlite:///{database}",
        "CONSENSUS_BASE_URL": f"https://{PUBLIC_HOST}",
        "CONSENSUS_TRUSTED_PROXIES": "1",
        "CONSENSUS_LOGIN_RATE_LIMIT": "100 per minute",
        "CONSENSUS_MAIL_HOST": "127.0.0.1",
        "CONSENSUS_MAIL_PORT": str(mail_port),
        "CONSENSUS_MAIL_STARTTLS": "0",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            *("--workers", "1", "--threads", "2", "--bind", f"127.0.0.1:{port}"),
            *("--forwarded-allow-ips", "127.0.0.1", "consensus.wsgi:app"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    nginx = {"Host": PUBLIC_HOST, "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not answer"
            try:
                status, headers, page = _request(port, "GET", "/password/forgot", nginx)
                break
            except OSError:
                time.sleep(0.3)
        assert status == 200
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        form = {
            **nginx,
            "Cookie": cookie,
            "Referer": f"https://{PUBLIC_HOST}/password/forgot",  # CSRF checks it over HTTPS
            "Content-Type": "application/x-www-form-urlencoded",
        }

        def ask(email: str, **changes: str) -> tuple[int, float]:
            started = time.perf_counter()
            body = f"csrf_token={token}&email={email.replace('@', '%40')}"
            status, _, _ = _request(port, "POST", "/password/forgot", form | changes, body)
            return status, time.perf_counter() - started

        assert ask("rep@example.org", Host="evil.example")[0] == 400
        timings: dict[str, list[float]] = {"rep@example.org": [], "nobody@example.org": []}
        for _ in range(5):
            for email, seconds in timings.items():
                mailed = len(inbox.messages)
                status, took = ask(email)
                assert status == 302
                seconds.append(took)
                if email == "rep@example.org":  # let the worker finish before the next one
                    while len(inbox.messages) == mailed and time.monotonic() < deadline:
                        time.sleep(0.02)
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=20)
        relay.stop()
    known, unknown = (statistics.median(v) for v in timings.values())
    assert known < 0.2, timings
    assert abs(known - unknown) < 0.1, timings
    assert len(inbox.messages) == 5
    assert f"https://{PUBLIC_HOST}/password/reset/" in inbox.messages[-1].get_content()
    with sqlite3.connect(database) as connection:
        origins = connection.execute(
            "SELECT DISTINCT origin FROM audit_event WHERE action LIKE 'user.password_reset%'"
        ).fetchall()
    assert origins == [("203.0.113.7",)]
