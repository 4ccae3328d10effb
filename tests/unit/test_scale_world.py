"""The scale world (issue 9): deterministic, bulk-written, and its audit log verifies."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import func, select

from consensus.audit import verify as audit_verify
from consensus.extensions import db
from consensus.models import AuditEvent, Base, Organisation, OrganisationKind, Process, Stance
from consensus.worlds import scale
from tests.conftest import _empty_all_tables

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2NhbGU$c2NhbGUtd29ybGQtdGVzdC1oYXNo"


def _snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    conn = db.session.connection()
    content = {}
    for table in Base.metadata.sorted_tables:
        rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
        content[table.name] = [tuple(row) for row in rows]
    return content


def test_tiny_scale_world_is_deterministic_and_verifies(app: Flask) -> None:
    import gc

    counts = scale.build_scale_world(0.01, password_hash=HASH)
    assert gc.isenabled()  # the build switches the collector off only while it runs
    db.session.commit()
    assert counts["organisation"] >= 5
    assert counts["process"] >= 4
    assert counts["stance"] > 0 and counts["comment"] > 0 and counts["amendment"] > 0
    assert counts["audit_events"] == db.session.execute(select(func.count(AuditEvent.seq))).scalar()
    assert scale.scale_world_exists()

    report = audit_verify.verify_log(workers=0)
    assert report.ok, [p.message for p in report.problems]
    assert report.size == counts["audit_events"]

    first = _snapshot()
    db.session.remove()
    _empty_all_tables()
    scale.build_scale_world(0.01, password_hash=HASH)
    db.session.commit()
    second = _snapshot()
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], f"table {name} differs between two runs"


def test_scale_world_has_what_the_benchmark_needs(app: Flask) -> None:
    scale.build_scale_world(0.02, password_hash=HASH)
    db.session.commit()
    organisations = db.session.execute(select(func.count(Organisation.id))).scalar_one()
    national = db.session.execute(
        select(Process).where(Process.slug == f"{scale.SLUG_PREFIX}-traject-0001")
    ).scalar_one()
    published = db.session.execute(
        select(Process).where(Process.slug == f"{scale.SLUG_PREFIX}-traject-0002")
    ).scalar_one()
    # Every organisation takes part in the two national processes.
    assert len(national.participant_ids) == organisations
    assert national.open_round() is not None
    assert published.is_published
    # One current stance per organisation and round (the partial unique index holds).
    current = db.session.execute(
        select(Stance.round_id, Stance.organisation_id, func.count())
        .where(Stance.superseded_at.is_(None))
        .group_by(Stance.round_id, Stance.organisation_id)
        .having(func.count() > 1)
    ).all()
    assert current == []


def test_building_on_top_of_an_existing_log_keeps_it_valid(app: Flask) -> None:
    from consensus.services import organisations as organisation_service

    organisation_service.create_organisation(
        actor=None, name="Vooraf", short_name="Vooraf", slug="vooraf", kind=OrganisationKind.OTHER
    )
    db.session.commit()
    scale.build_scale_world(0.01, password_hash=HASH)
    db.session.commit()
    assert audit_verify.verify_log(workers=0).ok
