"""The joint letter as a PDF: laid out by WeasyPrint (PDF/A-3a, tagged), signed by pyHanko.

Each organisation's signature is an incremental PAdES update that also draws a visible
stamp (signer, title, organisation, time) into the organisation's box in the signatories
block. Earlier revisions are never rewritten, so every earlier signature stays valid.
The stamp is itself a tiny WeasyPrint PDF, so its fonts are embedded like the letter's.
"""

from __future__ import annotations

import asyncio
import io
import json
import tempfile
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import current_app
from flask_babel import force_locale, format_date, format_datetime

from consensus.formats.markdown import render_markdown

if TYPE_CHECKING:
    from asn1crypto import x509 as asn1_x509

# pyHanko (with asn1crypto and its certificate validator) and WeasyPrint are imported inside
# the functions that use them: a web worker that never signs or lays out a letter does not
# carry them (issue 23; tests/unit/test_lean_import.py).

T = TypeVar("T")
CSS_PX_TO_PT = 0.75  # WeasyPrint lays out in CSS pixels (96 per inch); PDF uses points (72)


@dataclass(frozen=True)
class Signatory:
    """An organisation in the signatories block, with its reservation (a footnote)."""

    slug: str
    name: str
    reservation: str = ""


@dataclass(frozen=True)
class LetterContent:
    """Everything the letter shows; the body is the version's canonical Markdown."""

    title: str
    subject: str
    addressee: str
    place: str
    letter_date: date
    reference: str
    body: str
    version_number: int
    version_sha256: str
    process_title: str
    signatories: Sequence[Signatory] = field(default_factory=tuple)


@dataclass(frozen=True)
class RenderedLetter:
    pdf: bytes
    # slug -> (page index, x1, y1, x2, y2) in PDF points, origin bottom left.
    boxes: dict[str, tuple[int, float, float, float, float]]

    def boxes_json(self) -> str:
        return json.dumps(self.boxes, sort_keys=True)


def _without_event_loop(function: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run a pyHanko call, whose synchronous API starts its own event loop, in a worker
    thread when this thread already runs one (e.g. under Playwright's sync API)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def render_template(name: str, **context: object) -> str:
    """Render without a request (the CLI demo and tests lay out letters too)."""
    return current_app.jinja_env.get_template(name).render(**context)


def box_id(slug: str) -> str:
    return f"signature-{slug}"


def render_letter(content: LetterContent) -> RenderedLetter:
    """Lay out the letter (always in Dutch) and note where each signature box landed."""
    from weasyprint import HTML

    with force_locale("nl"):
        html = render_template(
            "letters/letter.html",
            letter=content,
            body=render_markdown(content.body),
            date_text=format_date(content.letter_date, "d MMMM y"),
        )
    document = HTML(string=html, base_url=".").render()
    boxes: dict[str, tuple[int, float, float, float, float]] = {}
    for index, page in enumerate(document.pages):
        height_pt = page.height * CSS_PX_TO_PT
        for signatory in content.signatories:
            anchor = page.anchors.get(box_id(signatory.slug))
            if anchor is not None and signatory.slug not in boxes:
                x1, y1, x2, y2 = anchor
                boxes[signatory.slug] = (
                    index,
                    round(x1 * CSS_PX_TO_PT, 2),
                    round(height_pt - y2 * CSS_PX_TO_PT, 2),
                    round(x2 * CSS_PX_TO_PT, 2),
                    round(height_pt - y1 * CSS_PX_TO_PT, 2),
                )
    with warnings.catch_warnings():
        # WeasyPrint opens its sRGB profile for PDF/A and never closes it (a
        # ResourceWarning when the file object is freed, inside this call).
        warnings.simplefilter("ignore", ResourceWarning)
        pdf = document.write_pdf(pdf_variant="pdf/a-3a")
    assert pdf is not None
    return RenderedLetter(pdf=bytes(pdf), boxes=boxes)


@dataclass(frozen=True)
class StampText:
    signer_name: str
    signer_title: str
    organisation_name: str
    signed_at: datetime
    fingerprint: str


def render_stamp(text: StampText, width_pt: float, height_pt: float) -> bytes:
    """The visible part of one signature, the size of its box."""
    from weasyprint import HTML

    with force_locale("nl"):
        html = render_template(
            "letters/stamp.html",
            stamp=text,
            width=width_pt,
            height=height_pt,
            moment_text=format_datetime(text.signed_at, "d MMMM y, HH:mm"),
        )
    pdf = HTML(string=html).write_pdf()
    assert pdf is not None
    return bytes(pdf)


@dataclass(frozen=True)
class PdfCredentials:
    """An organisation's certificate, its private key (PKCS#8 DER) and its chain."""

    certificate_pem: str
    private_key_der: bytes
    chain_pem: Sequence[str]


def _asn1_cert(pem: str) -> asn1_x509.Certificate:
    from asn1crypto import x509 as asn1_x509

    cert = x509.load_pem_x509_certificate(pem.encode())
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign_pdf(
    pdf: bytes,
    *,
    credentials: PdfCredentials,
    field_name: str,
    box: tuple[int, float, float, float, float] | None,
    stamp: StampText,
    reason: str,
    location: str,
) -> bytes:
    """Append one PAdES signature (with its visible stamp) as an incremental update."""
    from asn1crypto import keys as asn1_keys
    from pyhanko.pdf_utils.content import ImportedPdfPage
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import StaticStampStyle
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    signer = signers.SimpleSigner(
        signing_cert=_asn1_cert(credentials.certificate_pem),
        signing_key=asn1_keys.PrivateKeyInfo.load(credentials.private_key_der),
        cert_registry=SimpleCertificateStore.from_certs(
            [_asn1_cert(pem) for pem in credentials.chain_pem]
        ),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        name=stamp.signer_name,
        reason=reason,
        location=location,
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    output = io.BytesIO()
    if box is None:
        pdf_signer = signers.PdfSigner(meta, signer, new_field_spec=fields.SigFieldSpec(field_name))
        _without_event_loop(pdf_signer.sign_pdf, writer, output=output)
        return output.getvalue()
    page, x1, y1, x2, y2 = box
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        # pyHanko imports a stamp page from a file name.
        handle.write(render_stamp(stamp, x2 - x1, y2 - y1))
        handle.flush()
        style = StaticStampStyle(background=ImportedPdfPage(handle.name), border_width=0)
        pdf_signer = signers.PdfSigner(
            meta,
            signer,
            stamp_style=style,
            new_field_spec=fields.SigFieldSpec(field_name, on_page=page, box=(x1, y1, x2, y2)),
        )
        _without_event_loop(pdf_signer.sign_pdf, writer, output=output)
    return output.getvalue()


@dataclass(frozen=True)
class PdfSignatureCheck:
    field_name: str
    signer_subject: str
    intact: bool
    valid: bool
    trusted: bool
    signed_at: datetime | None
    summary: str


def validate_pdf(pdf: bytes, trust_pem: Sequence[str]) -> list[PdfSignatureCheck]:
    """Check every signature in `pdf` against our own CA(s), offline (no revocation)."""
    return _without_event_loop(_validate_pdf, pdf, trust_pem)


def _validate_pdf(pdf: bytes, trust_pem: Sequence[str]) -> list[PdfSignatureCheck]:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    roots = [_asn1_cert(pem) for pem in trust_pem]
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    reader = PdfFileReader(io.BytesIO(pdf))
    checks = []
    for embedded in reader.embedded_signatures:
        status = validate_pdf_signature(embedded, context)
        checks.append(
            PdfSignatureCheck(
                field_name=embedded.field_name,
                signer_subject=status.signing_cert.subject.human_friendly,
                intact=status.intact,
                valid=status.valid,
                trusted=status.trusted,
                signed_at=embedded.self_reported_timestamp,
                summary=status.summary(),
            )
        )
    return checks
