"""Public pages behind nginx's proxy_cache (issue 23): with the configuration of
docs/operations.md ("A shared cache in front"), a published process page (and the
transparency page) is served by nginx from its cache to anonymous readers, revalidated
with a 304 from Consensus when its freshness runs out, and never shared with a logged-in
reader (a session cookie passes through). Real gunicorn, real nginx; skips without nginx
(fails under CONSENSUS_REQUIRE_TOOLS=1)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
FRESH_SECONDS = 2

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/client_temp;
    proxy_temp_path {tmp}/proxy_temp;
    fastcgi_temp_path {tmp}/fastcgi_temp;
    uwsgi_temp_path {tmp}/uwsgi_temp;
    scgi_temp_path {tmp}/scgi_temp;
    proxy_cache_path {tmp}/cache keys_zone=consensus_public:10m max_size=100m;
    map $http_cookie $consensus_session {{
        default "";
        "~(^|;\\s*)(__Host-)?session=" 1;
    }}
    server {{
        listen 127.0.0.1:{port};
        location ~ ^/(public/|transparency$) {{
            proxy_cache consensus_public;
            proxy_cache_key "$scheme$host$request_uri|$cookie_consensus_locale";
            proxy_cache_bypass $consensus_session;
            proxy_no_cache $consensus_session;
            proxy_ignore_headers Vary;
            proxy_cache_revalidate on;
            proxy_cache_lock on;
            proxy_cache_use_stale updating error timeout;
            add_header X-Cache-Status $upstream_cache_status always;
            proxy_set_header Host $host;
            proxy_pass http://127.0.0.1:{app_port};
        }}
        location / {{
            proxy_set_header Host $host;
            proxy_pass http://127.0.0.1:{app_port};
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


@pytest.mark.slow
def test_a_published_page_is_served_from_nginx_cache_and_revalidated(tmp_path: Path) -> None:
    require_tool("nginx")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_")}
    database = tmp_path / "db.sqlite"
    env.update(
        {
            "CONSENSUS_INSTANCE_PATH": str(tmp_path / "instance"),
            "CONSENSUS_DATABASE_URL": f"sqlite:///{database}",
            "CONSENSUS_ENV": "development",
            "CONSENSUS_PUBLIC_CACHE_SECONDS": str(FRESH_SECONDS),
        }
    )
    flask = [sys.executable, "-m", "flask", "--app", "consensus"]
    for command in (["db", "upgrade"], ["demo", "--password", "public-cache-test-1"]):
        subprocess.run(  # noqa: S603 - our own commands
            [*flask, *command], cwd=ROOT, env=env, check=True, capture_output=True, timeout=600
        )
    with sqlite3.connect(database) as db:
        (slug,) = db.execute(
            "SELECT slug FROM process WHERE published_at IS NOT NULL ORDER BY id LIMIT 1"
        ).fetchone()
    app_port, port = _free_port(), _free_port()
    gunicorn = subprocess.Popen(  # noqa: S603 - fixed arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{app_port}",
            "--access-logfile",
            str(tmp_path / "gunicorn-access.log"),
            "consensus.wsgi:app",
        ],
        cwd=ROOT,
        env=env,
    )
    conf = tmp_path / "nginx.conf"
    # As root, nginx's workers would run as nobody, who cannot enter pytest's private
    # temporary directory or write the cache there: keep them root for this throwaway run.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(user + NGINX_CONF.format(tmp=tmp_path, port=port, app_port=app_port))
    nginx = subprocess.Popen(  # noqa: S603 - fixed arguments
        ["nginx", "-c", str(conf), "-p", f"{tmp_path}/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(app_port, gunicorn)
        _wait_for(port, nginx)
        url = f"http://127.0.0.1:{port}/public/{slug}"

        first = requests.get(url, timeout=60)
        assert first.status_code == 200, first.text[:500]
        assert first.headers["X-Cache-Status"] == "MISS"
        assert "Set-Cookie" not in first.headers
        assert first.headers["Cache-Control"] == f"public, max-age={FRESH_SECONDS}"

        # Many anonymous readers at once: nginx answers from its cache, Consensus sees none.
        def fetch(_: int) -> tuple[int, str]:
            answer = requests.get(url, timeout=60)
            return answer.status_code, answer.headers.get("X-Cache-Status", "")

        log = tmp_path / "gunicorn-access.log"
        deadline = time.monotonic() + 10
        while log.read_text().count(f"/public/{slug} ") < 1:  # the MISS's line, written late
            assert time.monotonic() < deadline, "the first request is not in the access log"
            time.sleep(0.2)
        before = log.read_text().count(f"/public/{slug} ")
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(fetch, range(400)))
        seconds = time.monotonic() - started
        time.sleep(0.5)  # any line of a request that did reach Consensus is written by now
        reached = log.read_text().count(f"/public/{slug} ")
        hits = sum(1 for status, cache in outcomes if status == 200 and cache == "HIT")
        if seconds < FRESH_SECONDS:
            assert hits == 400 and reached == before, (outcomes[:5], reached - before)
        else:  # a slow machine: the entry expired on the way, one revalidation per expiry
            assert hits >= 300 and reached - before <= seconds / FRESH_SECONDS + 2
        print(f"400 cached reads in {seconds:.2f} s ({400 / seconds:,.0f}/s through nginx)")

        # A logged-in reader (session cookie) never gets the shared copy.
        private = requests.get(url, cookies={"session": "someone"}, timeout=60)
        assert private.headers["X-Cache-Status"] == "BYPASS"

        # Freshness over: nginx asks Consensus again with the validator; nothing changed,
        # so Consensus answers 304 and nginx serves its copy.
        time.sleep(FRESH_SECONDS + 1)
        again = requests.get(url, timeout=60)
        assert again.status_code == 200 and again.headers["X-Cache-Status"] == "REVALIDATED"
        assert again.content == first.content
        # (gunicorn writes its access line after the answer is out: wait for it)
        deadline = time.monotonic() + 10
        while '" 304 ' not in (tmp_path / "gunicorn-access.log").read_text():
            assert time.monotonic() < deadline, "Consensus did not answer nginx with 304"
            time.sleep(0.2)

        # The transparency page is a shared page too (the same location).
        transparency = f"http://127.0.0.1:{port}/transparency"
        first = requests.get(transparency, timeout=60)
        assert first.status_code == 200 and "Set-Cookie" not in first.headers
        assert first.headers["X-Cache-Status"] == "MISS"
        assert requests.get(transparency, timeout=60).headers["X-Cache-Status"] == "HIT"
    finally:
        nginx.terminate()
        gunicorn.terminate()
        for process in (nginx, gunicorn):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
