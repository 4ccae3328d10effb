"""Every page a role may open can be reached by following links from that role's start
page (keyboard and screen-reader users navigate by links too), or is listed below with the
way people do reach it (an e-mail, a calendar app, a download someone was given).

The roles and what each may open come from the authorization matrix: a GET route whose
entry says 200 for a role is a page that role may open."""

from __future__ import annotations

import contextlib
import re
from collections import deque
from html import unescape
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.exceptions import HTTPException

from consensus.extensions import db
from consensus.services import positions as position_service
from tests.web.matrix_world import build_matrix_world
from tests.web.test_authorization_matrix import COLUMNS, MATRIX

# Pages reached another way than by a link in the application: endpoint -> how.
REACHED_OTHERWISE: dict[str, str] = {
    "static": "style sheets, scripts and images the pages load",
    "wellknown.security_txt": "/.well-known/security.txt, read by security researchers' tools",
    "auth.reset_password": "the link in the password-reset e-mail",
    "calendar.feed": "subscribed to by a calendar app, at the address calendar.settings shows",
    "notifications.unsubscribe": "the one-click address in an e-mail's List-Unsubscribe header",
    "audit.verifier_script": "fetched with the curl command the transparency page shows",
    # Linked once the process has come that far (the matrix world has an open consultation):
    "endorsements.endorsement_history": "“See the whole history” on an endorsement round page "
    "once the round has more stances than the page shows (tests/web/test_endorsements.py)",
    "signing.public_signatures": "the signing round page and the round links, once the "
    "process is published (tests/web/test_signing_web.py)",
    "signing.certificate_revocation_list": "the CRL distribution point named in every "
    "certificate the platform CA issues; fetched by PDF validators (docs/signing.md)",
    "public.retally_script": "a download on every published outcome page (test_public.py)",
    "ops.healthz": "asked by load balancers and container health checks (docs/operations.md)",
    "ops.readyz": "asked by load balancers and container health checks (docs/operations.md)",
    "ops.metrics": "scraped by Prometheus with its bearer token (docs/operations.md)",
}

# Pages a role may open but has no reason to look for: (role, endpoint) -> why.
NOT_FOR_THIS_ROLE: dict[tuple[str, str], str] = {
    **{
        (role, "auth.forgot_password"): "linked from the login page; logged in, one changes "
        "the password on the account page"
        for role in ("observer", "official", "representative", "facilitator", "admin")
    },
    **{
        (role, "audit.my_organisations"): "an organisation's audit trail is for its members; "
        "to someone without a membership the page only says there is none"
        for role in ("facilitator", "admin")
    },
}

HREF = re.compile(r'href="([^"]+)"')
MAX_PAGES = 400
MAX_PER_ENDPOINT = 6


def _may_open(role: str) -> set[str]:
    column = COLUMNS.index(role)
    return {
        endpoint
        for endpoint, row in MATRIX.items()
        if "GET" in row and row["GET"].split()[column] == "200"
    }


def _crawl(app: Flask, client) -> set[str]:
    """Endpoints of every same-site link on every page reachable from the start page."""
    adapter = app.url_map.bind("localhost")
    seen_urls: set[str] = set()
    per_endpoint: dict[str, int] = {}
    reached: set[str] = set()
    queue = deque(["/"])
    pages = 0
    while queue and pages < MAX_PAGES:
        url = queue.popleft()
        response = client.get(url, follow_redirects=True)
        pages += 1
        if response.request.path != urlsplit(url).path:  # followed a redirect
            with contextlib.suppress(HTTPException):
                reached.add(adapter.match(response.request.path, method="GET")[0])
        if response.status_code != 200 or "text/html" not in response.content_type:
            continue
        for href in HREF.findall(response.get_data(as_text=True)):
            parts = urlsplit(unescape(href))
            if parts.scheme or parts.netloc or not parts.path.startswith("/"):
                continue
            try:
                endpoint, _args = adapter.match(parts.path, method="GET")
            except HTTPException:
                continue
            reached.add(endpoint)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if target in seen_urls or endpoint == "static":
                continue
            seen_urls.add(target)
            if per_endpoint.get(endpoint, 0) < MAX_PER_ENDPOINT:
                per_endpoint[endpoint] = per_endpoint.get(endpoint, 0) + 1
                queue.append(target)
    return reached


def test_every_page_a_role_may_open_is_linked_from_its_start_page(app):
    world = build_matrix_world()
    # A second version (the diff is linked) and an edited comment (its history is linked).
    position_service.create_version(
        world.position,
        world.process,
        actor=world.users["facilitator"],
        body=world.position.versions[0].body + "\nEen alinea erbij.\n",
        change_summary="Erbij.",
    )
    position_service.edit_comment(world.comment, actor=world.users["official"], body="Eens!")
    db.session.commit()
    problems = []
    for role in COLUMNS:
        if role == "other_representative":
            continue  # the same pages as a representative, of an organisation outside
        client = world.client_for(app, role)
        reached = _crawl(app, client)
        unreached = sorted(
            endpoint
            for endpoint in _may_open(role) - reached - set(REACHED_OTHERWISE)
            if (role, endpoint) not in NOT_FOR_THIS_ROLE
        )
        problems += [f"{role}: {endpoint}" for endpoint in unreached]
    assert not problems, "no link leads to:\n" + "\n".join(problems)


def test_the_exceptions_are_real_routes(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(REACHED_OTHERWISE) <= endpoints
    assert {endpoint for _role, endpoint in NOT_FOR_THIS_ROLE} <= endpoints
