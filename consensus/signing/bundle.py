"""The verification bundle: everything needed to check the co-signatures without us.

`verification-<process>.zip` holds exactly: text.md, letter.pdf, letter-unsigned.pdf,
statement-<org>.json and statement-<org>.json.sig per signer, allowed_signers, ca.pem
(the platform's CA(s) and the configured trust anchors), tsa.pem (the timestamping
authorities' certificates, when the letter carries timestamps), board.jsonl and VERIFY.md,
whose commands use only sha256sum, head, ssh-keygen, pdfsig and pyhanko.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from flask_babel import force_locale

from consensus import signing
from consensus.domain.canonical import canonical_bytes
from consensus.models import CoSignature, JointLetter, Process, Round, SigningKey, Version
from consensus.signing import documents, longterm
from consensus.signing.documents import render_template

ZIP_TIME = (2000, 1, 1, 0, 0, 0)  # fixed, so the same content gives the same zip


@dataclass(frozen=True)
class BundleSignature:
    organisation_slug: str
    organisation_name: str
    signer_name: str
    signer_title: str
    fingerprint: str
    verify_time: str
    statement_name: str
    key_revoked: bool
    custody: str
    # The PAdES signature, judged as the platform page judges it (docs/signing.md).
    level: str = ""
    time_source: str = ""
    pdf_signed_at: str = ""
    pdf_valid: bool = False


def _pdf_facts(assessment: longterm.Assessment | None) -> dict[str, object]:
    if assessment is None:
        return {"level": "not in the letter", "time_source": "", "pdf_signed_at": ""}
    return {
        "level": assessment.level_english,
        "time_source": "timestamping authority (RFC 3161)"
        if assessment.timestamped
        else "the platform's clock",
        "pdf_signed_at": assessment.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        if assessment.signed_at
        else "",
        "pdf_valid": assessment.valid,
    }


def bundle_name(process: Process) -> str:
    return f"verification-{process.slug}.zip"


def _board_lines(process: Process) -> Iterable[str]:
    """The endorsement board, one JSON object per line (the endorsements service's)."""
    from consensus.services import endorsements

    for line in endorsements.board_lines(process):
        yield json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n"


def _allowed_signers(keys: Iterable[SigningKey]) -> str:
    seen: dict[int, SigningKey] = {}
    for key in keys:
        seen[key.id] = key
    ordered = sorted(seen.values(), key=lambda k: (k.organisation.slug, k.id))
    return "".join(signing.allowed_signers_line(k) + "\n" for k in ordered)


def build(process: Process, round_: Round, letter: JointLetter) -> bytes:
    """The zip as bytes (a letter is a few hundred kB at most, so memory is fine)."""
    version = letter.version
    assert isinstance(version, Version)
    text = canonical_bytes(version.body)
    signatures: list[CoSignature] = signing.current_signatures(round_)
    signed_pdf = letter.signed_pdf or letter.unsigned_pdf
    assessed = longterm.assess(letter.signed_pdf)
    entries = [
        BundleSignature(
            organisation_slug=s.organisation.slug,
            organisation_name=s.organisation.name,
            signer_name=s.signer_name,
            signer_title=s.signer_title,
            fingerprint=s.key.fingerprint,
            verify_time=signing.ssh_verify_time(s),
            statement_name=f"statement-{s.organisation.slug}.json",
            key_revoked=s.key.revoked_at is not None,
            custody=s.custody.value,
            **_pdf_facts(assessed.get(f"Signature-{s.organisation.slug}")),
        )
        for s in signatures
    ]
    from asn1crypto import pem as asn1_pem  # only when a bundle is built (lean web workers)

    tsa_pem = "".join(
        asn1_pem.armor("CERTIFICATE", cert.dump()).decode()
        for cert in documents.timestamp_authority_certificates(signed_pdf)
    )
    with force_locale("en"):
        verify_md = render_template(
            "signing/VERIFY.md",
            process=process,
            version=version,
            text_sha256=hashlib.sha256(text).hexdigest(),
            letter=letter,
            unsigned_size=len(letter.unsigned_pdf),
            signed_sha256=hashlib.sha256(signed_pdf).hexdigest(),
            signatures=entries,
            namespace=signing.NAMESPACE,
            pdf_signed=letter.signed_pdf is not None,
            sealed=letter.sealed_at is not None,
            timestamped=bool(tsa_pem),
        )
    files: list[tuple[str, bytes]] = [
        ("VERIFY.md", verify_md.encode("utf-8")),
        ("text.md", text),
        ("letter.pdf", signed_pdf),
        ("letter-unsigned.pdf", letter.unsigned_pdf),
    ]
    for entry, signature in zip(entries, signatures, strict=True):
        files.append((entry.statement_name, signature.statement))
        files.append((f"{entry.statement_name}.sig", signature.signature.encode("ascii")))
    files.append(("allowed_signers", _allowed_signers(s.key for s in signatures).encode()))
    files.append(("ca.pem", "".join(longterm.anchors_pem()).encode()))
    if tsa_pem:
        files.append(("tsa.pem", tsa_pem.encode()))
    files.append(("board.jsonl", "".join(_board_lines(process)).encode("utf-8")))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
