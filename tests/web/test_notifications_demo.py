"""Issue 17's "done when", in the demo world with a real SMTP server: opening a round, a
facilitator's reminder and an approaching deadline each mail exactly the people who must act
(the substitute included), in their language, with links that work."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from consensus.extensions import db
from consensus.models import Process, RoundState, RoundType, User, utcnow
from consensus.notifications import deadlines
from consensus.services import processes
from consensus.worlds import demo
from tests.notification_support import mail_server, text_of
from tests.web.test_notifications import deliver


def _user(email: str) -> User:
    return db.session.execute(select(User).where(User.email == email)).scalar_one()


def _link(message, base: str = "http://localhost") -> str:
    line = next(line for line in text_of(message).splitlines() if line.startswith(base))
    return line.removeprefix(base)


def test_the_demo_world_mails_exactly_the_people_who_must_act(app, runner, login_as):
    with mail_server(app) as smtp:
        assert runner.invoke(args=["demo"]).exit_code == 0
        bzk = _user("representative.bzk@example.org")
        bzk.locale = "en"
        db.session.commit()
        deliver(runner)  # what building the world queued
        smtp.clear()
        reps = {f"representative.{slug}@example.org" for slug in ("vng", "ipo", "uvw", "bzk")}
        substitute = "official.ipo@example.org"  # holds IPO's mandate for a month

        # 1. A round opens (the draft process gets an endorsement round; the facilitator
        #    starts the process and opens it).
        facilitator = _user("facilitator@example.org")
        draft = db.session.execute(
            select(Process).where(Process.slug == demo.DRAFT_SLUG)
        ).scalar_one()
        now = utcnow()
        round_ = processes.add_round(
            draft,
            actor=facilitator,
            type=RoundType.ENDORSEMENT,
            title="Instemming met de verkenning",
            instructions="",
            opens_at=now - timedelta(minutes=1),
            closes_at=now + timedelta(days=10),
        )
        processes.activate_process(draft, actor=facilitator)
        db.session.commit()
        client = login_as(facilitator)
        assert client.post(f"/processes/{draft.slug}/rounds/{round_.id}/open").status_code == 302
        deliver(runner)
        assert smtp.recipients() == sorted(reps | {substitute})
        (english,) = smtp.to("representative.bzk@example.org")
        assert english["Subject"].startswith("Round open:")
        (dutch,) = smtp.to(substitute)
        assert dutch["Subject"].startswith("Ronde open:")
        assert "namens Interprovinciaal Overleg" in text_of(dutch)
        assert login_as(_user(substitute)).get(_link(dutch)).status_code == 200
        smtp.clear()

        # 2. The facilitator's reminder in the open endorsement round, where VNG and UvW
        #    have acted: IPO (its representative and its substitute) and BZK.
        resilience = db.session.execute(
            select(Process).where(Process.slug == demo.ENDORSEMENT_SLUG)
        ).scalar_one()
        open_round = next(r for r in resilience.rounds if r.state == RoundState.OPEN)
        client = login_as(facilitator)
        response = client.post(f"/processes/{resilience.slug}/rounds/{open_round.id}/remind")
        assert response.status_code == 302
        deliver(runner)
        waiting = sorted(
            ["representative.ipo@example.org", substitute, "representative.bzk@example.org"]
        )
        assert smtp.recipients() == waiting
        for message in smtp.messages:
            assert login_as(_user(str(message["To"]))).get(_link(message)).status_code == 200
        smtp.clear()

        # 3. Its deadline approaches (time moved on to three days before it).
        deadlines.warn_deadlines(open_round.closes_at - timedelta(days=2, hours=23))
        db.session.commit()
        deliver(runner)
        about = [m for m in smtp.messages if open_round.title in str(m["Subject"])]
        assert sorted(str(m["To"]) for m in about) == waiting
        assert all(m.get_body(("html",)) is not None for m in about)
        assert all(
            any(p.get_content_type() == "text/calendar" for p in m.iter_attachments())
            for m in about
        )
