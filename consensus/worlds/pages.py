"""The main pages of a scale world: what the benchmark measures and the budget test counts.

`main_pages()` finds them in the world in the current application context: the process
with every organisation and an open endorsement round, the version with the largest
comment thread, the published outcome, the admin lists, the API and the stance POST
(benchmarks/bench.py measures them under load; tests/web/test_query_budgets.py asserts
their SQL statement counts do not grow with the world). One list, so a page added for the
benchmark is also held to the same count at every scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

SCALE_DOMAIN = "scale.example.org"  # consensus.worlds.scale.EMAIL_DOMAIN
ADMIN = "admin@example.org"  # the demo world's administrator (built with the scale world)


@dataclass
class Page:
    name: str
    path: str
    method: str = "GET"
    form: dict[str, str] = field(default_factory=dict)  # POST fields, without csrf_token
    note: str = ""
    # Who looks: "voter" (the 64 rotating representatives), "admin" (the demo world's
    # administrator), "anonymous" (every /public page, and /transparency) or "api" (the
    # first representative's personal access token, no cookie).
    who: str = "voter"
    # A reference row (bench.py): the floor of any page, shown but judged against no target.
    reference: bool = False

    @property
    def anonymous(self) -> bool:
        return self.who == "anonymous" or self.path.startswith("/public")


class NoScaleWorld(LookupError):
    """The database holds no scale world (no process with an open endorsement round)."""


def main_pages() -> tuple[list[Page], dict[str, Any]]:
    """The pages to measure and the people to measure them as, found in the world:
    (pages, {"voters": [(organisation id, e-mail)], "process": slug, "round": id,
    "admin": e-mail})."""
    from sqlalchemy import func, select

    from consensus.extensions import db
    from consensus.models import (
        Amendment,
        Comment,
        Organisation,
        Participation,
        Position,
        Process,
        ProcessTheme,
        Round,
        RoundState,
        RoundType,
        Version,
        Visibility,
    )

    session = db.session
    # The process with the most participants and an open endorsement round.
    participants = (
        select(Participation.process_id, func.count().label("n"))
        .where(Participation.removed_at.is_(None))
        .group_by(Participation.process_id)
        .subquery()
    )
    row = session.execute(
        select(Process, Round, participants.c.n)
        .join(Round, Round.process_id == Process.id)
        .join(participants, participants.c.process_id == Process.id)
        .where(Round.type == RoundType.ENDORSEMENT, Round.state == RoundState.OPEN)
        .order_by(participants.c.n.desc(), Process.id)
        .limit(1)
    ).first()
    if row is None:
        raise NoScaleWorld("No process with an open endorsement round: build with --scale.")
    process, round_, n_participants = row
    # The version with the largest comment thread.
    version_id, n_comments = session.execute(
        select(Comment.version_id, func.count())
        .group_by(Comment.version_id)
        .order_by(func.count().desc(), Comment.version_id)
        .limit(1)
    ).one()
    version = session.get(Version, version_id)
    position = session.get(Position, version.position_id)
    thread_process = session.get(Process, position.process_id)
    diff_position = session.execute(
        select(Version.position_id)
        .join(Position, Position.id == Version.position_id)
        .where(Position.process_id == thread_process.id, Version.number == 2)
        .order_by(Version.position_id)
        .limit(1)
    ).scalar_one()
    published = session.execute(
        select(Process)
        .join(participants, participants.c.process_id == Process.id)
        .where(Process.visibility == Visibility.PUBLISHED, Process.published_at.is_not(None))
        .order_by(participants.c.n.desc(), Process.id)
        .limit(1)
    ).scalar_one()
    # People: representatives of organisations taking part in the open round's process.
    organisations = session.execute(
        select(Organisation.id, Organisation.slug)
        .join(Participation, Participation.organisation_id == Organisation.id)
        .where(
            Participation.process_id == process.id,
            Organisation.slug.like("schaal-gemeente-%"),
        )
        .order_by(Organisation.id)
        .limit(64)
    ).all()
    voters = [
        (org_id, f"representative.{slug.removeprefix('schaal-')}@{SCALE_DOMAIN}")
        for org_id, slug in organisations
    ]
    # The position with the most amendments, in a process the voters take part in, and the
    # consultation round of that process with the most.
    amended_position, n_amendments = session.execute(
        select(Amendment.position_id, func.count())
        .join(Position, Position.id == Amendment.position_id)
        .where(Position.process_id == process.id)
        .group_by(Amendment.position_id)
        .order_by(func.count().desc(), Amendment.position_id)
        .limit(1)
    ).one()
    consultation = session.execute(
        select(Round.id)
        .where(Round.process_id == process.id, Round.type == RoundType.CONSULTATION)
        .order_by(Round.sequence.desc())
        .limit(1)
    ).scalar_one_or_none()
    theme = session.execute(
        select(ProcessTheme.name, func.count())
        .join(Process, Process.id == ProcessTheme.process_id)
        .where(Process.visibility == Visibility.PUBLISHED)
        .group_by(ProcessTheme.name)
        .order_by(func.count().desc(), ProcessTheme.name)
        .limit(1)
    ).first()
    n_published = session.execute(
        select(func.count())
        .select_from(Process)
        .where(Process.visibility == Visibility.PUBLISHED, Process.published_at.is_not(None))
    ).scalar_one()
    slug = process.slug
    voter_org = organisations[0][1]
    pages = [
        Page("dashboard", "/"),
        Page(
            "process page",
            f"/processes/{slug}",
            note=f"{n_participants} participants",
        ),
        Page(
            "version page",
            f"/processes/{thread_process.slug}/positions/{position.id}/versions/{version.number}",
            note=f"{n_comments} comments",
        ),
        Page(
            "diff page",
            f"/processes/{thread_process.slug}/positions/{diff_position}/diff?from=1&to=2",
        ),
        Page(
            "round tally",
            f"/processes/{slug}/rounds/{round_.id}/endorsement",
            note=f"{n_participants} organisations",
        ),
        Page(
            "amendments list",
            f"/processes/{slug}/positions/{amended_position}/amendments",
            note=f"{n_amendments} amendments",
        ),
        *(
            [
                Page(
                    "disposition report",
                    f"/processes/{slug}/positions/rounds/{consultation}/disposition",
                )
            ]
            if consultation is not None
            else []
        ),
        Page("audit trail (org)", f"/audit/{voter_org}", note="a representative's organisation"),
        Page("public index", "/public/", note=f"not logged in; {n_published} published"),
        Page("public index p2", "/public/?page=2", note="not logged in"),
        *(
            [
                Page(
                    "public index theme",
                    f"/public/?{urlencode({'theme': theme[0]})}",
                    note="not logged in",
                )
            ]
            if theme
            else []
        ),
        Page("public outcome", f"/public/{published.slug}", note="not logged in"),
        Page("board download", f"/public/{published.slug}/board.jsonl", note="not logged in"),
        Page("transparency", "/transparency", who="anonymous", note="not logged in"),
        Page("admin users", "/admin/users", who="admin"),
        Page("admin organisations", "/admin/organisations", who="admin"),
        Page("admin audit", "/admin/audit", who="admin"),
        Page("api processes", "/api/v1/processes", who="api", note="personal access token"),
        Page("api process", f"/api/v1/processes/{slug}", who="api"),
        Page(
            "api stances",
            f"/api/v1/processes/{slug}/rounds/{round_.id}/stances",
            who="api",
            note=f"{n_participants} organisations",
        ),
        *(
            [
                Page(
                    "api disposition",
                    f"/api/v1/processes/{slug}/rounds/{consultation}/disposition",
                    who="api",
                )
            ]
            if consultation is not None
            else []
        ),
        Page(
            "cast stance (POST)",
            f"/processes/{slug}/rounds/{round_.id}/stances",
            method="POST",
            form={"kind": "endorse", "text": ""},
            note="organisation per session",
        ),
    ]
    return pages, {
        "voters": voters,
        "process": slug,
        "round": round_.id,
        "admin": ADMIN,
    }
