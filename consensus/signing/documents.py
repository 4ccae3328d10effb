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

from flask import current_app
from flask_babel import force_locale

from consensus.formats import cldr
from consensus.formats.markdown import render_markdown

if TYPE_CHECKING:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.timestamps import TimeStamper
    from pyhanko_certvalidator import ValidationContext

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
            date_text=cldr.format_day(content.letter_date, "d MMMM y"),
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
            moment_text=cldr.format_moment(text.signed_at, "d MMMM y, HH:mm"),
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
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

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
    timestamper: TimeStamper | None = None,
    validation_context: ValidationContext | None = None,
) -> bytes:
    """Append one PAdES signature (with its visible stamp) as an incremental update.

    With a `timestamper` the signature carries an RFC 3161 signature timestamp (PAdES
    B-T). With a `validation_context` the signer's certificate is validated first (a
    revoked or untrusted certificate raises, nothing is written) and its validation data
    (certificates, CRLs/OCSP responses) is added to the document security store."""
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
        embed_validation_info=validation_context is not None,
        validation_context=validation_context,
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    output = io.BytesIO()
    if box is None:
        pdf_signer = signers.PdfSigner(
            meta,
            signer,
            timestamper=timestamper,
            new_field_spec=fields.SigFieldSpec(field_name),
        )
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
            timestamper=timestamper,
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


def seal_for_long_term(
    pdf: bytes, *, timestamper: TimeStamper, validation_context: ValidationContext
) -> bytes:
    """PAdES B-LTA: add every signature's validation data (certificates and revocation
    information, and those of their timestamps) to the document security store, then a
    document timestamp over the whole, whose own validation data is added too. Each step
    is an incremental update; the signatures are not touched."""
    return _without_event_loop(_seal_for_long_term, pdf, timestamper, validation_context)


def _seal_for_long_term(
    pdf: bytes, timestamper: TimeStamper, validation_context: ValidationContext
) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.validation import add_validation_info

    for index in range(len(PdfFileReader(io.BytesIO(pdf)).embedded_signatures)):
        embedded = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[index]
        output = io.BytesIO()
        add_validation_info(embedded, validation_context, output=output, force_write=True)
        pdf = output.getvalue()
    output = io.BytesIO()
    signers.PdfTimeStamper(timestamper).timestamp_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)),
        "sha256",
        validation_context,
        output=output,
    )
    return output.getvalue()


@dataclass(frozen=True)
class LongTermCheck:
    """One signature judged as ETSI EN 319 102-1 says (pyHanko's AdES validation), offline:
    trust from the given roots only, revocation from what the letter embeds plus the CRLs
    given (so a revocation after the signature's timestamp is known and weighed)."""

    field_name: str
    signer_cert: asn1_x509.Certificate
    passed: bool
    indication: str
    timestamped: bool
    best_signature_time: datetime | None
    trusted: bool
    intact: bool
    failure: str


def check_long_term(
    pdf: bytes, trust_roots: Sequence[asn1_x509.Certificate], crls_der: Sequence[bytes]
) -> list[LongTermCheck]:
    return _without_event_loop(_check_long_term, pdf, list(trust_roots), list(crls_der))


def _check_long_term(
    pdf: bytes, trust_roots: list[asn1_x509.Certificate], crls_der: list[bytes]
) -> list[LongTermCheck]:
    from asn1crypto import crl as asn1_crl
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (
        LocalKnowledge,
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.authority import CertTrustAnchor
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
    from pyhanko_certvalidator.policy_decl import (
        REQUIRE_REVINFO,
        CertRevTrustPolicy,
        FreshnessReqType,
    )
    from pyhanko_certvalidator.registry import SimpleTrustManager
    from pyhanko_certvalidator.revinfo.archival import CRLContainer

    cert_policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(
            trust_roots=[CertTrustAnchor(root) for root in trust_roots]
        ),
        revinfo_policy=CertRevTrustPolicy(
            REQUIRE_REVINFO,
            freshness=None,
            freshness_req_type=FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION,
        ),
    )
    spec = PdfSignatureValidationSpec(
        signature_validation_spec=SignatureValidationSpec(
            cert_validation_policy=cert_policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
            local_knowledge=LocalKnowledge(
                known_crls=[CRLContainer(asn1_crl.CertificateList.load(der)) for der in crls_der]
            ),
        ),
        diff_policy=DEFAULT_DIFF_POLICY,
    )
    reader = PdfFileReader(io.BytesIO(pdf))
    checks = []
    for embedded in reader.embedded_regular_signatures:
        if not _has_signature_timestamp(embedded):
            # No trusted time: judged now, as a basic signature (its claimed time proves
            # nothing, so a certificate revoked since makes it invalid: that is honest).
            basic = validate_pdf_signature(
                embedded,
                ValidationContext(
                    trust_roots=trust_roots,
                    crls=crls_der,
                    allow_fetching=False,
                    revocation_mode="hard-fail",
                ),
            )
            checks.append(
                LongTermCheck(
                    field_name=embedded.field_name,
                    signer_cert=embedded.signer_cert,
                    passed=basic.bottom_line,
                    indication="VALID" if basic.bottom_line else "INVALID",
                    timestamped=False,
                    best_signature_time=embedded.self_reported_timestamp,
                    trusted=basic.trusted,
                    intact=basic.intact,
                    failure="" if basic.bottom_line else basic.summary(),
                )
            )
            continue
        result = asyncio.run(
            ades_lta_validation(embedded, spec, timing_info=ValidationTimingInfo.now())
        )
        status = result.api_status
        checks.append(
            LongTermCheck(
                field_name=embedded.field_name,
                signer_cert=embedded.signer_cert,
                passed=result.ades_subindic.status.name == "PASSED",
                indication=result.ades_subindic.name,
                timestamped=True,
                best_signature_time=result.best_signature_time,
                trusted=bool(status is not None and status.trusted),
                intact=bool(status is not None and status.intact),
                failure=result.failure_msg or "",
            )
        )
    return checks


def _has_signature_timestamp(embedded: object) -> bool:
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

    signer_info = embedded.signer_info  # type: ignore[attr-defined]
    return any(True for _ in extract_tst_data_iter(signer_info, signed=False))


def has_document_timestamp(pdf: bytes) -> bool:
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(pdf))
    return any(
        signature.sig_object_type == "/DocTimeStamp" for signature in reader.embedded_signatures
    )


def timestamp_authority_certificates(pdf: bytes) -> list[asn1_x509.Certificate]:
    """The certificates of the timestamping authorities whose tokens the letter carries
    (signature timestamps and document timestamps), each once, in order of appearance."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

    found: dict[bytes, asn1_x509.Certificate] = {}
    reader = PdfFileReader(io.BytesIO(pdf))
    for embedded in reader.embedded_signatures:
        tokens = [embedded.signed_data] if embedded.sig_object_type == "/DocTimeStamp" else []
        tokens += list(extract_tst_data_iter(embedded.signer_info, signed=False))
        for token in tokens:
            for choice in token["certificates"]:
                cert = choice.chosen
                if not isinstance(cert, asn1_x509.Certificate):
                    continue
                usage = cert.extended_key_usage_value
                if usage is not None and "time_stamping" in usage.native:
                    found.setdefault(cert.sha256, cert)
    return list(found.values())
