"""Helpers shared by the audit trail tests (not fixtures)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from consensus import audit
from consensus.crypto import merkle
from consensus.extensions import db
from consensus.models import AuditEvent


def add_events(
    count: int,
    *,
    organisation_id: int | None = None,
    action: str = "test.done",
    commit: bool = True,
) -> list[AuditEvent]:
    """`count` events through the real service, with varied (and some non-ASCII) payloads."""
    seqs = [
        audit.record(
            action,
            actor=None,
            object_type="thing",
            object_id=i,
            organisation_id=organisation_id,
            payload={"n": i, "note": "ĳzer “quoted” \\ \n" if i % 3 == 0 else "plain"},
            origin="test",
        )
        for i in range(count)
    ]
    if commit:
        db.session.commit()
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.seq.in_(seqs)).order_by(AuditEvent.seq)
        ).scalars()
    )


def run_sql(statement: str, **params: Any) -> None:
    """Raw, portable SQL against the test database, committed: how an intruder edits rows."""
    db.session.execute(text(statement), params)
    db.session.commit()
    db.session.expire_all()


def entries() -> list[bytes]:
    """Canonical entries of all stored events, in order."""
    return [
        audit.event_entry(e)
        for e in db.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    ]


def memory_tree() -> merkle.MemoryTree:
    return merkle.MemoryTree(entries())
