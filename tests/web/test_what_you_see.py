"""What you see is what you sign, through the app: hidden characters are refused in new text
(forms name them), stored ones are shown as markers on every page, every character of a
version stays visible in the letter and report PDFs (pdftotext), and every CSV cell opens
as text. docs/signing.md states the rules."""

from __future__ import annotations

import csv
import html
import io
import re
import subprocess
import unicodedata
from datetime import date
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from consensus.domain.canonical import canonicalise, is_hidden, mark_hidden, sha256_hex
from consensus.extensions import db
from consensus.models import (
    Amendment,
    AmendmentState,
    Comment,
    MembershipRole,
    Position,
    Version,
    VersionParagraph,
)
from consensus.services import endorsements, processes
from consensus.services import positions as service
from consensus.services.errors import DomainError
from consensus.signing import documents as letters
from tests.endorsement_support import make_world as make_endorsement_world
from tests.signing_support import make_signing_world, sign_as
from tests.tools import require_tool
from tests.web.test_positions import build_world, decide, propose

RLO, PDF_, ZWSP, SHY, BOM, LRI = "\u202e", "\u202c", "\u200b", "\u00ad", "\ufeff", "\u2066"
TROJAN = f"abc{RLO}fdp.exe{PDF_}"
MARK = "\u27e8U+202E\u27e9"
# A token without spaces as long as the one that ran off the page (4,860 characters), and a
# long address.
TOKEN = "".join("abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(4860))
URL = "https://example.org/" + "map/" * 60 + "document.pdf?versie=" + "7" * 150


def squeeze(text: str) -> str:
    """Whitespace normalised away (PDF text extraction breaks lines where it likes)."""
    return "".join(unicodedata.normalize("NFC", text).split())


def pdf_text(pdf: bytes, tmp_path, name: str = "doc.pdf") -> str:
    """What pdftotext reads on the pages, without the running header and footer (they sit
    in the top and bottom margins and would cut a word broken across pages in two)."""
    pdftotext = require_tool("pdftotext")
    path = tmp_path / name
    path.write_bytes(pdf)
    # A4 in points; keep 20 mm to 276 mm from the top (the margins are 22 mm and more).
    return subprocess.run(
        [pdftotext, "-x", "0", "-y", "57", "-W", "596", "-H", "725", str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


class _ParagraphTexts:
    """The text shown in the paragraphs of a version page (what a reader sees)."""

    def __init__(self, page: str) -> None:
        self.parts = [
            html.unescape(re.sub(r"<[^>]+>", "", inner))
            for inner in re.findall(
                r'<div class="c-para__text c-prose">(.*?)</div>', page, flags=re.S
            )
        ]


# --- New text: refused, with the character and its place named -------------------------------


def test_a_new_version_with_a_bidi_override_is_refused_and_named(client, login_as, app):
    w = build_world()
    login_as(w.facilitator)
    body = w.v1.body + f"\nDe bijlage heet {TROJAN}.\n"
    for action in ("preview", "create"):
        response = client.post(
            w.url("/versions/new"),
            data={"organisation_id": "0", "body": body, "change_summary": "x", "action": action},
        )
        assert response.status_code == 400
        assert "U+202E (RIGHT-TO-LEFT OVERRIDE) op regel 12, teken 20" in response.text
        assert "U+202C (POP DIRECTIONAL FORMATTING) op regel 12, teken 28" in response.text
        # The form shows the text again with the characters marked where they are ...
        assert f"abc{MARK}fdp.exe" in response.text and RLO not in response.text
    assert db.session.execute(select(func.count(Version.id))).scalar_one() == 1
    # ... and sending the marks back is refused too: nothing hidden gets in by accident.
    response = client.post(
        w.url("/versions/new"),
        data={
            "organisation_id": "0",
            "body": body.replace(RLO, MARK).replace(PDF_, ""),
            "change_summary": "x",
            "action": "create",
        },
    )
    assert response.status_code == 400 and "aanduiding van een onzichtbaar teken" in response.text
    assert db.session.execute(select(func.count(Version.id))).scalar_one() == 1


def test_amendments_reasons_comments_and_letter_details_are_checked(client, login_as, app):
    w = build_world()
    target = w.v1.paragraphs[2]
    login_as(w.person("vng"))
    data = {
        "organisation_id": w.vng.id,
        "kind": "replace",
        "paragraph": target.anchor,
        "proposed_text": f"Als{ZWSP}gelijkwaardige partners.",
        "rationale": "Omdat.",
    }
    response = client.post(w.url("/versions/1/amendments/new"), data=data)
    assert response.status_code == 400 and "U+200B (ZERO WIDTH SPACE)" in response.text
    data.update(proposed_text="Als volwaardige partners.", rationale=f"Om{SHY}dat.")
    response = client.post(w.url("/versions/1/amendments/new"), data=data)
    assert response.status_code == 400 and "U+00AD (SOFT HYPHEN)" in response.text
    assert db.session.execute(select(func.count(Amendment.id))).scalar_one() == 0

    response = client.post(
        w.url("/versions/1/comments"),
        data={"organisation_id": w.vng.id, "body": f"Eens{BOM} hoor"},
    )
    assert response.status_code in {200, 400} and "U+FEFF" in response.text
    assert db.session.execute(select(func.count(Comment.id))).scalar_one() == 0

    amendment = propose(w, paragraph_anchor=target.anchor, proposed_text="Als partners.")
    login_as(w.facilitator)
    response = client.post(
        w.url(f"/amendments/{amendment.number}/decide"),
        data={"decision": "rejected", "reason": f"Nee {LRI}want{PDF_}"},
    )
    assert response.status_code in {302, 400}
    db.session.refresh(amendment)
    assert amendment.state == AmendmentState.PENDING
    with pytest.raises(DomainError, match=r"U\+2066"):
        decide(w, amendment, AmendmentState.REJECTED, reason=f"Nee {LRI}want")

    response = client.post(
        w.url("/edit"),
        data={"title": "Brief", "addressee": f"De minister{RLO}\nPostbus 1", "place": "Den Haag"},
    )
    assert response.status_code == 400 and "U+202E" in response.text
    db.session.refresh(w.position)
    assert RLO not in w.position.addressee


def test_stance_texts_are_checked(app):
    w = make_endorsement_world(2)
    org = w.orgs[0]
    with pytest.raises(DomainError, match=r"U\+202E") as refused:
        endorsements.cast_stance(
            w.round,
            actor=w.reps[org.id],
            organisation=org,
            kind=endorsements.StanceKind.ENDORSE_WITH_RESERVATIONS,
            text=f"Mits {TROJAN}",
        )
    assert refused.value.field == "text"


def test_new_text_is_stored_in_nfc(client, login_as, app):
    w = build_world()
    decomposed = "Cafe\u0301 en re\u0301sume\u0301"
    amendment = propose(
        w,
        paragraph_anchor=w.v1.paragraphs[2].anchor,
        proposed_text=decomposed,
        rationale=decomposed,
    )
    assert amendment.proposed_text == amendment.rationale == "Caf\u00e9 en r\u00e9sum\u00e9"


# --- Text stored before the rule: shown with markers, never reordered --------------------------


def _legacy_world():
    """A world whose data holds hidden characters, as if written before the input rule (the
    rows are changed underneath the services; versions keep their own hash)."""
    w = build_world()
    target = w.v1.paragraphs[2]
    amendment = propose(w, paragraph_anchor=target.anchor, proposed_text="Als partners.")
    comment = service.add_comment(
        w.v1, w.process, actor=w.person("vng"), organisation=w.vng, body="Eens."
    )
    db.session.commit()
    legacy_text = f"Zie bijlage {TROJAN}."
    body = w.v1.body.replace(target.text, legacy_text)
    db.session.execute(
        update(Version).where(Version.id == w.v1.id).values(body=body, sha256=sha256_hex(body))
    )
    db.session.execute(
        update(VersionParagraph).where(VersionParagraph.id == target.id).values(text=legacy_text)
    )
    db.session.execute(
        update(Amendment)
        .where(Amendment.id == amendment.id)
        .values(proposed_text=f"Als {TROJAN}", rationale=f"Om{ZWSP}dat {TROJAN}")
    )
    db.session.execute(update(Comment).where(Comment.id == comment.id).values(body=TROJAN))
    db.session.execute(
        update(Position).where(Position.id == w.position.id).values(subject=f"Onderwerp {TROJAN}")
    )
    db.session.commit()
    db.session.expire_all()
    return w, amendment, body


def test_stored_hidden_characters_are_marked_on_every_page(client, login_as, app):
    w, amendment, body = _legacy_world()
    processes.close_round(w.process.rounds[0], actor=w.facilitator)
    db.session.commit()
    report = f"/processes/{w.process.slug}/positions/rounds/{w.process.rounds[0].id}/disposition"
    pages = [
        w.url("/versions/1"),
        w.url("/versions"),
        w.url("/amendments"),
        w.url(f"/amendments/{amendment.number}"),
        w.url("/diff?from=1&to=1"),
        f"/processes/{w.process.slug}",
        report,
    ]
    # Pages that show the text, an amendment or the comment (the others list them).
    marked = {pages[0], pages[2], pages[3], pages[4], pages[6]}
    for viewer in (w.facilitator, w.person("vng"), w.person("ipo", MembershipRole.OBSERVER)):
        login_as(viewer)
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, url
            shown = response.get_data(as_text=True)
            assert not [c for c in shown if is_hidden(c) and c not in "\x00"], url
            if url in marked:
                assert MARK in shown, url
    # The exact text is still the stored text: its download keeps the hash.
    download = client.get(w.url("/versions/1.md"))
    assert download.data == body.encode() and RLO in download.get_data(as_text=True)
    # The CSV export shows the marks too (a spreadsheet would reorder the text otherwise).
    login_as(w.facilitator)
    exported = client.get(report + ".csv").data.decode("utf-8-sig")
    assert RLO not in exported and MARK in exported


def test_no_new_version_carries_a_stored_hidden_character(client, login_as, app):
    w, amendment, _ = _legacy_world()
    other = propose(w, paragraph_anchor=w.v1.paragraphs[1].anchor, proposed_text="Dank u.")
    with pytest.raises(DomainError, match=r"U\+202E"):
        decide(w, amendment, AmendmentState.ACCEPTED)  # its proposal holds one
    decide(w, other, AmendmentState.ACCEPTED)
    login_as(w.facilitator)
    preview = client.get(w.url("/apply"))
    sha = re.search(r'name="preview_sha256"[^>]*value="([0-9a-f]{64})"', preview.text).group(1)
    response = client.post(w.url("/apply"), data={"preview_sha256": sha, "change_summary": ""})
    assert "U+202E" in response.get_data(as_text=True)
    assert db.session.execute(select(func.count(Version.id))).scalar_one() == 1
    # The editor shows the stored character as its mark, so the facilitator sees what to fix.
    form = client.get(w.url("/versions/new")).text
    assert f"abc{MARK}fdp.exe" in form


# --- Accepted text: the page shows exactly the canonical text (hypothesis) --------------------

HIDDEN_SAMPLES = [RLO, PDF_, ZWSP, SHY, BOM, LRI, "\u200d", "\u2069", "\u200e", "\ufe0f"]
# Letters of every script, marks, digits and spaces: no character Markdown gives a meaning,
# so what is shown must be the text itself. Hidden characters are mixed in.
_words = st.text(
    st.one_of(
        st.characters(categories=["L", "M", "Nd", "Zs"], codec="utf-8"),
        st.sampled_from(list(",;:!?'\"€") + HIDDEN_SAMPLES),
    ),
    min_size=1,
    max_size=40,
)
_bodies = st.lists(
    st.lists(_words, min_size=1, max_size=6).map(" ".join), min_size=1, max_size=4
).map("\n\n".join)
_serial = count(2)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=_bodies)
def test_a_page_shows_exactly_the_canonical_text_or_the_text_is_refused(
    client, login_as, world_for_hypothesis, text
):
    w = world_for_hypothesis
    login_as(w.facilitator)
    body = f"Versie {next(_serial)}\n\n{text}"
    before = db.session.execute(select(func.count(Version.id))).scalar_one()
    response = client.post(
        w.url("/versions/new"),
        data={"organisation_id": "0", "body": body, "change_summary": "x", "action": "create"},
    )
    canonical = canonicalise(body)
    hidden = [c for c in canonical if is_hidden(c)]
    if hidden:
        assert response.status_code == 400
        assert f"U+{ord(hidden[0]):04X}" in response.text
        assert db.session.execute(select(func.count(Version.id))).scalar_one() == before
        return
    assert response.status_code == 302, response.text[:2000]
    page = client.get(response.headers["Location"]).text
    shown = " ".join(_ParagraphTexts(page).parts)
    assert squeeze(shown) == squeeze(canonical)
    assert not [c for c in page if is_hidden(c) and c != "\x00"]


@pytest.fixture
def world_for_hypothesis(app):
    return build_world()


# --- PDFs: every character of the text stays on the page -------------------------------------


LONG_BODY = f"""Geachte minister,

{TOKEN}

Zie {URL} voor de achtergrond.

Meer in [de bijlage]({URL}).
"""


def test_the_letters_show_every_character_of_a_long_token_and_address(tmp_path, login_as, app):
    world = make_signing_world(body=LONG_BODY)
    org = world.orgs[0]
    client = login_as(world.reps[org.id])
    base = f"/processes/{world.process.slug}/signing"
    sign_as(world, org)  # the letter is laid out for the first signature
    db.session.commit()
    unsigned = pdf_text(client.get(f"{base}/letter-unsigned.pdf").data, tmp_path, "u.pdf")
    signed = pdf_text(client.get(f"{base}/letter.pdf").data, tmp_path, "s.pdf")
    for shown in (unsigned, signed):
        flat = squeeze(shown)
        assert squeeze(TOKEN) in flat
        assert squeeze(f"Zie {URL} voor de achtergrond.") in flat
        assert squeeze(f"de bijlage ({URL}).") in flat  # a link's address is printed too


def test_the_disposition_report_pdf_shows_every_character(tmp_path, client, login_as, app):
    w = build_world()
    long_text = f"{TOKEN}\n\nZie {URL}."
    amendment = propose(
        w, paragraph_anchor=w.v1.paragraphs[2].anchor, proposed_text=long_text, rationale=URL
    )
    decide(w, amendment, AmendmentState.ACCEPTED, reason='=HYPERLINK("https://x.example")')
    processes.close_round(w.process.rounds[0], actor=w.facilitator)
    db.session.commit()
    login_as(w.facilitator)
    url = f"/processes/{w.process.slug}/positions/rounds/{w.process.rounds[0].id}/disposition.pdf"
    flat = squeeze(pdf_text(client.get(url).data, tmp_path))
    assert squeeze(TOKEN) in flat
    assert squeeze(f"Zie {URL}.") in flat
    assert squeeze(URL) in flat.replace(squeeze(f"Zie {URL}."), "")  # the rationale too


# Scripts whose text pdftotext gives back in reading order (it reorders right-to-left runs
# itself, so those are checked on the pages above, where order is logical).
_pdf_chars = st.one_of(
    st.characters(min_codepoint=0x41, max_codepoint=0x5A),
    st.characters(min_codepoint=0x61, max_codepoint=0x7A),
    st.characters(min_codepoint=0xC0, max_codepoint=0x17F, categories=["L"]),
    st.characters(min_codepoint=0x391, max_codepoint=0x3C9, categories=["L"]),
    st.characters(min_codepoint=0x410, max_codepoint=0x44F),
    st.characters(min_codepoint=0x30, max_codepoint=0x39),
    st.sampled_from(list(",;:!?€") + HIDDEN_SAMPLES),
)
_pdf_words = st.one_of(
    st.text(_pdf_chars, min_size=1, max_size=30),
    st.text(_pdf_chars, min_size=200, max_size=1500),  # longer than a line
)
_pdf_bodies = st.lists(
    st.lists(_pdf_words, min_size=1, max_size=5).map(" ".join), min_size=1, max_size=3
).map("\n\n".join)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_pdf_bodies)
def test_the_letter_shows_the_canonical_text_with_hidden_characters_marked(app, tmp_path, body):
    """Accepted text comes out of the letter exactly; a stored hidden character comes out as
    its visible mark, so it can change neither what is shown nor its order."""
    canonical = canonicalise(body)
    content = letters.LetterContent(
        title="Brief",
        subject="Onderwerp",
        addressee="De minister",
        place="Den Haag",
        letter_date=date(2026, 12, 1),
        reference="K-1",
        body=canonical,
        version_number=1,
        version_sha256=sha256_hex(canonical),
        process_title="Proces",
        signatories=[letters.Signatory("vng", "VNG")],
    )
    shown = pdf_text(letters.render_letter(content).pdf, tmp_path)
    assert squeeze(mark_hidden(canonical)) in squeeze(shown)
    assert not [c for c in shown if is_hidden(c) and c not in "\x0c"]


# --- CSV: every cell opens as text -------------------------------------------------------------


FORMULAS = [
    '=HYPERLINK("https://evil.example","klik")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-1+1",
    "\uff1d1+1",
]


def test_the_disposition_csv_neutralises_formula_cells(client, login_as, app):
    w = build_world()
    p = w.v1.paragraphs
    amendments = []
    for n, formula in enumerate(FORMULAS):
        amendments.append(
            propose(
                w, paragraph_anchor=p[n % 4 + 1].anchor, proposed_text=formula, rationale=formula
            )
        )
    decide(w, amendments[0], AmendmentState.REJECTED, reason="@SUM(1+1)")
    service.add_comment(w.v1, w.process, actor=w.person("vng"), organisation=w.vng, body="=1+1")
    db.session.commit()
    login_as(w.facilitator)
    url = f"/processes/{w.process.slug}/positions/rounds/{w.process.rounds[0].id}/disposition.csv"
    response = client.get(url)
    assert response.status_code == 200
    text = response.data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    cells = [cell for row in rows for cell in row]
    for formula in FORMULAS:
        assert "'" + formula in cells
    for cell in cells:
        assert not cell or cell[0] not in "=+-@\t\r\n\uff1d\uff0b\uff0d\uff20", cell
    # Every field is quoted (so a cell cannot spill into the next one).
    quoted = io.StringIO()
    csv.writer(quoted, quoting=csv.QUOTE_ALL).writerows(rows)
    assert text == quoted.getvalue()
