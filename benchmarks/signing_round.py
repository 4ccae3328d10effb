"""A signing round for the benchmark's co-sign POST (issue 9).

An organisation signs a round's letter once, so the POST cannot be repeated for a fixed
time like the others: every run of the benchmark adds a new process to the scale world
(through the application's services, with their audit events), made of the benchmark's
voting organisations, whose text they all endorsed, whose keys the platform holds, and
whose signing round is open. `bench.py` then has each organisation's representative sign
exactly once over HTTP, 16 at a time, and reports the latencies.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

ADMIN_EMAIL = "beheer.benchmark@scale.example.org"
LETTER = """Geachte minister,

De gezamenlijke overheden steunen de **nationale digitaliseringsstrategie**.

- Wij vragen structurele financiering.
- Wij vragen één gezamenlijke architectuur.

Wij zien uit naar het bestuurlijk overleg.
"""


def _as_a_changing_request(app: Any) -> Any:
    """Its transactions begin as a form post's do (BEGIN IMMEDIATE on SQLite, in the
    writers' queue), so they wait for the running server's writers instead of failing on
    a snapshot that a worker's commit made stale ("database is locked")."""
    return app.test_request_context("/", method="POST")


def prepare(app: Any, organisation_ids: list[int]) -> tuple[str, list[str]]:
    """The new process's slug and the organisations' slugs, in the order given."""
    from sqlalchemy import func, select

    from consensus import signing
    from consensus.extensions import db
    from consensus.models import (
        KeyCustody,
        Membership,
        MembershipRole,
        Organisation,
        Process,
        RoundType,
        StanceKind,
        User,
        utcnow,
    )
    from consensus.services import accounts, endorsements, positions, processes

    with _as_a_changing_request(app):
        session = db.session
        admin = session.execute(select(User).where(User.email == ADMIN_EMAIL)).scalar_one_or_none()
        if admin is None:
            admin = accounts.create_user(
                actor=None,
                email=ADMIN_EMAIL,
                display_name="Beheer (benchmark)",
                password=None,
                is_admin=True,
                is_facilitator=True,
            )  # no password: it never logs in
            session.commit()
        organisations = [session.get(Organisation, i) for i in organisation_ids]
        runs = session.execute(
            select(func.count(Process.id)).where(Process.title.like("Benchmark ondertekening%"))
        ).scalar_one()
        now = utcnow()
        process = processes.create_process(actor=admin, title=f"Benchmark ondertekening {runs + 1}")
        for organisation in organisations:
            processes.add_participant(process, actor=admin, organisation=organisation)
        for n, (kind, opens, closes) in enumerate(
            (
                (RoundType.ENDORSEMENT, timedelta(hours=1), timedelta(days=1)),
                (RoundType.SIGNING, timedelta(days=2), timedelta(days=4)),
            ),
            start=1,
        ):
            processes.add_round(
                process,
                actor=admin,
                type=kind,
                title=f"Ronde {n}",
                instructions="",
                opens_at=now + opens,
                closes_at=now + closes,
            )
        processes.activate_process(process, actor=admin)
        positions.create_position(
            process,
            actor=admin,
            title="Brief aan de minister",
            body=LETTER,
            subject="Gezamenlijke inbreng op de digitaliseringsstrategie",
            addressee="De minister van Binnenlandse Zaken\nPostbus 20011\n2500 EA Den Haag",
            place="Den Haag",
            reference=f"BENCH-{runs + 1}",
        )
        endorsement, signing_round = process.rounds
        processes.open_round(endorsement, actor=admin)
        session.commit()
        representatives = {
            m.organisation_id: m.user
            for m in session.execute(
                select(Membership).where(
                    Membership.organisation_id.in_(organisation_ids),
                    Membership.role == MembershipRole.REPRESENTATIVE,
                )
            ).scalars()
        }
        for organisation in organisations:
            endorsements.cast_stance(
                endorsement,
                actor=representatives[organisation.id],
                organisation=organisation,
                kind=StanceKind.ENDORSE,
                text="",
            )
        session.commit()
        processes.close_round(endorsement, actor=admin)
        for organisation in organisations:
            if signing.custody_of(organisation) != KeyCustody.PLATFORM_HELD:
                signing.set_custody(organisation, KeyCustody.PLATFORM_HELD, actor=admin)
        session.commit()
        processes.open_round(signing_round, actor=admin)
        session.commit()
        return process.slug, [organisation.slug for organisation in organisations]


def finish(app: Any, slug: str) -> None:
    """Withdraw the process, so it leaves the representatives' dashboards (the pages of the
    next run measure the same world)."""
    from sqlalchemy import select

    from consensus.extensions import db
    from consensus.models import Process, User
    from consensus.services import processes

    with _as_a_changing_request(app):
        session = db.session
        admin = session.execute(select(User).where(User.email == ADMIN_EMAIL)).scalar_one()
        process = session.execute(select(Process).where(Process.slug == slug)).scalar_one()
        processes.withdraw_process(process, actor=admin, reason="Meting afgerond.")
        session.commit()
