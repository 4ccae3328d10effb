"""The authorization matrix for standing bodies: three more kinds of user on every route of
the bodies blueprint (tests/web/test_authorization_matrix.py has the main columns).

None of the three is a member of any organisation, so what they may do comes from the body
alone:

- "secretary": the secretary of both bodies: runs their meetings (agenda, decisions,
  minutes, forwarding, actions from decisions) but does not set bodies up, and sees no
  process it does not take part in (404, as anyone else);
- "seat_holder" and "seat_substitute": hold and substitute IPO's seat at the official
  body: they see the body, its meetings and its actions, and may change nothing.

An outsider (the matrix's "other_representative", of an organisation without a seat) gets
404 everywhere there; that column is in the main matrix.
"""

from __future__ import annotations

import pytest
from flask import Flask

from consensus.extensions import db
from tests.factories import make_user
from tests.web.matrix_world import MatrixWorld, build_matrix_world
from tests.web.test_authorization_matrix import MATRIX, POST_DATA, _matches, _url

KINDS = ("secretary", "seat_holder", "seat_substitute")

# fmt: off
BODIES: dict[str, dict[str, str]] = {
    # endpoint                        method: secretary holder substitute
    "bodies.index":                   {"GET": "200 200 200"},
    "bodies.new":                     {"GET": "403 403 403", "POST": "403 403 403"},
    "bodies.show":                    {"GET": "200 200 200"},
    "bodies.edit":                    {"GET": "403 403 403", "POST": "403 403 403"},
    "bodies.set_seat":                {"POST": "403 403 403"},
    "bodies.remove_seat":             {"POST": "403 403 403"},
    "bodies.meeting":                 {"GET": "200 200 200"},
    "bodies.meeting_new":             {"GET": "200 403 403", "POST": "200 403 403"},
    "bodies.meeting_edit":            {"GET": "200 403 403", "POST": "200 403 403"},
    "bodies.item_add":                {"POST": "400 403 403"},
    "bodies.item_remove":             {"POST": "R 403 403"},
    "bodies.publish":                 {"POST": "R 403 403"},
    "bodies.decision_add":            {"POST": "400 403 403"},
    "bodies.minutes":                 {"POST": "R 403 403"},
    "bodies.approve_minutes":         {"POST": "R 403 403"},
    "bodies.forward":                 {"POST": "R 403 403"},
    "bodies.action_from_decision":    {"GET": "200 403 403", "POST": "200 403 403"},
    "bodies.cancel_meeting":          {"POST": "400 403 403"},
    "bodies.archive":                 {"POST": "403 403 403"},
    "bodies.document_add":            {"POST": "400 403 403"},
    "bodies.document":                {"GET": "200 200 200"},
    "bodies.actions":                 {"GET": "200 200 200"},
    "bodies.action":                  {"GET": "200 200 200", "POST": "400 403 403"},
    "bodies.follow_up":               {"GET": "404 404 404"},
    "bodies.action_from_process":     {"GET": "404 404 404", "POST": "404 404 404"},
    "bodies.dispatch":                {"POST": "404 404 404"},
    "bodies.reply":                   {"POST": "404 404 404"},
    "bodies.reply_document":          {"GET": "404 404 404"},
    "bodies.public_reply_document":   {"GET": "404 404 404"},
    "bodies.public_feed":             {"GET": "404 404 404"},
}
# fmt: on


def build_bodies_matrix_world() -> MatrixWorld:
    world = build_matrix_world()
    official = world.extra["bodies"].official  # type: ignore[attr-defined]
    seat = next(s for s in official.seats if s.organisation_id == world.other_participant.id)
    holder = make_user("seat.holder@example.org", name="seat_holder")
    substitute = make_user("seat.substitute@example.org", name="seat_substitute")
    seat.seat_holder_id = holder.id
    seat.substitute_id = substitute.id
    db.session.commit()
    world.users["seat_holder"] = holder
    world.users["seat_substitute"] = substitute
    return world


def _check(app: Flask, world: MatrixWorld, endpoint: str, method: str) -> list[str]:
    url = _url(app, world, endpoint)
    expected = dict(zip(KINDS, BODIES[endpoint][method].split(), strict=True))
    wrong = []
    for kind in KINDS:
        response = world.client_for(app, kind).open(
            url, method=method, data=POST_DATA.get(endpoint, {})
        )
        response.close()
        location = response.headers.get("Location", "")
        if not _matches(expected[kind], response.status_code, location):
            wrong.append(
                f"{method} {url} as {kind}: expected {expected[kind]}, "
                f"got {response.status_code} {location}".rstrip()
            )
    return wrong


def test_every_bodies_route_is_here():
    in_matrix = {
        (endpoint, method)
        for endpoint, row in MATRIX.items()
        if endpoint.startswith("bodies.")
        for method in row
    }
    here = {(endpoint, method) for endpoint, row in BODIES.items() for method in row}
    assert in_matrix == here


def test_bodies_for_reading(app):
    world = build_bodies_matrix_world()
    wrong = [
        problem
        for endpoint, row in BODIES.items()
        if "GET" in row
        for problem in _check(app, world, endpoint, "GET")
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("endpoint", "method"),
    [(endpoint, method) for endpoint, row in BODIES.items() for method in row if method != "GET"],
)
def test_bodies_for_changing(app, endpoint, method):
    world = build_bodies_matrix_world()
    wrong = _check(app, world, endpoint, method)
    assert not wrong, "\n".join(wrong)
