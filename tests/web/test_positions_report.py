"""The disposition report (verwerkingsnota): page, CSV and PDF, parsed back."""

from __future__ import annotations

import csv
import io
import subprocess

from pypdf import PdfReader

from consensus.extensions import db
from consensus.models import AmendmentState, MembershipRole
from consensus.services import positions as service
from consensus.services import processes
from tests.tools import require_tool
from tests.web.test_positions import build_world, decide, propose


def _round_with_input(app):
    w = build_world()
    p = w.v1.paragraphs
    a1 = propose(
        w, paragraph_anchor=p[2].anchor, proposed_text="Als gelijkwaardige partners, graag."
    )
    a2 = propose(w, "ipo", paragraph_anchor=p[1].anchor, proposed_text="Hartelijk dank; €10 mln.")
    a3 = propose(w, "ipo", insert_after_anchor=p[3].anchor, proposed_text="Extra alinea.")
    decide(w, a1, AmendmentState.ACCEPTED, reason="Sluit aan bij de lijn.")
    decide(w, a2, AmendmentState.REJECTED, reason="Bedragen horen niet in deze brief.")
    service.withdraw_amendment(a3, actor=w.person("ipo"))
    comment = service.add_comment(
        w.v1,
        w.process,
        actor=w.person("vng", MembershipRole.REPRESENTATIVE),
        organisation=w.vng,
        body='Graag "samen" benadrukken, ook bij de regio\'s.',
        paragraph_anchor=p[3].anchor,
    )
    service.add_comment(
        w.v1, w.process, actor=w.facilitator, body="Meegenomen in alinea 3.", parent=comment
    )
    processes.close_round(w.process.rounds[0], actor=w.facilitator)
    db.session.commit()
    return w


def report_url(w, suffix=""):
    return (
        f"/processes/{w.process.slug}/positions/rounds/{w.process.rounds[0].id}/disposition{suffix}"
    )


def test_the_report_page_lists_every_decision(client, login_as, app):
    w = _round_with_input(app)
    login_as(w.person("ipo", MembershipRole.OBSERVER))
    page = client.get(report_url(w)).text
    for text in (
        "Verwerkingsnota",
        "Wijzigingsvoorstel 1",
        "Sluit aan bij de lijn.",
        "Bedragen horen niet in deze brief.",
        "Ingetrokken",
        "Meegenomen in alinea 3.",
        "alinea 3",
        "Reactie van de procesbegeleider",
    ):
        assert text in page, text
    assert page.index("IPO") < page.index("VNG")  # organisations in alphabetical order


def test_the_csv_parses_back(client, login_as, app):
    w = _round_with_input(app)
    login_as(w.facilitator)
    response = client.get(report_url(w, ".csv"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "verwerkingsnota-" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert len(rows) == 4
    by_number = {(r["Soort"], r["Nummer"]): r for r in rows}
    accepted = by_number[("Wijzigingsvoorstel", "1")]
    assert accepted["Organisatie"] == "VNG" and accepted["Besluit"] == "Overgenomen"
    assert accepted["Alinea"] == "alinea 3"
    assert accepted["Reden of antwoord"] == "Sluit aan bij de lijn."
    rejected = by_number[("Wijzigingsvoorstel", "2")]
    assert rejected["Voorstel of reactie"] == "Hartelijk dank; €10 mln."
    assert rejected["Besluit"] == "Niet overgenomen"
    assert by_number[("Wijzigingsvoorstel", "3")]["Besluit"] == "Ingetrokken"
    comment = next(r for r in rows if r["Soort"] == "Reactie")
    assert comment["Voorstel of reactie"] == 'Graag "samen" benadrukken, ook bij de regio\'s.'
    assert "Meegenomen in alinea 3." in comment["Reden of antwoord"]


def test_the_pdf_parses_back(client, login_as, app):
    w = _round_with_input(app)
    login_as(w.person("vng"))
    response = client.get(report_url(w, ".pdf"))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 3  # a summary page and one page per organisation
    for snippet in (
        "Verwerkingsnota",
        "Wijzigingsvoorstel 1",
        "Sluit aan bij de lijn",
        "IPO",
        "VNG",
    ):
        assert snippet in text, snippet
    assert w.v1.sha256 in text.replace("\n", "")


def test_pdftotext_reads_the_pdf(client, login_as, app, tmp_path):
    pdftotext = require_tool("pdftotext")
    w = _round_with_input(app)
    login_as(w.facilitator)
    path = tmp_path / "nota.pdf"
    path.write_bytes(client.get(report_url(w, ".pdf")).data)
    out = subprocess.run(
        [pdftotext, "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "Bedragen horen niet in deze brief." in out
    assert "pagina 1 / " in out


def test_only_participants_see_the_report(client, login_as, app):
    w = _round_with_input(app)
    login_as(w.person("x"))
    for suffix in ("", ".csv", ".pdf"):
        assert client.get(report_url(w, suffix)).status_code == 404


def test_the_same_state_gives_the_same_pdf_dated_by_its_latest_change(
    client, login_as, app, monkeypatch
):
    """The report is dated by its latest change, not by the moment of download: two
    downloads of one state are byte for byte the same file (a cached page, a hash someone
    noted), and the date tells how current it is."""
    from datetime import timedelta

    w = _round_with_input(app)
    login_as(w.person("vng"))
    first = client.get(report_url(w, ".pdf")).data
    later = service.utcnow() + timedelta(hours=3)
    monkeypatch.setattr("consensus.services.positions.utcnow", lambda: later)
    assert client.get(report_url(w, ".pdf")).data == first
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(first)).pages)
    assert "Stand van" in text
