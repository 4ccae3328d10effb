"""Notifications of the feedback on the proposed disposition (issue 21 item 4), with a real
SMTP server (aiosmtpd) and the real worker: sending the disposition asks the people who can
answer for each contributing organisation (the rule book's query) — inbox and mail, in their
language, with a link to the page where they agree or contest and the deadline; the clock
(`rounds tick`) reminds the organisations that have not answered once, shortly before the
period ends, and announces the published report once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from consensus.extensions import db
from consensus.models import (
    AuditEvent,
    MembershipRole,
    Notice,
    NotificationKind,
    OutgoingMail,
    utcnow,
)
from consensus.notifications import deadlines, preferences
from consensus.services import drafting
from tests.notification_support import html_of, mail_server, text_of
from tests.web.test_drafting_feedback import _closed_round_with_decisions, _local, report_url
from tests.web.test_positions import build_world

WRITERS = (MembershipRole.OFFICIAL, MembershipRole.REPRESENTATIVE)


@pytest.fixture
def smtp(app):
    with mail_server(app) as server:
        yield server


def deliver(runner) -> str:
    db.session.commit()  # the test's own reads end first (see test_notifications.deliver)
    result = runner.invoke(args=["notifications", "deliver", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def tick(runner) -> str:
    db.session.commit()
    result = runner.invoke(args=["rounds", "tick"])
    assert result.exit_code == 0, result.output
    return result.output


def emails(w, *slugs: str) -> list[str]:
    return sorted(w.person(slug, role).email for slug in slugs for role in WRITERS)


def _sent_world(runner, smtp, *, respond_in=timedelta(days=2), publish_in=timedelta(days=3)):
    """VNG and IPO each proposed an amendment in a closed round, both decided; the mail of
    the round's opening is out of the way."""
    w = build_world()
    a1, a2 = _closed_round_with_decisions(w)
    deliver(runner)
    smtp.clear()
    return w, a1, a2


def test_sending_the_disposition_asks_each_contributing_organisation(
    app, client, login_as, runner, smtp
):
    w, a1, a2 = _sent_world(runner, smtp)
    english = w.person("ipo", MembershipRole.REPRESENTATIVE)
    english.locale = "en"
    db.session.commit()
    now = utcnow()
    login_as(w.facilitator)
    response = client.post(
        report_url(w, "/send"),
        data={
            "respond_by": _local(now + timedelta(days=2)),
            "publish_at": _local(now + timedelta(days=3)),
        },
    )
    assert response.status_code == 302
    review = drafting.review_of(w.process.rounds[0].id)
    assert smtp.messages == []  # written with the change, sent by the worker
    deliver(runner)
    # Exactly the officials and representatives of the two contributing organisations:
    # not their observers, not the outsider, not the facilitator who sent it.
    assert smtp.recipients() == emails(w, "vng", "ipo")
    (dutch,) = smtp.to(w.person("vng").email)
    assert dutch["Subject"] == "Voorgenomen verwerking voor VNG: \u201cProces\u201d"
    body = text_of(dutch)
    assert "heeft de voorgenomen verwerking van de wijzigingsvoorstellen van VNG" in body
    assert "Stem in met elk besluit of betwist het" in body
    # The deep link opens the page where VNG agrees or contests (after logging in), and
    # the same link is 404 for IPO's people.
    vng_link = f"http://localhost{report_url(w, f'/organisations/{w.vng.id}')}"
    assert vng_link in body and f'href="{vng_link}"' in html_of(dutch)
    path = vng_link.removeprefix("http://localhost")
    assert app.test_client().get(path).status_code == 302  # the login page first
    assert login_as(w.person("vng")).get(path).status_code == 200
    assert login_as(w.person("ipo")).get(path).status_code == 404
    # The end of the feedback period is the deadline, also as a calendar entry.
    (attachment,) = list(dutch.iter_attachments())
    event = Calendar.from_ical(attachment.get_content()).walk("VEVENT")[0]
    assert event.decoded("dtstart") == review.respond_by.replace(microsecond=0)
    # In the recipient's own language, with IPO's page.
    (mail,) = smtp.to(english.email)
    assert mail["Subject"] == "Proposed disposition for IPO: \u201cProces\u201d"
    assert mail["Content-Language"] == "en"
    assert "Agree with each decision or contest it with a comment until" in text_of(mail)
    assert report_url(w, f"/organisations/{w.ipo.id}") in text_of(mail)
    # The inbox shows it too, with the same link.
    notice = db.session.execute(
        select(Notice).where(
            Notice.user_id == w.person("vng").id,
            Notice.kind == NotificationKind.DISPOSITION_SENT.value,
        )
    ).scalar_one()
    assert notice.link == path
    assert "voorgenomen verwerking" in login_as(w.person("vng")).get("/messages").text


def test_the_preference_per_kind_is_respected(app, login_as, runner, smtp):
    w, *_ = _sent_world(runner, smtp)
    person = w.person("vng")
    form = {kind.value: "immediate" for kind in preferences.SWITCHABLE}
    form.update(disposition_sent="off", digest_hour="8", time_zone="Europe/Amsterdam")
    page = login_as(person).get("/account/notifications").text
    assert "De voorgenomen verwerking van de wijzigingsvoorstellen van uw organisatie" in page
    assert login_as(person).post("/account/notifications", data=form).status_code == 302
    now = utcnow()
    drafting.send_disposition(
        w.process,
        w.process.rounds[0],
        actor=w.facilitator,
        respond_by=now + timedelta(days=2),
        publish_at=now + timedelta(days=3),
    )
    deliver(runner)
    assert person.email not in smtp.recipients()
    assert len(smtp.recipients()) == 3
    # Turned off by e-mail, still in the inbox.
    assert db.session.scalar(
        select(func.count()).select_from(Notice).where(Notice.user_id == person.id)
    )


def test_the_clock_reminds_those_who_have_not_answered_once(app, runner, smtp):
    w, a1, a2 = _sent_world(runner, smtp)
    now = utcnow()
    review = drafting.send_disposition(
        w.process,
        w.process.rounds[0],
        actor=w.facilitator,
        respond_by=now + timedelta(hours=2),
        publish_at=now + timedelta(hours=3),
    )
    db.session.commit()
    deliver(runner)
    smtp.clear()
    # VNG answers; IPO does not.
    vng_item = next(i for i in review.items if i.organisation_id == w.vng.id)
    drafting.respond_to_disposition(vng_item, w.process, actor=w.person("vng"), response="agree")
    db.session.commit()
    # A two-hour period: no reminder right after sending (halfway at the earliest).
    assert "reminder" not in tick(runner)
    assert deadlines.remind_disposition_feedback(now + timedelta(minutes=30)) == 0
    # The period was sent days ago: a day before its end is the process's threshold.
    review.sent_at = now - timedelta(days=3)
    db.session.commit()
    assert "1 disposition feedback reminder(s) queued" in tick(runner)
    deliver(runner)
    assert smtp.recipients() == emails(w, "ipo")
    mail = smtp.to(w.person("ipo").email)[0]
    assert mail["Subject"] == (
        "Herinnering: de voorgenomen verwerking wacht op het antwoord van IPO"
    )
    assert report_url(w, f"/organisations/{w.ipo.id}") in text_of(mail)
    # Once only.
    assert "reminder" not in tick(runner)
    assert deadlines.remind_disposition_feedback(review.respond_by - timedelta(minutes=5)) == 0
    deliver(runner)
    assert len(smtp.messages) == 2
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(OutgoingMail)
            .where(OutgoingMail.kind == NotificationKind.DEADLINE.value)
        )
        == 2
    )


def test_no_reminder_when_everyone_answered_or_warnings_are_off(app, runner, smtp):
    w, a1, a2 = _sent_world(runner, smtp)
    now = utcnow()
    review = drafting.send_disposition(
        w.process,
        w.process.rounds[0],
        actor=w.facilitator,
        respond_by=now + timedelta(days=2),
        publish_at=now + timedelta(days=3),
    )
    for item in review.items:
        slug = "vng" if item.organisation_id == w.vng.id else "ipo"
        drafting.respond_to_disposition(item, w.process, actor=w.person(slug), response="agree")
    db.session.commit()
    assert deadlines.remind_disposition_feedback(review.respond_by - timedelta(hours=1)) == 0
    assert review.reminded_at is not None  # done: never again
    deadlines.set_warning_days(w.process, actor=w.facilitator, raw="")
    review.reminded_at = None
    review.items[0].response = None
    review.items[0].responded_at = None
    db.session.commit()
    assert deadlines.remind_disposition_feedback(review.respond_by - timedelta(hours=1)) == 0
    assert review.reminded_at is None


def test_the_published_report_is_announced_once(app, login_as, runner, smtp):
    w, a1, a2 = _sent_world(runner, smtp)
    now = utcnow()
    review = drafting.send_disposition(
        w.process,
        w.process.rounds[0],
        actor=w.facilitator,
        respond_by=now + timedelta(days=1),
        publish_at=now + timedelta(days=2),
    )
    db.session.commit()
    deliver(runner)
    smtp.clear()
    assert "published" not in tick(runner)  # not yet its time
    assert drafting.announce_published_dispositions(review.publish_at - timedelta(minutes=1)) == 0
    # One person wants this kind at once; the others get it in the daily digest.
    person = w.person("ipo", MembershipRole.REPRESENTATIVE)
    form = {kind.value: "immediate" for kind in preferences.SWITCHABLE}
    form.update(digest_hour="8", time_zone="Europe/Amsterdam")
    assert login_as(person).post("/account/notifications", data=form).status_code == 302
    # Its time has come (the review's times moved into the past, as days passing would).
    review.respond_by = now - timedelta(hours=2)
    review.publish_at = now - timedelta(hours=1)
    db.session.commit()
    assert "1 disposition report(s) published" in tick(runner)
    deliver(runner)
    (mail,) = smtp.messages
    assert mail["To"] == person.email
    assert mail["Subject"] == "Verwerkingsnota gepubliceerd: \u201cProces\u201d"
    assert f"http://localhost{report_url(w)}" in text_of(mail)
    notified = db.session.execute(
        select(Notice.user_id).where(Notice.kind == NotificationKind.DISPOSITION_PUBLISHED.value)
    ).scalars()
    assert sorted(notified) == sorted(
        w.person(slug, role).id for slug in ("vng", "ipo") for role in WRITERS
    )
    assert "published" not in tick(runner)  # once only
    deliver(runner)
    assert len(smtp.messages) == 1
    # The audit trail says when it became public.
    entry = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "disposition.published")
    ).scalar_one()
    assert entry.object_id == str(w.process.rounds[0].id)
    # Its page is readable for the organisation's observers now.
    page = login_as(w.person("ipo", MembershipRole.OBSERVER)).get(report_url(w)).text
    assert "Nog niet gepubliceerd" not in page and "Past niet in deze brief." in page
