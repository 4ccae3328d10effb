"""Issue 21's "done when", walked through the demo world with the test client, a real SMTP
server and pdftotext: two officials of one organisation draft and clear a contribution that
appears once, as the organisation's; the facilitator consolidates overlapping amendments into
a new version in one step; line numbers in the disposition report match the PDF; each
contributing organisation agrees or contests its disposition before it is published."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta

from sqlalchemy import func, select

from consensus.extensions import db
from consensus.models import (
    Amendment,
    AmendmentState,
    AuditEvent,
    Contribution,
    ContributionState,
    OutgoingMail,
    Position,
    Process,
    User,
    utcnow,
)
from consensus.services import drafting
from consensus.worlds import demo
from tests.notification_support import mail_server, text_of
from tests.tools import require_tool
from tests.web.test_drafting_feedback import _local
from tests.web.test_notifications import deliver
from tests.web.test_positions import text_of as page_text


def _user(email: str) -> User:
    return db.session.execute(select(User).where(User.email == email)).scalar_one()


def _process(slug: str) -> Process:
    return db.session.execute(select(Process).where(Process.slug == slug)).scalar_one()


def _organisation_id(slug: str) -> int:
    from consensus.models import Organisation

    return db.session.execute(select(Organisation.id).where(Organisation.slug == slug)).scalar_one()


def _link(message) -> str:
    line = next(line for line in text_of(message).splitlines() if "/disposition/" in line)
    return line.strip().removeprefix("http://localhost")


def _sha(html: str) -> str:
    found = re.search(r'name="preview_sha256"[^>]*value="([0-9a-f]{64})"', html) or re.search(
        r'value="([0-9a-f]{64})"[^>]*name="preview_sha256"', html
    )
    assert found, html
    return found.group(1)


def test_the_strategy_report_records_every_answer_given_before_publication(app, runner, login_as):
    assert runner.invoke(args=["demo"]).exit_code == 0
    # The build is quiet: its made-up history mails nobody.
    assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == 0
    strategy = _process(demo.STRATEGY_SLUG)
    consultation = next(r for r in strategy.rounds if r.title == "Consultatie op versie 1")
    review = drafting.review_of(consultation.id)
    assert review is not None and drafting.review_phase(review) == "published"
    contributing = {item.organisation_id for item in review.items}
    assert contributing == {_organisation_id(s) for s in ("vng", "ipo", "uvw", "bzk")}
    assert all(i.response is not None and i.responded_at < review.respond_by for i in review.items)
    page = page_text(
        login_as(_user("official2.ipo@example.org"))
        .get(f"/processes/{strategy.slug}/positions/rounds/{consultation.id}/disposition")
        .text
    )
    assert "Betwist: BZK begrijpt de wens" in page and "Eens" in page


def test_done_when_in_the_demo_world(app, runner, login_as, tmp_path, monkeypatch):
    pdftotext = require_tool("pdftotext")
    with mail_server(app) as smtp:
        assert runner.invoke(args=["demo"]).exit_code == 0
        process = _process(demo.CONSULTATION_SLUG)
        position = db.session.execute(
            select(Position).where(Position.process_id == process.id)
        ).scalar_one()
        base = f"/processes/{process.slug}/positions/{position.id}"
        vng, ipo, uvw = (_organisation_id(s) for s in ("vng", "ipo", "uvw"))
        facilitator = _user("facilitator@example.org")

        # 1. VNG's two officials drafted and cleared a contribution: one amendment, shown
        #    as VNG's; who drafted and who cleared it is in the audit trail.
        (vng_amendment,) = db.session.execute(
            select(Amendment).where(
                Amendment.position_id == position.id, Amendment.organisation_id == vng
            )
        ).scalars()
        assert vng_amendment.author_id is None
        drafter, clearer = _user("official.vng@example.org"), _user("official2.vng@example.org")
        shown = page_text(
            login_as(_user("official.ipo@example.org"))
            .get(f"{base}/amendments/{vng_amendment.number}")
            .text
        )
        assert "(een vrijgegeven bijdrage van de organisatie)" in shown
        assert drafter.display_name not in shown and clearer.display_name not in shown
        submitted = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "contribution.submitted")
        ).scalar_one()
        payload = json.loads(submitted.payload)
        assert drafter.id in payload["drafted_by"] and payload["cleared_by"] == clearer.id

        # The Unie van Waterschappen's draft: its writer cannot clear it, the colleague can.
        draft = db.session.execute(
            select(Contribution).where(Contribution.organisation_id == uvw)
        ).scalar_one()
        url = f"{base}/contributions/{draft.id}"
        writer = login_as(_user("official.uvw@example.org"))
        assert "Alleen Unie van Waterschappen ziet deze pagina." in page_text(writer.get(url).text)
        writer.post(url + "/clear")
        db.session.expire_all()
        assert draft.state == ContributionState.DRAFT
        assert login_as(_user("official.vng@example.org")).get(url).status_code == 404
        colleague = login_as(_user("official2.uvw@example.org"))
        assert colleague.post(url + "/clear").status_code == 302
        assert colleague.post(url + "/submit").status_code == 302
        db.session.expire_all()
        assert draft.state == ContributionState.SUBMITTED

        # 2. The facilitator consolidates the overlapping amendments (IPO's and VNG's on
        #    the same paragraph), adopts the Unie's new paragraph after it, and makes
        #    version 2 of every decision in one step.
        client = login_as(facilitator)
        page = client.get(f"{base}/consolidate")
        assert "2 overlappende wijzigingsvoorstellen" in page_text(page.text)
        group, single = drafting.amendment_groups(position)
        numbers = set(group.numbers)
        assert {by.organisation_id for by in group.amendments} == {ipo, vng}
        decisions = [
            (group, f"adopt:{vng_amendment.number}", "De gemeentelijke registraties."),
            (single, f"adopt:{single.numbers[0]}", "Een goede aanvulling."),
        ]
        for g, decision, reason in decisions:
            response = client.post(
                f"{base}/consolidate",
                data={
                    "group": g.key,
                    f"g{g.key}-numbers": g.key,
                    f"g{g.key}-decision": decision,
                    f"g{g.key}-reason": reason,
                    f"g{g.key}-shared_reason": "Opgegaan in het voorstel van VNG.",
                },
            )
            assert response.status_code == 302, page_text(response.text)
        preview = client.get(f"{base}/apply")
        assert preview.status_code == 200
        response = client.post(f"{base}/apply", data={"preview_sha256": _sha(preview.text)})
        assert response.status_code == 302
        db.session.expire_all()
        v1, v2 = position.versions
        assert v2.number == 2 and vng_amendment.proposed_text in [p.text for p in v2.paragraphs]
        assert draft.text in [p.text for p in v2.paragraphs]
        decided = db.session.execute(
            select(Amendment).where(Amendment.position_id == position.id)
        ).scalars()
        by_number = {a.number: a for a in decided}
        assert by_number[vng_amendment.number].applied_in_version_id == v2.id
        assert {by_number[n].state for n in numbers - {vng_amendment.number}} == {
            AmendmentState.REJECTED
        }

        # 3. The round closes; the facilitator sends the proposed disposition: every
        #    contributing organisation's officials and representative are asked by mail.
        consultation = next(r for r in process.rounds if r.title == "Consultatie op versie 1")
        assert (
            client.post(f"/processes/{process.slug}/rounds/{consultation.id}/close").status_code
            == 302
        )
        report = f"/processes/{process.slug}/positions/rounds/{consultation.id}/disposition"
        deliver(runner)
        smtp.clear()
        now = utcnow()
        response = client.post(
            report + "/send",
            data={
                "respond_by": _local(now + timedelta(days=5)),
                "publish_at": _local(now + timedelta(days=6)),
            },
        )
        assert response.status_code == 302
        deliver(runner)
        expected = sorted(
            f"{who}.{slug}@example.org"
            for slug in ("vng", "ipo", "uvw")
            for who in ("representative", "official", "official2")
        )
        assert smtp.recipients() == expected

        # 4. Each organisation answers through the link in its mail; the facilitator sees
        #    what is contested; nobody else sees the report yet.
        answers = {
            "official2.vng@example.org": ("agree", ""),
            "representative.ipo@example.org": (
                "contest",
                "De registraties van de ruimtelijke ordening horen er ook bij.",
            ),
            "official2.uvw@example.org": ("agree", ""),
        }
        for email, (response_value, comment) in answers.items():
            (message,) = smtp.to(email)
            person = login_as(_user(email))
            page = person.get(_link(message))
            assert page.status_code == 200
            for item_id in re.findall(r'name="item" value="(\d+)"', page.text):
                reply = person.post(
                    _link(message),
                    data={
                        "item": item_id,
                        f"f{item_id}-response": response_value,
                        f"f{item_id}-comment": comment,
                    },
                )
                assert reply.status_code == 302, page_text(reply.text)
        reader = login_as(_user("official.bzk@example.org"))
        assert "Nog niet gepubliceerd" in page_text(reader.get(report).text)
        shown = page_text(login_as(facilitator).get(report).text)
        assert "Betwist: De registraties van de ruimtelijke ordening horen er ook bij." in shown
        review = drafting.review_of(consultation.id)
        db.session.refresh(review)
        assert {i.organisation_id for i in review.items} == {vng, ipo, uvw}
        assert all(i.response is not None for i in review.items)

        # 5. Publication time: the report records the answers, and its line numbers are
        #    the draft PDF's.
        later = review.publish_at + timedelta(minutes=1)
        monkeypatch.setattr(drafting, "utcnow", lambda: later)
        assert drafting.announce_published_dispositions(later) == 1
        db.session.commit()
        reader = login_as(_user("official.bzk@example.org"))
        text = page_text(reader.get(report).text)
        assert "Nog niet gepubliceerd" not in text
        assert "Betwist: De registraties van de ruimtelijke ordening horen er ook bij." in text
        # The first reference (IPO's or VNG's amendment of the data system paragraph),
        # "alinea N, regel(s) a(–b)": the lines that hold the words it changes.
        match = re.search(r"alinea (\d+), regels? (\d+)(?:\u2013(\d+))?", text)
        assert match, text
        paragraph, first = int(match.group(1)), int(match.group(2))
        last = int(match.group(3) or first)
        pdf = reader.get(f"{base}/versions/1.pdf")
        assert pdf.status_code == 200
        path = tmp_path / "versie-1.pdf"
        path.write_bytes(pdf.data)
        out = subprocess.run(
            [pdftotext, "-layout", str(path), "-"], check=True, capture_output=True, text=True
        ).stdout
        printed = {
            int(m.group(1)): m.group(2).strip()
            for m in re.finditer(r"^\s+(\d+)\s+(\S.*)$", out, re.MULTILINE)
        }
        stretch = " ".join(printed[n] for n in range(first, last + 1))
        original = " ".join(v1.paragraphs[paragraph - 1].text.split())
        assert stretch in original, (stretch, original)
        # The words both amendments drop are on those lines of the PDF.
        assert "moeten daarom meebeslissen" in stretch
