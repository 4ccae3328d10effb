"""Published documents are accessible too (issue 24, item 10): the joint letter (PDF/A-3a:
PDF/A with the tagged structure of conformance level A) and the disposition report
(PDF/UA-1) carry a structure tree, the document language and a title, and the letter's
signatures still validate after the tagging."""

from __future__ import annotations

import io
import subprocess

from pypdf import PdfReader

from consensus import signing
from consensus.extensions import db
from consensus.models import AmendmentState
from consensus.services import processes
from consensus.signing import documents as letters
from tests.signing_support import make_signing_world, sign_as
from tests.tools import require_tool
from tests.web.test_positions import build_world, decide, propose


def pdfinfo(pdf: bytes, tmp_path, name: str) -> dict[str, str]:
    path = tmp_path / name
    path.write_bytes(pdf)
    out = subprocess.run(
        [require_tool("pdfinfo"), str(path)], check=True, capture_output=True, text=True
    ).stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def structure_kinds(pdf: bytes) -> list[str]:
    """The structure types in the tree, in document order."""
    root = PdfReader(io.BytesIO(pdf)).trailer["/Root"]
    kinds: list[str] = []

    def walk(node) -> None:  # type: ignore[no-untyped-def]
        node = node.get_object()
        if isinstance(node, list):
            for child in node:
                walk(child)
            return
        if not hasattr(node, "get"):
            return
        if "/S" in node:
            kinds.append(str(node["/S"]))
        kids = node.get("/K")
        if kids is not None:
            walk(kids)

    walk(root["/StructTreeRoot"])
    return kinds


def assert_accessible(pdf: bytes, tmp_path, name: str, *, language: str, title: str) -> None:
    info = pdfinfo(pdf, tmp_path, name)
    assert info["Tagged"] == "yes", info
    assert info["Title"] == title
    root = PdfReader(io.BytesIO(pdf)).trailer["/Root"]
    assert str(root["/Lang"]) == language
    assert root["/MarkInfo"]["/Marked"]
    kinds = structure_kinds(pdf)
    assert "/P" in kinds and any(kind in kinds for kind in ("/H1", "/H2", "/H3")), kinds


def test_the_joint_letter_is_tagged_and_its_signatures_still_validate(tmp_path, login_as, app):
    world = make_signing_world()
    org = world.orgs[0]
    client = login_as(world.reps[org.id])
    base = f"/processes/{world.process.slug}/signing"
    sign_as(world, org)
    db.session.commit()
    title = "Gezamenlijke inbreng op de digitaliseringsstrategie"  # the letter's subject
    for name in ("letter-unsigned.pdf", "letter.pdf"):
        response = client.get(f"{base}/{name}")
        assert response.status_code == 200
        assert_accessible(response.data, tmp_path, name, language="nl", title=title)
    # The signature covers the tagged letter and validates (pyHanko, the platform's CA).
    checks = letters.validate_pdf(client.get(f"{base}/letter.pdf").data, signing.all_ca_pem())
    assert len(checks) == 1 and all(c.valid and c.intact for c in checks)


def test_the_disposition_report_is_tagged(tmp_path, client, login_as, app):
    w = build_world()
    amendment = propose(w, paragraph_anchor=w.v1.paragraphs[2].anchor, proposed_text="Nieuw.")
    decide(w, amendment, AmendmentState.REJECTED, reason="Past niet in de strekking.")
    processes.close_round(w.process.rounds[0], actor=w.facilitator)
    db.session.commit()
    login_as(w.facilitator)
    url = f"/processes/{w.process.slug}/positions/rounds/{w.process.rounds[0].id}/disposition.pdf"
    pdf = client.get(url).data
    title = f"Verwerkingsnota — {w.process.rounds[0].title}"
    assert_accessible(pdf, tmp_path, "report.pdf", language="nl", title=title)
