"""Behind a reverse proxy: who the client really is, and which address is ours.

WSGI middleware around the Flask app, set up in create_app():

- **Client address.** With CONSENSUS_TRUSTED_PROXIES=N (the number of proxies in front that
  append to X-Forwarded-For), werkzeug's ProxyFix takes the N-th address from the right as
  REMOTE_ADDR and the scheme from X-Forwarded-Proto, so the rate limiter, the audit trail and
  the session list see the real client. X-Forwarded-Host and -Prefix are never trusted: the
  base URL decides those. With N=0 (the default) the headers are ignored, since any client
  can send them.
- **Base URL.** With CONSENSUS_BASE_URL set, a request that names another host (Host header)
  gets a plain 400 before the app sees it, and every request is seen as addressed to the base
  URL (scheme, host and port, and its path as the mount point when the server did not set
  SCRIPT_NAME), so `url_for(..., _external=True)` can only build links to us: a forged Host
  header cannot put another site into a password-reset mail. The probes (/healthz, /readyz,
  /metrics) answer whatever the Host header says: a load balancer asks each instance by its
  own address. Without a base URL
  (development), links follow the request's Host header.

Both read the settings per request, so a test can change them on a running app.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

log = logging.getLogger("consensus.web.proxy")

UNKNOWN_HOST = (
    b"400 Bad Request\n\n"
    b"Dit adres hoort niet bij deze site. / This host name does not belong to this site.\n"
)


def _hostname(host: str) -> str | None:
    """The name part of a Host header value ("Example.org:443" -> "example.org")."""
    try:
        return urlsplit("//" + host).hostname
    except ValueError:
        return None


# Load balancers and Prometheus reach each instance by its own address (Host: 10.0.0.11:8000),
# not by the public name. These answers build no links and show nothing of anyone's, so they
# are served whatever the Host header says (consensus.web.ops).
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def _is_probe(environ: WSGIEnvironment, prefix: str) -> bool:
    path = str(environ.get("PATH_INFO") or "")
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    return environ.get("REQUEST_METHOD") in {"GET", "HEAD"} and path in PROBES


class PublicAddress:
    """The WSGI app as the public sees it: real client address, our host only."""

    def __init__(self, app: Flask) -> None:
        self.flask = app
        self.inner: WSGIApplication = app.wsgi_app
        self._proxy_fixes: dict[int, ProxyFix] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        hops = int(self.flask.config.get("TRUSTED_PROXIES") or 0)
        if hops <= 0:
            return self._as_addressed_to_us(environ, start_response)
        fix = self._proxy_fixes.get(hops)
        if fix is None:
            fix = self._proxy_fixes[hops] = ProxyFix(
                self._as_addressed_to_us, x_for=hops, x_proto=hops, x_host=0, x_port=0
            )
        return fix(environ, start_response)

    def _as_addressed_to_us(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        base_url = str(self.flask.config.get("BASE_URL") or "")
        if not base_url:
            return self.inner(environ, start_response)
        base = urlsplit(base_url)
        asked = environ.get("HTTP_HOST") or ""
        if _hostname(asked) != base.hostname and not _is_probe(environ, base.path):
            log.info("request for an unknown host refused: %r", asked[:100])
            start_response(
                "400 Bad Request",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(UNKNOWN_HOST))),
                    ("Cache-Control", "no-store"),
                    ("X-Content-Type-Options", "nosniff"),
                ],
            )
            return [UNKNOWN_HOST]
        environ["HTTP_HOST"] = base.netloc
        environ["wsgi.url_scheme"] = base.scheme
        prefix = base.path
        if prefix and not environ.get("SCRIPT_NAME"):
            # Mounted under a path: the proxy passed it on (/consensus/about) or stripped it
            # (/about); either way the app is at `prefix` and its links must say so.
            path = environ.get("PATH_INFO", "")
            if path == prefix or path.startswith(prefix + "/"):
                environ["PATH_INFO"] = path[len(prefix) :]
            environ["SCRIPT_NAME"] = prefix
        return self.inner(environ, start_response)


def init_app(app: Flask) -> None:
    app.wsgi_app = PublicAddress(app)  # type: ignore[method-assign]
