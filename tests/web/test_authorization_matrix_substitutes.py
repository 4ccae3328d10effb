"""The authorization matrix for substitutes: three more kinds of user, on every route of
tests/web/test_authorization_matrix.py.

All three are observers of VNG (the participant), so on their own they may do what the
observer column says. Each has a delegation of VNG's mandate:

- "substitute": active, from VNG's representative: holds the mandate, so it differs from the
  observer exactly where the mandate counts (SUBSTITUTE_DIFFERS);
- "expired_substitute": the delegation's period has ended;
- "orphaned_substitute": active, but its delegator is no longer VNG's representative (a
  mandate cannot outlive its source).

The last two must get exactly what the observer gets, everywhere. The matrix's own columns
stay as they are: a substitute is an observer plus, at most, a mandate.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from consensus.extensions import db
from consensus.models import Delegation, MembershipRole, utcnow
from tests.factories import make_membership, make_user
from tests.web.matrix_world import MatrixWorld, build_matrix_world
from tests.web.test_authorization_matrix import (
    COLUMNS,
    MATRIX,
    POST_DATA,
    _matches,
    _url,
)

KINDS = ("expired_substitute", "orphaned_substitute", "substitute")

# Where the active substitute holds VNG's mandate and the observer does not: the status the
# substitute gets instead of the observer's.
SUBSTITUTE_DIFFERS: dict[tuple[str, str], str] = {
    # Signing keys are for whoever holds the mandate (a substitute signs in the round too).
    ("signing.keys", "GET"): "200",
    ("signing.enrol_key", "POST"): "400",
    ("signing.revoke_key", "POST"): "404",
    ("signing.rotate_key", "POST"): "404",
    # Delegation 1 is the substitute's own: they may decline it.
    ("endorsements.revoke", "POST"): "R",
}


def build_substitute_world() -> MatrixWorld:
    world = build_matrix_world()
    vng = world.participant
    representative = world.users["representative"]
    former = make_user("former.representative@example.org", name="former")
    former_membership = make_membership(former, vng, MembershipRole.REPRESENTATIVE)
    now = utcnow()
    delegators = {
        "substitute": (representative, now - timedelta(minutes=5), now + timedelta(days=3)),
        "expired_substitute": (representative, now - timedelta(days=3), now - timedelta(days=1)),
        "orphaned_substitute": (former, now - timedelta(minutes=5), now + timedelta(days=3)),
    }
    for kind in ("substitute", "expired_substitute", "orphaned_substitute"):  # ids 1, 2, 3
        person = make_user(f"{kind}@example.org", name=kind)
        make_membership(person, vng, MembershipRole.OBSERVER)
        delegator, start, end = delegators[kind]
        db.session.add(
            Delegation(
                organisation_id=vng.id,
                delegator_id=delegator.id,
                delegate_id=person.id,
                valid_from=start,
                valid_until=end,
            )
        )
        db.session.flush()
        world.users[kind] = person
    former_membership.valid_until = now - timedelta(seconds=1)
    db.session.commit()
    return world


def _expected(endpoint: str, method: str, kind: str) -> str:
    observer = dict(zip(COLUMNS, MATRIX[endpoint][method].split(), strict=True))["observer"]
    if kind == "substitute":
        return SUBSTITUTE_DIFFERS.get((endpoint, method), observer)
    return observer


def _check(app: Flask, world: MatrixWorld, endpoint: str, method: str) -> list[str]:
    url = _url(app, world, endpoint)
    wrong = []
    for kind in KINDS:
        response = world.client_for(app, kind).open(
            url, method=method, data=POST_DATA.get(endpoint, {})
        )
        response.close()
        location = response.headers.get("Location", "")
        expected = _expected(endpoint, method, kind)
        if not _matches(expected, response.status_code, location):
            wrong.append(
                f"{method} {url} as {kind}: expected {expected}, "
                f"got {response.status_code} {location}".rstrip()
            )
    return wrong


def test_the_differences_name_real_routes():
    assert all(
        endpoint in MATRIX and method in MATRIX[endpoint] for endpoint, method in SUBSTITUTE_DIFFERS
    )


def test_substitutes_for_reading(app):
    world = build_substitute_world()
    wrong = [
        problem
        for endpoint, row in MATRIX.items()
        if "GET" in row
        for problem in _check(app, world, endpoint, "GET")
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("endpoint", "method"),
    [(endpoint, method) for endpoint, row in MATRIX.items() for method in row if method != "GET"],
)
def test_substitutes_for_changing(app, endpoint, method):
    world = build_substitute_world()
    wrong = _check(app, world, endpoint, method)
    assert not wrong, "\n".join(wrong)
