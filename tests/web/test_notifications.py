"""E-mail notifications (issue 17) with a real SMTP server (aiosmtpd) and the real worker
(`flask notifications deliver`): each trigger reaches exactly the people the rule book
names, in their language, with working links; preferences, the digest (time moved on, not
slept), one-click unsubscribe; an SMTP outage loses and duplicates nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import func, select, update

from consensus.extensions import db
from consensus.models import (
    Delegation,
    MailState,
    MembershipRole,
    Notice,
    NotificationKind,
    OutgoingMail,
    RoundType,
    StanceKind,
    utcnow,
)
from consensus.notifications import deadlines, outbox, preferences
from consensus.services import endorsements, processes
from tests.endorsement_support import make_world
from tests.factories import make_membership, make_user
from tests.notification_support import html_of, mail_server, text_of


@pytest.fixture
def smtp(app):
    with mail_server(app) as server:
        yield server


def deliver(runner) -> str:
    # The test's own reads end first: on SQLite the worker's writes would leave the test's
    # open snapshot stale (as a request's, which begins afresh).
    db.session.commit()
    result = runner.invoke(args=["notifications", "deliver", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def substitute_for(w, org, *, name="Plaatsvervanger"):
    """An observer of `org` to whom its representative lent the mandate: acts only
    through the delegation."""
    person = make_user(name=f"{name} {org.name[-1]}")
    make_membership(person, org, MembershipRole.OBSERVER)
    now = utcnow()
    db.session.add(
        Delegation(
            organisation_id=org.id,
            delegator_id=w.reps[org.id].id,
            delegate_id=person.id,
            valid_from=now - timedelta(minutes=5),
            valid_until=now + timedelta(days=10),
        )
    )
    db.session.commit()
    return person


def open_round_as_facilitator(w, login_as) -> None:
    processes.update_round(
        w.round,
        actor=w.facilitator,
        title=w.round.title,
        instructions="Lees versie 1 en geef uw standpunt.",
        opens_at=utcnow() - timedelta(minutes=1),
        closes_at=w.round.closes_at,
    )
    db.session.commit()
    response = login_as(w.facilitator).post(f"/processes/{w.process.slug}/rounds/{w.round.id}/open")
    assert response.status_code == 302


# --- Who gets what ------------------------------------------------------------------------------


def test_opening_an_endorsement_round_mails_exactly_the_mandate_holders(
    app, client, login_as, runner, smtp
):
    w = make_world(n=3, open_first=False)
    a, b, c = w.orgs
    substitute = substitute_for(w, a)
    english = w.reps[b.id]
    english.locale = "en"
    db.session.commit()
    open_round_as_facilitator(w, login_as)
    assert smtp.messages == []  # written in the transaction, sent by the worker
    assert "3 sent" not in deliver(runner)
    expected = sorted(
        [w.reps[a.id].email, w.reps[b.id].email, w.reps[c.id].email, substitute.email]
    )
    assert smtp.recipients() == expected  # officials and the facilitator act in no endorsement
    (dutch,) = smtp.to(w.reps[a.id].email)
    assert dutch["Subject"] == f"Ronde open: \u201c{w.round.title}\u201d (Proces)"
    assert "Organisatie A" in text_of(dutch)
    (english_mail,) = smtp.to(english.email)
    assert english_mail["Subject"] == f"Round open: \u201c{w.round.title}\u201d (Proces)"
    assert english_mail["Content-Language"] == "en"
    assert '<html lang="en">' in html_of(english_mail)
    # The link is the round's page; it works for the person once logged in, and logs
    # nobody in by itself.
    link = f"http://localhost/processes/{w.process.slug}/rounds/{w.round.id}"
    assert link in text_of(dutch) and f'href="{link}"' in html_of(dutch)
    anonymous = app.test_client()
    assert anonymous.get(link).status_code == 302  # not logged in: the login page
    assert login_as(substitute).get(link).status_code == 200
    # The substitute's inbox shows the same notification.
    page = login_as(substitute).get("/messages").text
    assert w.round.title in page and "Ongelezen" in page
    # Nothing twice.
    deliver(runner)
    assert len(smtp.messages) == 4


def test_a_clearance_round_mails_the_officials(app, login_as, runner, smtp):
    w = make_world(n=2, round_types=(RoundType.CLEARANCE,), open_first=False)
    open_round_as_facilitator(w, login_as)
    deliver(runner)
    assert smtp.recipients() == sorted(o.email for o in w.officials.values())


def test_the_reminder_skips_organisations_that_acted(app, login_as, runner, smtp):
    w = make_world(n=3)
    a, b, c = w.orgs
    substitute = substitute_for(w, b)
    deliver(runner)  # the round's opening
    smtp.clear()
    endorsements.cast_stance(w.round, actor=w.reps[a.id], organisation=a, kind=StanceKind.ENDORSE)
    db.session.commit()
    response = login_as(w.facilitator).post(
        f"/processes/{w.process.slug}/rounds/{w.round.id}/remind"
    )
    assert response.status_code == 302
    deliver(runner)
    assert smtp.recipients() == sorted([w.reps[b.id].email, substitute.email, w.reps[c.id].email])
    (mail,) = smtp.to(substitute.email)
    assert mail["Subject"] == f"Herinnering: \u201c{w.round.title}\u201d wacht op Organisatie B"
    assert "Herinnering van de procesbegeleider" in text_of(mail)


def test_deadline_warnings_come_from_rounds_tick_once_per_threshold(app, runner, smtp):
    w = make_world(n=2)  # the round closes in two days: within the 3-day warning
    a, b = w.orgs
    substitute = substitute_for(w, b)
    deliver(runner)
    smtp.clear()
    endorsements.cast_stance(w.round, actor=w.reps[a.id], organisation=a, kind=StanceKind.ENDORSE)
    db.session.commit()
    result = runner.invoke(args=["rounds", "tick"])
    assert result.exit_code == 0 and "1 deadline warning(s) queued" in result.output
    deliver(runner)
    assert smtp.recipients() == sorted([w.reps[b.id].email, substitute.email])
    mail = smtp.to(substitute.email)[0]
    assert mail["Subject"].startswith("Deadline nadert")
    # The deadline as an iCalendar attachment.
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    event = Calendar.from_ical(attachment.get_content()).walk("VEVENT")[0]
    assert event.decoded("dtstart") == w.round.closes_at.replace(microsecond=0)
    assert str(event["summary"]) == f"Deadline: {w.round.title} — Proces"
    # A second tick says nothing new; a day before the deadline (time moved on) the 1-day
    # warning goes out.
    runner.invoke(args=["rounds", "tick"])
    deliver(runner)
    assert len(smtp.messages) == 2
    assert deadlines.warn_deadlines(w.round.closes_at - timedelta(hours=20)) == 1
    db.session.commit()
    deliver(runner)
    assert len(smtp.messages) == 4
    assert deadlines.warn_deadlines(w.round.closes_at - timedelta(hours=2)) == 0


def test_the_warning_days_are_set_per_process(app, runner, smtp):
    w = make_world(n=1)
    deadlines.set_warning_days(w.process, actor=w.facilitator, raw="1")
    db.session.commit()
    runner.invoke(args=["rounds", "tick"])  # two days before: no 3-day warning here
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(OutgoingMail)
            .where(OutgoingMail.kind == NotificationKind.DEADLINE.value)
        )
        == 0
    )
    with pytest.raises(Exception, match="1 en 60|1 and 60"):
        deadlines.set_warning_days(w.process, actor=w.facilitator, raw="drie")


# --- Preferences, digest, unsubscribe -----------------------------------------------------------


def test_preferences_digest_and_off(app, login_as, runner, smtp):
    w = make_world(n=2, open_first=False)
    a, b = w.orgs
    digest_person, off_person = w.reps[a.id], w.reps[b.id]
    client = login_as(digest_person)
    page = client.get("/account/notifications")
    assert page.status_code == 200 and "Dagelijkse samenvatting" in page.text
    form = {kind.value: "immediate" for kind in preferences.SWITCHABLE}
    form.update(round_opened="digest", digest_hour="7", time_zone="Europe/Amsterdam")
    assert client.post("/account/notifications", data=form).status_code == 302
    # Bad input: a clear message, nothing changed.
    bad = client.post("/account/notifications", data={**form, "round_opened": "sometimes"})
    assert bad.status_code == 422 and "Ongeldige keuze" in bad.text
    bad = client.post("/account/notifications", data={**form, "time_zone": "Mars/Olympus"})
    assert bad.status_code == 422
    assert preferences.preferences_of(digest_person)[NotificationKind.ROUND_OPENED] == "digest"
    off = {**form, "round_opened": "off", "digest_hour": "8"}
    assert login_as(off_person).post("/account/notifications", data=off).status_code == 302
    open_round_as_facilitator(w, login_as)
    deliver(runner)
    assert smtp.messages == []  # one waits for the digest, the other is off
    assert {n.user_id for n in db.session.execute(select(Notice)).scalars()} >= {
        digest_person.id,
        off_person.id,
    }  # both still see it in their inbox
    # The notices arrived at 01:00 Amsterdam time yesterday: the digest's hours are then
    # the same whatever the test's own clock says (it once ran after midnight Amsterdam,
    # when the next 07:00 was today, not tomorrow).
    zone = ZoneInfo("Europe/Amsterdam")
    day = (utcnow().astimezone(zone) - timedelta(days=1)).date()
    arrived = datetime(day.year, day.month, day.day, 1, tzinfo=zone).astimezone(UTC)
    db.session.execute(update(Notice).where(Notice.digest == "waiting").values(created_at=arrived))
    db.session.commit()
    # Time moves on: before 07:00 Amsterdam nothing, at 07:00 one digest.
    seven = datetime(day.year, day.month, day.day, 7, tzinfo=zone)
    assert outbox.deliver_due(seven - timedelta(minutes=1)).digests == 0
    done = outbox.deliver_due(seven + timedelta(minutes=1))
    assert (done.digests, done.sent) == (1, 1)
    (mail,) = smtp.messages
    assert mail["To"] == digest_person.email
    assert "samenvatting" in mail["Subject"] and w.round.title in text_of(mail)
    # At 08:00 (the default hour) the others' digests of the first version go out; the
    # 07:00 digest is not sent twice.
    outbox.deliver_due(seven + timedelta(hours=1, minutes=1))
    assert len(smtp.to(digest_person.email)) == 1
    assert {m["To"] for m in smtp.messages[1:]} == {o.email for o in w.officials.values()} | {
        off_person.email
    }


def test_one_click_unsubscribe_turns_off_one_kind_without_login(
    app, client, login_as, runner, smtp
):
    w = make_world(n=1)
    person = w.reps[w.orgs[0].id]
    deliver(runner)
    (mail,) = smtp.messages
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(mail["List-Unsubscribe"]).strip("<>")
    path = url.removeprefix("http://localhost")
    # Opening the link (a link checker, a preview) changes nothing.
    assert "Wilt u deze e-mails niet meer" in client.get(path).text
    assert preferences.preferences_of(person)[NotificationKind.ROUND_OPENED] == "immediate"
    db.session.commit()  # the test's own reads end: the request starts afresh
    # The mail client's one-click POST: no login, no CSRF token.
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert preferences.preferences_of(person)[NotificationKind.ROUND_OPENED] == "off"
    assert preferences.preferences_of(person)[NotificationKind.REMINDER] == "immediate"
    # A forged or altered token does nothing.
    assert client.post(path[:-2] + "xx", data={"List-Unsubscribe": "One-Click"}).status_code == 404
    # Security notices carry no unsubscribe link and cannot be turned off.
    forged = preferences._serializer().dumps([person.id, "security"])
    assert client.post(f"/notifications/unsubscribe/{forged}").status_code == 404


# --- Delivery: outage, refusals, dead letters ----------------------------------------------


def test_smtp_outage_and_recovery_lose_nothing_and_send_nothing_twice(app, runner, smtp):
    # The passes below run with digests=False: this test is about immediate mail, and the
    # people's daily digests (08:00 Amsterdam) would otherwise fall due inside its two hours
    # whenever the test runs in the early morning (CI failed on that twice). Digests have
    # their own test (test_preferences_digest_and_off).
    w = make_world(n=3)
    expected = sorted(w.reps[o.id].email for o in w.orgs)
    smtp.stop()
    now = utcnow()
    first = outbox.deliver_due(now, digests=False)
    assert (first.sent, first.retried) == (0, 1)  # the server is away: the rest waits
    mails = db.session.execute(select(OutgoingMail)).scalars().all()
    assert {m.state for m in mails} == {MailState.QUEUED}
    # An hour of outage: passes every few minutes, each finds the server away.
    moment = now
    for _ in range(12):
        moment += timedelta(minutes=5)
        outbox.deliver_due(moment, digests=False)
    db.session.expire_all()
    assert {m.state for m in db.session.execute(select(OutgoingMail)).scalars()} == {
        MailState.QUEUED
    }
    smtp.start()
    back = outbox.deliver_due(moment + timedelta(minutes=31), digests=False)
    assert back.sent == 3
    assert smtp.recipients() == expected
    # Nothing is sent again.
    before = list(smtp.messages)
    later = outbox.deliver_due(moment + timedelta(hours=2), digests=False)
    assert (later.sent, later.retried, later.dead) == (0, 0, 0)
    assert smtp.messages == before
    db.session.rollback()  # a fresh snapshot
    assert sorted(m["Message-ID"] for m in before) == sorted(
        m.message_id for m in db.session.execute(select(OutgoingMail)).scalars()
    )


def test_a_temporary_refusal_is_retried_with_the_same_message_id(app, runner, smtp):
    w = make_world(n=1)
    smtp.refuse = "451 4.3.0 Try again later"
    now = utcnow()
    assert outbox.deliver_due(now, digests=False).retried == 1
    mail = db.session.execute(select(OutgoingMail)).scalar_one()
    assert (mail.attempts, mail.state, mail.last_error) == (
        1,
        MailState.QUEUED,
        "recipient refused (451)",
    )
    assert mail.next_attempt_at == now + timedelta(minutes=1)
    assert outbox.deliver_due(now + timedelta(seconds=30), digests=False).total == 0  # backing off
    smtp.refuse = None
    assert outbox.deliver_due(now + timedelta(minutes=2), digests=False).sent == 1
    (received,) = smtp.messages
    assert received["Message-ID"] == mail.message_id
    assert received["To"] == w.reps[w.orgs[0].id].email


def test_a_permanent_refusal_is_dead_and_shown_to_administrators(app, login_as, runner, smtp):
    make_world(n=1)
    admin = make_user(is_admin=True)
    db.session.commit()
    smtp.refuse = "550 5.1.1 No such user"
    assert outbox.deliver_due().dead == 1
    page = login_as(admin).get("/admin/mail")
    assert page.status_code == 200 and "recipient refused (550)" in page.text
    mail = db.session.execute(select(OutgoingMail)).scalar_one()
    # Fixed: the administrator sends it again.
    smtp.refuse = None
    assert login_as(admin).post(f"/admin/mail/{mail.id}/retry").status_code == 302
    assert outbox.deliver_due().sent == 1 and len(smtp.messages) == 1
    # Not for anyone else.
    official = make_user()
    db.session.commit()
    assert login_as(official).get("/admin/mail").status_code == 403


def test_too_many_failures_make_a_message_dead(app, smtp):
    app.config["NOTIFICATIONS_MAX_ATTEMPTS"] = 2
    make_world(n=1)
    smtp.refuse = "451 4.3.0 Try again later"
    now = utcnow()
    outbox.deliver_due(now)
    assert outbox.deliver_due(now + timedelta(minutes=5), digests=False).dead == 1
    assert outbox.queue_counts()["dead"] == 1


def test_the_metrics_show_the_mail_queue(app, client, smtp):
    app.config["METRICS_TOKEN"] = "metrics-token"  # noqa: S105 - test token
    make_world(n=2)
    body = client.get("/metrics", headers={"Authorization": "Bearer metrics-token"}).text
    assert 'consensus_mail_messages{state="queued"} 2.0' in body
    assert 'consensus_mail_messages{state="dead"} 0.0' in body


# --- Inbox ---------------------------------------------------------------------------------------


def test_the_inbox_shows_notifications_with_an_unread_count(app, login_as):
    w = make_world(n=1)
    person = w.reps[w.orgs[0].id]
    client = login_as(person)
    unread = db.session.scalar(
        select(func.count()).select_from(Notice).where(Notice.user_id == person.id)
    )
    assert unread >= 1  # the round's opening, the first version
    page = client.get("/").text
    assert f'class="c-nav__count">{unread}<' in page
    inbox = client.get("/messages").text
    assert f"Ronde \u201c{w.round.title}\u201d van \u201cProces\u201d is geopend" in inbox
    assert client.post("/messages/read").status_code == 302
    assert "c-nav__count" not in client.get("/messages").text


# --- The other triggers ---------------------------------------------------------------------------


def _notified(kind: NotificationKind) -> set[int]:
    return set(
        db.session.execute(select(Notice.user_id).where(Notice.kind == kind.value)).scalars()
    )


def test_texts_new_version_amendment_decided_and_reply(app, runner, smtp):
    from consensus.models import AmendmentState, Position
    from consensus.services import positions

    w = make_world(n=2, round_types=(RoundType.CONSULTATION,))
    a, b = w.orgs
    outsider = make_user()  # in no participating organisation
    db.session.commit()
    position = db.session.execute(select(Position)).scalar_one()
    version = position.versions[0]
    # A new version: everyone taking part (officials and representatives), not its author.
    assert _notified(NotificationKind.NEW_VERSION) == {
        *(u.id for u in w.reps.values()),
        *(u.id for u in w.officials.values()),
    }
    assert w.facilitator.id not in _notified(NotificationKind.NEW_VERSION)
    deliver(runner)
    smtp.clear()
    # An amendment of A, rejected with a reason: A's people hear it, with the reason.
    amendment = positions.propose_amendment(
        version,
        w.process,
        actor=w.officials[a.id],
        organisation=a,
        proposed_text="Eerste alinea, scherper.",
        rationale="Duidelijker.",
        paragraph_anchor=version.paragraphs[0].anchor,
    )
    db.session.commit()
    positions.decide_amendment(
        amendment,
        w.process,
        actor=w.facilitator,
        decision=AmendmentState.REJECTED,
        reason="Past niet bij de strekking.",
    )
    db.session.commit()
    deliver(runner)
    assert smtp.recipients() == sorted([w.reps[a.id].email, w.officials[a.id].email])
    mail = smtp.to(w.officials[a.id].email)[0]
    assert "niet overgenomen" in mail["Subject"]
    assert "Reden: Past niet bij de strekking." in text_of(mail)
    assert f"/amendments/{amendment.number}" in text_of(mail)
    smtp.clear()
    # A reply: the comment's author only.
    comment = positions.add_comment(
        version, w.process, actor=w.officials[a.id], body="Klopt dit?", organisation=a
    )
    db.session.commit()
    positions.add_comment(
        version,
        w.process,
        actor=w.officials[b.id],
        body="Ja, dat klopt.",
        organisation=b,
        parent=comment,
    )
    db.session.commit()
    deliver(runner)
    (reply,) = smtp.messages
    assert reply["To"] == w.officials[a.id].email
    assert "Ja, dat klopt." in text_of(reply) and "#comment-" in text_of(reply)
    assert outsider.id not in _notified(NotificationKind.COMMENT_REPLY)


def test_outcome_signing_requested_letter_signed_and_published(app, login_as, runner, smtp):
    from tests.signing_support import make_signing_world, sign_as

    w = make_signing_world()
    reps = {u.id for u in w.reps.values()}
    # The endorsement round closed: its outcome to everyone taking part and the facilitator.
    assert _notified(NotificationKind.OUTCOME) == reps | {w.facilitator.id}
    # The signing round opened: the mandate holders are asked to sign.
    assert _notified(NotificationKind.SIGNING_REQUESTED) == reps
    deliver(runner)
    outcome = [m for m in smtp.messages if m["Subject"].startswith("Vastgesteld")]
    assert sorted(m["To"] for m in outcome) == sorted(
        [u.email for u in w.reps.values()] + [w.facilitator.email]
    )
    asked = [m for m in smtp.messages if "handtekening" in m["Subject"]]
    assert len(asked) == 4 and "/signing" in text_of(asked[0])
    # Fully signed only after the last organisation signed.
    for org in w.orgs[:-1]:
        sign_as(w, org)
        db.session.commit()
    assert _notified(NotificationKind.LETTER_SIGNED) == set()
    sign_as(w, w.orgs[-1])
    db.session.commit()
    assert _notified(NotificationKind.LETTER_SIGNED) == reps | {w.facilitator.id}
    # Published: everyone taking part and the facilitator (news: in the daily digest).
    processes.close_round(w.signing, actor=w.facilitator)
    processes.schedule_publication(w.process, actor=w.facilitator, at=None)
    db.session.commit()
    assert _notified(NotificationKind.PUBLISHED) == reps | {w.facilitator.id}
    waiting = db.session.scalar(
        select(func.count())
        .select_from(Notice)
        .where(
            Notice.digest == "waiting",
            Notice.kind.in_(["letter_signed", "process_published"]),
        )
    )
    assert waiting == 2 * 5  # letter signed and published wait for the digest


def test_the_facilitator_sets_the_warning_days_on_the_manage_page(app, login_as):
    w = make_world(n=1)
    client = login_as(w.facilitator)
    page = client.get(f"/processes/{w.process.slug}/manage").text
    assert 'value="3, 1"' in page and "E-mail voor een deadline" in page
    url = f"/processes/{w.process.slug}/deadline-warnings"
    assert client.post(url, data={"deadline_warning_days": "5, 2"}).status_code == 302
    assert deadlines.warning_days(w.process.id) == (5, 2)
    # Bad input: a clear message, nothing changed.
    page = client.post(url, data={"deadline_warning_days": "morgen"}, follow_redirects=True)
    assert "Geef hele dagen tussen 1 en 60" in page.text
    assert deadlines.warning_days(w.process.id) == (5, 2)
    # Not for a representative.
    db.session.commit()
    rep = login_as(w.reps[w.orgs[0].id])
    assert rep.post(url, data={"deadline_warning_days": "1"}).status_code == 403
    assert deadlines.warning_days(w.process.id) == (5, 2)


@pytest.mark.parametrize("base", ["https://consensus.example.org", "https://gov.example/consensus"])
def test_links_in_mail_use_the_base_url_also_from_the_clock(app, runner, smtp, base):
    from consensus.config import base_url_settings

    app.config.update(base_url_settings(base))
    w = make_world(n=1)  # opened outside a request, as the clock or a command would
    deliver(runner)
    (mail,) = smtp.messages
    link = f"{base}/processes/{w.process.slug}/rounds/{w.round.id}"
    assert link in text_of(mail)
    assert str(mail["List-Unsubscribe"]).startswith(f"<{base}/notifications/unsubscribe/")
