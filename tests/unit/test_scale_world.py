"""The scale world (issues 9 and 23): deterministic, bulk-written and streamed, its audit log
verifies, and a larger scale is a longer history of the same country."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from consensus.audit import verify as audit_verify
from consensus.extensions import db
from consensus.models import (
    Amendment,
    AuditEvent,
    Base,
    Comment,
    Organisation,
    OrganisationKind,
    Position,
    Process,
    ProcessState,
    Round,
    Stance,
    User,
    Version,
)
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


def test_a_streamed_build_writes_the_same_rows_as_one_in_memory(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scale 10 writes its rows a few processes at a time and sorts its two million audit
    events in runs spilled to files: with tiny buffers, a small world takes those paths
    and must come out identical (same rows, same log, same Merkle nodes) and verify."""
    monkeypatch.setattr(scale, "ROW_BUFFER", 100)
    monkeypatch.setattr(scale, "EVENT_RUN", 150)
    counts = scale.build_scale_world(0.01, password_hash=HASH)
    db.session.commit()
    assert counts["audit_events"] > 5 * 150  # several runs were merged
    report = audit_verify.verify_log(workers=0)
    assert report.ok, [p.message for p in report.problems]
    streamed = _snapshot()
    db.session.remove()
    _empty_all_tables()
    monkeypatch.undo()
    scale.build_scale_world(0.01, password_hash=HASH)
    db.session.commit()
    in_memory = _snapshot()
    for name in in_memory:
        assert streamed[name] == in_memory[name], f"table {name} differs when streamed"


def _country() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    organisations = db.session.execute(
        select(Organisation.slug, Organisation.name, Organisation.kind).order_by(Organisation.id)
    ).all()
    people = db.session.execute(
        select(User.email, User.display_name, User.is_facilitator).order_by(User.id)
    ).all()
    return [tuple(o) for o in organisations], [tuple(p) for p in people]


def _special_shapes() -> dict[str, tuple[int, ...]]:
    """Per special process: participants, rounds, versions, comments, amendments, stances."""
    shapes = {}
    for n in range(1, scale.SPECIAL + 1):
        process = db.session.execute(
            select(Process).where(Process.slug == f"{scale.SLUG_PREFIX}-traject-{n:04d}")
        ).scalar_one()
        versions = select(Version.id).join(Position).where(Position.process_id == process.id)
        shapes[process.slug] = (
            len(process.participant_ids),
            len(process.rounds),
            db.session.execute(select(func.count()).select_from(versions.subquery())).scalar(),
            db.session.execute(
                select(func.count(Comment.id)).where(Comment.version_id.in_(versions))
            ).scalar(),
            db.session.execute(
                select(func.count(Amendment.id)).where(Amendment.version_id.in_(versions))
            ).scalar(),
            db.session.execute(
                select(func.count(Stance.id))
                .join(Round, Round.id == Stance.round_id)
                .where(Round.process_id == process.id)
            ).scalar(),
        )
    return shapes


def test_more_years_are_the_same_country_with_a_longer_history(app: Flask) -> None:
    """Scale N > 1 is N years of the scale-1 country (issue 23): `history` does it in small.
    The same organisations and people (a few more facilitators), N times the processes,
    the earlier years long concluded, the special processes unchanged."""
    one = scale.build_scale_world(0.02, password_hash=HASH)
    db.session.commit()
    country, shapes = _country(), _special_shapes()
    db.session.remove()
    _empty_all_tables()

    four = scale.build_scale_world(0.02, history=4, password_hash=HASH)
    db.session.commit()
    organisations, people = _country()
    assert organisations == country[0]
    extra = people[len(country[1]) :]
    assert people[: len(country[1])] == country[1]
    assert len(extra) == 6 and all(facilitator for _, _, facilitator in extra)
    assert _special_shapes() == shapes
    assert 3.5 * one["process"] <= four["process"] <= 4.5 * one["process"]
    assert four["stance"] > 3 * one["stance"] and four["audit_events"] > 3 * one["audit_events"]
    # Running processes are of the last period; the years before are concluded.
    anchor = scale.DEFAULT_ANCHOR.replace(tzinfo=None)
    started = db.session.execute(select(Process.state, Process.created_at)).all()
    running = [at.replace(tzinfo=None) for state, at in started if state != ProcessState.CONCLUDED]
    assert running and min(running) > anchor - timedelta(days=730)
    oldest = min(at.replace(tzinfo=None) for _, at in started)
    assert oldest < anchor - timedelta(days=3 * 365)
    report = audit_verify.verify_log(workers=0)
    assert report.ok, [p.message for p in report.problems]
