"""Property-based tests of the REST API against its own served OpenAPI document
(schemathesis, in-process through the WSGI app): for generated requests to every
operation — with a write token of an official, to the addresses of a real process — no
answer is a server error, every status and content type is documented, and every body and
header matches its schema. Negative data (schemathesis' own mutations) must be refused.

A failure prints the request to reproduce it."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from consensus.extensions import db
from consensus.models import Visibility
from consensus.services import processes
from tests.api_support import bearer, make_token
from tests.web.matrix_world import build_matrix_world

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


@pytest.fixture
def api_world(app):  # type: ignore[no-untyped-def]
    world = build_matrix_world()
    # Published, so open data and anonymous reading answer too.
    world.process.visibility = Visibility.PUBLISHED
    processes.schedule_publication(world.process, actor=world.users["facilitator"], at=None)
    db.session.commit()
    app.config["API_RATE_LIMIT"] = "100000/minute"
    values = {
        "slug": world.process.slug,
        "position_id": world.position.id,
        "number": 1,
        "amendment_number": world.amendment.number,
        "round_id": world.round.id,
        "seq": world.extra["participant_event_seq"],
    }
    return world, values, make_token(world.users["official"], scopes="read write")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_its_own_document(app, api_world, mode):  # type: ignore[no-untyped-def]
    """Every operation of the served document, property-based: positive data (valid by the
    schema) and negative data (schemathesis' mutations, which must be refused)."""
    world, values, secret = api_world
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    failures: list[str] = []
    tried: list[str] = []
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        fixed = {name: values[name] for name in names if name in values}
        if "/organisations/" in operation.path:
            fixed["slug"] = world.participant.slug
        mutable = list(operation.query) or list(operation.body) or len(fixed) < len(names)
        if mode == GenerationMode.NEGATIVE and not mutable:
            continue  # nothing left to spoil: the addresses are the world's own
        tried.append(operation.label)

        @given(case=operation.as_strategy(mode, path_parameters=fixed or None))
        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
        def check(case):  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=bearer(secret), checks=CHECKS)

        try:
            check()
        except Exception as error:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert not failures, "\n\n".join(failures)
    assert len(tried) >= (25 if mode == GenerationMode.POSITIVE else 8), tried
