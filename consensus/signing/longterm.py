"""Trusted time and long-term validation of the letter's PDF signatures.

- The timestamping service (`CONSENSUS_TSA_URL`, RFC 3161): with it every PAdES signature
  carries a signature timestamp (PAdES B-T), and the final letter gets every signature's
  validation data and a document timestamp (PAdES B-LTA, `seal_letter`).
- Trust anchors come from files only (`CONSENSUS_TRUST_ANCHORS`, a directory of PEM or DER
  certificates) plus the platform's own CA(s); nothing is fetched to decide what to trust.
- Revocation of the platform CA's certificates: its CRL is made here from the database
  (and served at /pki/ca-<id>.crl for anyone else), so no request is needed for it.
  Revocation data of other PKIs (the TSA's, a qualified provider's) is fetched from the
  addresses their certificates name when a signature is made or sealed; it is then
  embedded in the letter, so later validation needs no network.
- The assurance level of each signature, stated honestly (`assess`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import current_app
from flask_babel import lazy_gettext as _l

from consensus.services.errors import DomainError
from consensus.signing.authority import all_crls_der, trust_anchors_pem

if TYPE_CHECKING:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.timestamps import TimeStamper
    from pyhanko_certvalidator import ValidationContext

# asn1crypto and pyHanko are imported inside the functions: a web worker that never shows a
# signed letter does not load them (issue 23; tests/unit/test_lean_import.py).

log = logging.getLogger(__name__)

ANCHOR_SUFFIXES = (".pem", ".crt", ".cer", ".der")


@contextmanager
def explained_failures(organisation_name: str | None) -> Iterator[None]:
    """Turn what can go wrong at a trusted service into a clear, translated refusal
    (DomainError: the use case's transaction rolls back, nothing is half-signed)."""
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError
    from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

    try:
        yield
    except TimestampRequestError as error:
        log.warning("timestamping service failed: %s", error)
        raise DomainError(
            str(
                _l(
                    "The timestamping service could not be reached, so nothing was signed. "
                    "Try again in a few minutes."
                )
            )
        ) from error
    except (SigningError, PathBuildingError, PathValidationError) as error:
        log.warning("certificate validation failed at signing: %s", error)
        if organisation_name is None:
            raise DomainError(
                str(_l("The letter's validation data could not be gathered: %(why)s", why=error))
            ) from error
        raise DomainError(
            str(
                _l(
                    "The certificate of %(org)s could not be validated (revoked, expired or "
                    "not trusted), so nothing was signed: %(why)s",
                    org=organisation_name,
                    why=error,
                )
            )
        ) from error


def tsa_url() -> str:
    return str(current_app.config.get("TSA_URL") or "")


def timestamper() -> TimeStamper | None:
    from pyhanko.sign.timestamps import HTTPTimeStamper

    url = tsa_url()
    if not url:
        return None
    return HTTPTimeStamper(url, timeout=int(current_app.config.get("TSA_TIMEOUT", 10)))


def anchor_certificates() -> list[asn1_x509.Certificate]:
    """The configured trust anchors, read from the directory (sorted by file name)."""
    from asn1crypto import pem as asn1_pem
    from asn1crypto import x509 as asn1_x509

    folder = str(current_app.config.get("TRUST_ANCHORS") or "")
    found: list[asn1_x509.Certificate] = []
    if not folder:
        return found
    for path in sorted(Path(folder).iterdir()):
        if path.suffix.lower() not in ANCHOR_SUFFIXES or not path.is_file():
            continue
        data = path.read_bytes()
        if asn1_pem.detect(data):
            for kind, _headers, der in asn1_pem.unarmor(data, multiple=True):
                if kind == "CERTIFICATE":
                    found.append(asn1_x509.Certificate.load(der))
        else:
            found.append(asn1_x509.Certificate.load(data))
    return found


def anchors_pem() -> list[str]:
    """Our CA(s) and uploaded chains' roots, then the configured anchors: `ca.pem`."""
    from asn1crypto import pem as asn1_pem

    result = list(trust_anchors_pem())
    for cert in anchor_certificates():
        text = asn1_pem.armor("CERTIFICATE", cert.dump()).decode()
        if text not in result:
            result.append(text)
    return result


def _platform_roots() -> list[asn1_x509.Certificate]:
    from asn1crypto import pem as asn1_pem
    from asn1crypto import x509 as asn1_x509

    roots = []
    for text in trust_anchors_pem():
        _kind, _headers, der = asn1_pem.unarmor(text.encode())
        roots.append(asn1_x509.Certificate.load(der))
    return roots


def validation_context(
    *, fetching: bool, moment: datetime | None = None, require_revocation: bool = True
) -> ValidationContext:
    """Trust: our CA(s) and the configured anchors. Revocation: our CAs' CRLs as of now,
    plus (when `fetching`) whatever other certificates name."""
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(
        trust_roots=_platform_roots() + anchor_certificates(),
        crls=all_crls_der(),
        allow_fetching=fetching,
        revocation_mode="require" if require_revocation else "soft-fail",
        moment=moment,
    )


# The assurance levels, as stored/computed words and their honest description.
QUALIFIED = "qualified"
ADVANCED_QUALIFIED_CERTIFICATE = "advanced_qualified_certificate"
ADVANCED_PLATFORM_CA = "advanced_platform_ca"
ADVANCED_OWN_CERTIFICATE = "advanced_own_certificate"

LEVEL_LABELS = {
    QUALIFIED: _l("Qualified electronic signature"),
    ADVANCED_QUALIFIED_CERTIFICATE: _l(
        "Advanced electronic signature with a qualified certificate"
    ),
    ADVANCED_PLATFORM_CA: _l(
        "Advanced electronic signature (certificate from this platform's own CA)"
    ),
    ADVANCED_OWN_CERTIFICATE: _l(
        "Advanced electronic signature (the organisation's own certificate)"
    ),
}
LEVEL_ENGLISH = {
    QUALIFIED: "qualified electronic signature",
    ADVANCED_QUALIFIED_CERTIFICATE: "advanced electronic signature with a qualified certificate",
    ADVANCED_PLATFORM_CA: "advanced electronic signature (certificate from the platform's own CA)",
    ADVANCED_OWN_CERTIFICATE: "advanced electronic signature (the organisation's own certificate)",
}

# ETSI EN 319 412-5 QC statements.
QC_COMPLIANCE = "0.4.0.1862.1.1"
QC_SSCD = "0.4.0.1862.1.4"
QC_STATEMENTS_EXTENSION = "1.3.6.1.5.5.7.1.3"


@functools.cache
def _qc_statements_type() -> Any:
    """asn1crypto's declaration of RFC 3739's QCStatements (built on first use)."""
    from asn1crypto import core as asn1_core

    class QcStatement(asn1_core.Sequence):
        _fields = [  # noqa: RUF012 - asn1crypto's declaration style
            ("statement_id", asn1_core.ObjectIdentifier),
            ("statement_info", asn1_core.Any, {"optional": True}),
        ]

    class QcStatements(asn1_core.SequenceOf):
        _child_spec = QcStatement

    return QcStatements


def _qc_statements(cert: asn1_x509.Certificate) -> set[str]:
    """The ids of the certificate's QC statements (RFC 3739, ETSI EN 319 412-5)."""
    for extension in cert["tbs_certificate"]["extensions"]:
        if extension["extn_id"].dotted == QC_STATEMENTS_EXTENSION:
            try:
                value = _qc_statements_type().load(bytes(extension["extn_value"].contents))
                return {statement["statement_id"].dotted for statement in value}
            except ValueError:
                return set()
    return set()


def level_of(cert: asn1_x509.Certificate, *, trusted: bool) -> str:
    """What a signature with this certificate is, honestly:

    - qualified: the certificate says it is qualified (QcCompliance) and its key is on a
      qualified signature creation device (QcSSCD), and it chains to a configured anchor
      (a qualified provider on the trusted list the operator installed);
    - advanced with a qualified certificate: qualified and trusted, no QSCD statement;
    - advanced, the platform's own CA: issued by Consensus itself;
    - advanced, the organisation's own certificate: anything else (a claim of being
      qualified that no configured anchor backs counts for nothing)."""
    if cert.issuer.dump() in {root.subject.dump() for root in _platform_ca_roots()}:
        return ADVANCED_PLATFORM_CA
    statements = _qc_statements(cert)
    if trusted and QC_COMPLIANCE in statements:
        return QUALIFIED if QC_SSCD in statements else ADVANCED_QUALIFIED_CERTIFICATE
    return ADVANCED_OWN_CERTIFICATE


def _platform_ca_roots() -> list[asn1_x509.Certificate]:
    from asn1crypto import pem as asn1_pem
    from asn1crypto import x509 as asn1_x509

    from consensus.signing.authority import all_ca_pem

    roots = []
    for text in all_ca_pem():
        _kind, _headers, der = asn1_pem.unarmor(text.encode())
        roots.append(asn1_x509.Certificate.load(der))
    return roots


@dataclass(frozen=True)
class Assessment:
    """One PDF signature of the letter as the page and the bundle describe it."""

    field_name: str
    signer_subject: str
    level: str
    timestamped: bool
    signed_at: datetime | None  # the TSA's time when timestamped, else the claimed time
    intact: bool
    valid: bool
    trusted: bool
    summary: str

    @property
    def level_label(self) -> str:
        return str(LEVEL_LABELS[self.level])

    @property
    def level_english(self) -> str:
        return LEVEL_ENGLISH[self.level]

    @property
    def time_source(self) -> str:
        return "tsa" if self.timestamped else "local"


def fingerprint(pem_text: str) -> str:
    from asn1crypto import pem as asn1_pem

    _kind, _headers, der = asn1_pem.unarmor(pem_text.encode())
    return hashlib.sha256(der).hexdigest()


def assess(pdf: bytes | None) -> dict[str, Assessment]:
    """Every signature of the letter, by field name, judged offline now: trust from our CA(s)
    and the configured anchors, revocation from the letter's own validation data plus our
    CRLs as they are now (so a certificate revoked after its signature's timestamp still
    shows that signature valid at the timestamped time)."""
    from consensus.signing import documents

    if pdf is None:
        return {}
    roots = _platform_roots() + anchor_certificates()
    crls = all_crls_der()
    # Same letter, same anchors, same revocations: same answer (the CRLs' own signing
    # time is left out, so a page view does not validate four signatures each time).
    key = hashlib.sha256(
        pdf
        + b"".join(root.sha256 for root in roots)
        + b"".join(_revoked_serials(der) for der in crls)
    ).hexdigest()
    cached = _ASSESSED.get(key)
    if cached is not None:
        return cached
    found = {}
    for check in documents.check_long_term(pdf, roots, crls):
        found[check.field_name] = Assessment(
            field_name=check.field_name,
            signer_subject=check.signer_cert.subject.human_friendly,
            level=level_of(check.signer_cert, trusted=check.trusted),
            timestamped=check.timestamped,
            signed_at=check.best_signature_time,
            intact=check.intact,
            valid=check.passed,
            trusted=check.trusted,
            summary=check.indication if check.passed else check.failure or check.indication,
        )
    _ASSESSED[key] = found
    while len(_ASSESSED) > 32:
        _ASSESSED.pop(next(iter(_ASSESSED)))
    return found


_ASSESSED: dict[str, dict[str, Assessment]] = {}


def _revoked_serials(crl_der: bytes) -> bytes:
    from asn1crypto import crl as asn1_crl

    listed = asn1_crl.CertificateList.load(crl_der)["tbs_cert_list"]["revoked_certificates"]
    return b"".join(entry.dump() for entry in listed) + b"|"
