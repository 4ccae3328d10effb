"""A real OpenID provider for the tests: npm's `oidc-provider` (tests/oidc/provider.mjs,
installed by `.ci/run` with `npm ci`) on loopback, behind a small HTTP proxy of ours that can
tamper with the ID token on its way from the token endpoint (re-signed with the provider's
own key, or forged with another), as a malicious network or provider would."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.tools import require_tool

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "consensus-test"
CLIENT_SECRET = "a client secret of the test provider"  # noqa: S105 - test value
CALLBACK = "http://localhost/login/oidc/callback"
AFTER_LOGOUT = "http://localhost/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_provider() -> str:
    node = require_tool("node")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        message = "oidc-provider is not installed: run `npm ci` in tests/oidc (as .ci/run does)"
        if os.environ.get("CONSENSUS_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return node


@dataclass
class Tamper:
    """What the proxy does to the next token responses (None: nothing)."""

    mode: str | None = None
    key: RSAKey | None = None
    other_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, private=True))

    def apply(self, body: bytes) -> bytes:
        if self.mode is None or self.key is None:
            return body
        answer = json.loads(body)
        token = jwt.decode(answer["id_token"], self.key)
        claims, header = dict(token.claims), dict(token.header)
        now = int(time.time())
        key = self.key
        if self.mode == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif self.mode == "audience":
            claims["aud"] = "another-relying-party"
        elif self.mode == "nonce":
            claims["nonce"] = "a nonce of another login"
        elif self.mode == "issuer":
            claims["iss"] = "https://evil.example"
        elif self.mode == "forged":
            key = self.other_key  # same kid, another key: the signature cannot verify
        elif self.mode == "unsigned":
            import base64

            def part(value: dict[str, Any]) -> str:
                raw = json.dumps(value).encode()
                return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

            answer["id_token"] = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
            return json.dumps(answer).encode()
        answer["id_token"] = jwt.encode(header, claims, key)
        return json.dumps(answer).encode()


_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True
    upstream: int
    tamper: Tamper


class _Handler(BaseHTTPRequestHandler):
    server: _Proxy
    protocol_version = "HTTP/1.1"  # keep-alive, as a browser's connection pool expects

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        connection = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except OSError:
            self.send_error(502)
            return
        if (
            self.command == "POST"
            and self.path.split("?")[0] == "/token"
            and response.status == 200
        ):
            data = self.server.tamper.apply(data)
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in {
                "content-length",
                "transfer-encoding",
                "connection",
                "keep-alive",
            }:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()

    do_GET = _forward
    do_POST = _forward


@dataclass
class RealProvider:
    issuer: str
    tamper: Tamper

    def log_in(
        self, authorize_url: str, login: str, *, browser: requests.Session | None = None
    ) -> str:
        """Log in on the provider's (development) pages as a person would: login, consent.
        Returns the URL the provider sends the browser back to (our callback)."""
        return follow(browser or requests.Session(), authorize_url, login)


def follow(browser: requests.Session, url: str, login: str = "", until: str = CALLBACK) -> str:
    """Follow the provider's redirects and forms until it sends the browser to `until`."""
    method, data = "GET", None
    for _ in range(20):
        response = browser.request(method, url, data=data, allow_redirects=False, timeout=10)
        if response.status_code in (302, 303):
            url, method, data = urljoin(url, response.headers["Location"]), "GET", None
            if url.startswith(until):
                return url
            continue
        page = response.text
        form = re.search(r'<form[^>]*action="([^"]+)"', page)
        if response.status_code != 200 or form is None:
            raise AssertionError(f"the provider answered {response.status_code}: {page[:500]}")
        fields = dict(
            re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page)
        )
        if 'name="login"' in page:
            fields.update(prompt="login", login=login, password="any")
        elif 'name="logout"' in page:
            fields.update(logout="yes")
        else:
            fields.update(prompt="consent")
        url, method, data = urljoin(url, unescape(form.group(1))), "POST", fields
    raise AssertionError("the provider kept redirecting")


@contextmanager
def real_provider(tmp_dir: Path, *, site: str = "http://localhost") -> Iterator[RealProvider]:
    """oidc-provider on one loopback port, our proxy (the issuer) on another; its one client
    is us at `site` (the test client's http://localhost, or a live server's address)."""
    node = require_provider()
    key = RSAKey.generate_key(
        2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"}, private=True
    )
    jwks_path = tmp_dir / "provider-jwks.json"
    jwks_path.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    upstream, front = free_port(), free_port()
    issuer = f"http://127.0.0.1:{front}"
    proxy = _Proxy(("127.0.0.1", front), _Handler)
    proxy.upstream = upstream
    proxy.tamper = Tamper(key=key)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "OIDC_PORT": str(upstream),
        "OIDC_ISSUER": issuer,
        "OIDC_JWKS": str(jwks_path),
        "OIDC_CLIENTS": json.dumps(
            [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [f"{site}/login/oidc/callback"],
                    "post_logout_redirect_uris": [f"{site}/"],
                }
            ]
        ),
    }
    process = subprocess.Popen(  # noqa: S603 - our own script
        [node, str(PROVIDER_DIR / "provider.mjs")],
        cwd=PROVIDER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(
                    f"{issuer}/.well-known/openid-configuration", timeout=1
                ).raise_for_status()
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"oidc-provider did not start: {output}") from None
                time.sleep(0.1)
        yield RealProvider(issuer=issuer, tamper=proxy.tamper)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
        if process.stdout:
            process.stdout.close()
        proxy.shutdown()
        proxy.server_close()
