"""The authorization matrix of the REST API: every route under /api/v1, for every kind of
user of the matrix world, with a write token and with a read token (and without a token).

The expected statuses are those of a write token; a read token gets the same for reading
and 403 for every change (its scope), before anything is looked up. Without a token a
request is anonymous: a participants-only process is not there (404), and a change that
would need a person is 401 where the resource is visible. Every refusal is
application/problem+json; no answer is a 500.

Adding an API route? Add a line to API_MATRIX, or `test_every_api_route_is_in_the_matrix`
fails.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, url_for
from sqlalchemy import func, select

from consensus.extensions import db
from consensus.models import AuditEvent
from tests.api_support import bearer, make_token
from tests.web.matrix_world import ORDER, MatrixWorld, build_matrix_world

COLUMNS = (
    "anonymous",
    "observer",
    "official",
    "representative",
    "other_representative",
    "facilitator",
    "admin",
)

_SEEN = "404 200 200 200 404 200 200"  # participants, facilitators, admins; no leak
# fmt: off
API_MATRIX: dict[str, dict[str, str]] = {
    # endpoint                         method: anon obs  off  rep  other facil admin
    "api-docs.openapi_json":           {"GET": "200 200 200 200 200 200 200"},
    "api_me.me":                       {"GET": "401 200 200 200 200 200 200"},
    "api_processes.processes":         {"GET": "200 200 200 200 200 200 200"},
    "api_processes.process":           {"GET": _SEEN},
    "api_positions.positions":         {"GET": _SEEN},
    "api_positions.position":          {"GET": _SEEN},
    "api_positions.version":           {"GET": _SEEN},
    "api_positions.version_markdown":  {"GET": _SEEN},
    "api_positions.comments":          {"GET": _SEEN},
    "api_positions.comment_new":       {"POST": "404 403 201 201 404 403 403"},
    "api_positions.amendments":        {"GET": _SEEN},
    "api_positions.amendment":         {"GET": _SEEN},
    "api_positions.amendment_new":     {"POST": "404 403 201 201 404 403 403"},
    # the official withdraws the official's amendment; afterwards it is no longer pending
    "api_positions.amendment_withdraw": {"POST": "404 403 200 403 404 403 403"},
    "api_positions.disposition":       {"GET": _SEEN},
    # the endorsement round has not opened: nobody may cast yet (the gate's 403)
    "api_endorsements.stances":        {"GET": _SEEN},
    "api_endorsements.cast":           {"POST": "404 403 403 403 404 403 403"},
    # no clearance round in this world
    "api_endorsements.clearances":     {"GET": "404 404 404 404 404 404 404"},
    "api_endorsements.clear":          {"POST": "404 404 404 404 404 404 404"},
    "api_endorsements.outcomes":       {"GET": _SEEN},
    "api_signing.signatures":          {"GET": _SEEN},
    "api_dossier.dossier":             {"GET": _SEEN},
    # open data exists for published processes only
    "api_dossier.open_data":           {"GET": "404 404 404 404 404 404 404"},
    "api_dossier.open_data_stances":   {"GET": "404 404 404 404 404 404 404"},
    "api_dossier.open_data_amendments": {"GET": "404 404 404 404 404 404 404"},
    # an organisation's audit trail: its members and administrators (as the pages)
    "api_audit.audit_events":          {"GET": "401 200 200 200 403 403 200"},
    "api_audit.audit_receipt":         {"GET": "401 200 200 200 403 403 200"},
}
# fmt: on


def _values(world: MatrixWorld) -> dict[str, object]:
    version = world.position.versions[0]
    return {
        "slug": world.process.slug,
        "position_id": world.position.id,
        "number": 1,
        "amendment_number": world.amendment.number,
        "round_id": world.round.id,
        "seq": world.extra["participant_event_seq"],
        "_anchor": version.paragraphs[-1].anchor,
    }


URL_VALUES: dict[str, Callable[[MatrixWorld], dict[str, object]]] = {
    "api_audit.audit_events": lambda w: {"slug": w.participant.slug},
    "api_audit.audit_receipt": lambda w: {"slug": w.participant.slug},
    **{
        f"api_endorsements.{name}": (lambda w: {"round_id": w.extra["endorsement_round"].id})  # type: ignore[attr-defined]
        for name in ("stances", "cast", "clearances", "clear")
    },
}


def _body(endpoint: str, world: MatrixWorld) -> dict[str, object] | None:
    org = world.participant.slug
    anchor = world.position.versions[0].paragraphs[0].anchor
    return {
        "api_positions.comment_new": {"body": "Via de API.", "organisation": org},
        "api_positions.amendment_new": {
            "organisation": org,
            "proposedText": "Een betere zin.",
            "rationale": "Duidelijker.",
            "paragraph": anchor,
        },
        "api_endorsements.cast": {"organisation": org, "kind": "endorse"},
        "api_endorsements.clear": {"organisation": org, "decision": "cleared"},
    }.get(endpoint)


def _api_routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}  # type: ignore[operator]
    }


def _cases() -> list[tuple[str, str]]:
    return [(endpoint, method) for endpoint, row in API_MATRIX.items() for method in row]


def test_every_api_route_is_in_the_matrix(app):
    routes = _api_routes(app)
    listed = set(_cases())
    assert not sorted(routes - listed), f"add to API_MATRIX: {sorted(routes - listed)}"
    assert not sorted(listed - routes), f"no such API route: {sorted(listed - routes)}"


def _url(app: Flask, world: MatrixWorld, endpoint: str) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = _values(world)
    if endpoint in URL_VALUES:
        values.update(URL_VALUES[endpoint](world))
    with app.test_request_context():
        return url_for(endpoint, **{k: values[k] for k in rule.arguments})


def _tokens(world: MatrixWorld, scopes: str) -> dict[str, str | None]:
    return {
        role: (None if role == "anonymous" else make_token(world.users[role], scopes=scopes))
        for role in ORDER
    }


def _check(app, client, world, endpoint, method, scopes, tokens) -> list[str]:  # type: ignore[no-untyped-def]
    url = _url(app, world, endpoint)
    expected = dict(zip(COLUMNS, API_MATRIX[endpoint][method].split(), strict=True))
    wrong = []
    for role in ORDER:
        want = expected[role]
        if scopes == "read" and method != "GET" and role != "anonymous":
            want = "403"
        headers = bearer(tokens[role]) if tokens[role] else {}
        before = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        response = client.open(url, method=method, json=_body(endpoint, world), headers=headers)
        status = response.status_code
        if str(status) != want:
            wrong.append(f"{method} {url} as {role} ({scopes}): expected {want}, got {status}")
        if status >= 400:
            if response.mimetype != "application/problem+json":
                wrong.append(f"{method} {url} as {role}: {status} is not problem+json")
            after = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
            if after != before:
                wrong.append(f"{method} {url} as {role}: refused, but the audit log grew")
        if response.headers.get("API-Version") != "1.0.0":
            wrong.append(f"{method} {url} as {role}: no API-Version header")
    return wrong


@pytest.mark.parametrize("scopes", ["read", "read write"])
def test_api_matrix_for_reading(app, client, scopes):
    world = build_matrix_world()
    tokens = _tokens(world, scopes)
    wrong = [
        problem
        for endpoint, method in _cases()
        if method == "GET"
        for problem in _check(app, client, world, endpoint, method, scopes, tokens)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("scopes", ["read", "read write"])
@pytest.mark.parametrize(("endpoint", "method"), [c for c in _cases() if c[1] != "GET"])
def test_api_matrix_for_changing(app, client, endpoint, method, scopes):
    world = build_matrix_world()
    wrong = _check(app, client, world, endpoint, method, scopes, _tokens(world, scopes))
    assert not wrong, "\n".join(wrong)
