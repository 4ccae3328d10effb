"""The assurance level of a PDF signature follows the certificate's QC statements (ETSI EN
319 412-5) only when a configured trust anchor backs it (issue 22 item 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from consensus import signing
from consensus.signing import longterm


def _qc(*ids: str) -> bytes:
    class Statement(core.Sequence):
        _fields = [("statement_id", core.ObjectIdentifier)]  # noqa: RUF012

    class Statements(core.SequenceOf):
        _child_spec = Statement

    return Statements([Statement({"statement_id": i}) for i in ids]).dump()


def _cert(statements: bytes | None, issuer: str = "Provider CA") -> asn1_x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Signer")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
    )
    if statements is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.5.5.7.1.3"), statements),
            critical=False,
        )
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return asn1_x509.Certificate.load(der)


@pytest.mark.parametrize(
    ("statements", "trusted", "level"),
    [
        (_qc(longterm.QC_COMPLIANCE, longterm.QC_SSCD), True, longterm.QUALIFIED),
        (_qc(longterm.QC_COMPLIANCE), True, longterm.ADVANCED_QUALIFIED_CERTIFICATE),
        # A claim no configured anchor backs counts for nothing.
        (_qc(longterm.QC_COMPLIANCE, longterm.QC_SSCD), False, longterm.ADVANCED_OWN_CERTIFICATE),
        (None, True, longterm.ADVANCED_OWN_CERTIFICATE),
        (b"\x04\x00not asn1", True, longterm.ADVANCED_OWN_CERTIFICATE),
    ],
)
def test_level_follows_qc_statements_and_trust(app, statements, trusted, level):
    assert longterm.level_of(_cert(statements), trusted=trusted) == level


def test_the_platform_ca_is_named_as_such(app):
    from tests.factories import make_organisation

    row = signing.issue_certificate(make_organisation("gem-b"), actor=None)
    der = x509.load_pem_x509_certificate(row.certificate_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )
    cert = asn1_x509.Certificate.load(der)
    assert longterm.level_of(cert, trusted=True) == longterm.ADVANCED_PLATFORM_CA


def test_trust_anchors_are_read_from_files(app, tmp_path):
    one = _cert(None, issuer="Root A")
    (tmp_path / "a.pem").write_bytes(
        x509.load_der_x509_certificate(one.dump()).public_bytes(serialization.Encoding.PEM)
    )
    two = _cert(None, issuer="Root B")
    (tmp_path / "b.der").write_bytes(two.dump())
    (tmp_path / "notes.txt").write_text("not a certificate")
    app.config["TRUST_ANCHORS"] = str(tmp_path)
    assert [c.sha256 for c in longterm.anchor_certificates()] == [one.sha256, two.sha256]
