"""Line numbers through the app (issue 21 item 2): the version page's toggle, references
in amendments, the diff, the disposition report and the line-numbered draft PDF agree."""

from __future__ import annotations

import io
import re
import subprocess

from pypdf import PdfReader

from consensus.domain.lines import number_paragraphs
from consensus.extensions import db
from consensus.models import AmendmentState, MembershipRole
from consensus.services import positions as service
from consensus.services import processes
from tests.tools import require_tool
from tests.web.test_positions import build_world, decide, propose, text_of

LONG = " ".join(f"woord{n:02d}" for n in range(40))  # 319 characters: 9 words a line
BODY = f"# Inbreng\n\nEerste alinea.\n\n{LONG}\n\nSlotalinea.\n"


def _lines_of(w, number=1):
    version = w.position.versions[number - 1]
    return number_paragraphs([(p.anchor, p.text) for p in version.paragraphs])


def test_the_version_page_shows_line_numbers_on_request(client, login_as, app):
    w = build_world(body=BODY)
    login_as(w.person("vng"))
    plain = client.get(w.url("/versions/1")).text
    assert "Regelnummers tonen" in plain
    assert 'class="c-line"' not in plain
    numbered = client.get(w.url("/versions/1?lines=1")).text
    assert "Regelnummers verbergen" in numbered
    rows = re.findall(
        r'<div class="c-line" id="[^"]+-l(\d+)"><span class="c-line__num">(\d+)</span>'
        r'<span class="c-line__text">([^<]*)</span>',
        numbered,
    )
    lines = [line for p in _lines_of(w) for line in p.lines]
    assert [(int(a), int(b), t) for a, b, t in rows] == [
        (line.number, line.number, line.text) for line in lines
    ]
    assert len(rows) == 8  # heading, one line, five lines of the long paragraph, the last


def test_an_amendment_names_its_lines_and_maps_them_to_a_newer_version(client, login_as, app):
    w = build_world(body=BODY)
    p = w.v1.paragraphs
    changed = LONG.replace("woord20", "WIJZIGING")
    amendment = propose(w, paragraph_anchor=p[2].anchor, proposed_text=changed)
    login_as(w.person("ipo", MembershipRole.OBSERVER))
    page = text_of(client.get(w.url(f"/amendments/{amendment.number}")).text)
    # woord20 is the 21st word; 9 words ("woordNN ", 8 characters) fill a line of 72:
    # the third line of paragraph 3, which starts at line 3.
    assert "alinea 3, regel 5" in page
    listing = text_of(client.get(w.url("/amendments")).text)
    assert "alinea 3, regel 5" in listing
    # The facilitator writes version 2 with two new lines above: the reference moves.
    service.create_version(
        w.position,
        w.process,
        actor=w.facilitator,
        body=BODY.replace("Eerste alinea.", "Eerste alinea.\n\nNieuw.\n\nNog een."),
        change_summary="Twee alinea's erbij.",
    )
    db.session.commit()
    page = text_of(client.get(w.url(f"/amendments/{amendment.number}")).text)
    assert "alinea 3, regel 5" in page
    assert "In versie 2 (de laatste): alinea 5, regel 7" in page


def test_the_diff_names_lines_in_both_versions(client, login_as, app):
    w = build_world(body=BODY)
    service.create_version(
        w.position,
        w.process,
        actor=w.facilitator,
        body=BODY.replace("Eerste alinea.", "Eerste alinea.\n\nNieuw.").replace("woord39", "einde"),
        change_summary="Aangepast.",
    )
    db.session.commit()
    login_as(w.person("vng"))
    page = text_of(client.get(w.url("/diff?from=1&to=2")).text)
    assert "regels 4–8 (eerder: 3–7)" in page
    assert "regels 3" in page  # the new paragraph


def _round_closed(w, amendment_text):
    p = w.v1.paragraphs
    a = propose(w, paragraph_anchor=p[2].anchor, proposed_text=amendment_text)
    decide(w, a, AmendmentState.REJECTED, reason="Niet nodig.")
    processes.close_round(w.process.rounds[0], actor=w.facilitator)
    db.session.commit()
    return a


def test_the_disposition_report_lines_match_the_draft_pdf(client, login_as, app, tmp_path):
    pdftotext = require_tool("pdftotext")
    w = build_world(body=BODY)
    _round_closed(w, LONG.replace("woord30", "ANDERS").replace("woord31", "OOK"))
    login_as(w.person("vng"))
    report = text_of(
        client.get(
            f"/processes/{w.process.slug}/positions/rounds/{w.process.rounds[0].id}/disposition"
        ).text
    )
    match = re.search(r"alinea 3, regel (\d+)", report)
    assert match, report
    line = int(match.group(1))
    response = client.get(w.url("/versions/1.pdf"))
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")
    assert len(PdfReader(io.BytesIO(response.data)).pages) == 1
    path = tmp_path / "concept.pdf"
    path.write_bytes(response.data)
    out = subprocess.run(
        [pdftotext, "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    printed = {
        int(m.group(1)): m.group(2).strip()
        for m in re.finditer(r"^\s+(\d+)\s+(\S.*)$", out, re.MULTILINE)
    }
    # The line the report names holds the words the amendment changes, in the PDF too.
    assert "woord30" in printed[line] and "woord31" in printed[line]
    assert printed[1] == "# Inbreng"
    assert printed[8] == "Slotalinea."
    csv_text = client.get(
        f"/processes/{w.process.slug}/positions/rounds/{w.process.rounds[0].id}/disposition.csv"
    ).data.decode("utf-8-sig")
    assert f"alinea 3, regel {line}" in csv_text


def test_outsiders_get_no_draft_pdf(client, login_as, app):
    w = build_world(body=BODY)
    login_as(w.person("x"))
    assert client.get(w.url("/versions/1.pdf")).status_code == 404
    assert client.get(w.url("/versions/1?lines=1")).status_code == 404
