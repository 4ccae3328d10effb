"""The platform's certificate authority and the organisations' certificates (issued by the
CA or uploaded as PKCS#12): what a PAdES signature in the letter is made with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consensus import audit, permissions
from consensus.crypto.keystore import seal, unseal
from consensus.extensions import db
from consensus.models import (
    CertificateAuthority,
    CertificateSource,
    Organisation,
    OrganisationCertificate,
    User,
    utcnow,
)
from consensus.services.errors import DomainError, Forbidden
from consensus.signing import documents
from consensus.signing.keys import _kek

if TYPE_CHECKING:  # cryptography is loaded where a certificate is made or read (lean workers)
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

PKCS12_MAX_BYTES = 64 * 1024
CA_VALIDITY = timedelta(days=3650)
CERTIFICATE_VALIDITY = timedelta(days=825)


def _name(common_name: str, organisation: str = "Consensus") -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _pem_key(private: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def current_ca() -> CertificateAuthority | None:
    return db.session.execute(
        select(CertificateAuthority)
        .where(CertificateAuthority.retired_at.is_(None))
        .order_by(CertificateAuthority.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def ensure_ca(actor: User | None = None) -> CertificateAuthority:
    """The platform's CA, made on first use (ECDSA P-256, ten years, key sealed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    existing = current_ca()
    if existing is not None:
        return existing
    private = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    subject = _name(f"Consensus signing CA ({current_app.config['AUDIT_ORIGIN']})")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()), False)
        .sign(private, hashes.SHA256())
    )
    ca = CertificateAuthority(
        subject=subject.rfc4514_string(),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        sealed_private_key="pending",
        created_at=now,
    )
    db.session.add(ca)
    db.session.flush()
    ca.sealed_private_key = seal(_kek(), _pem_key(private), f"signing-ca:{ca.id}".encode())
    db.session.flush()
    audit.record(
        "signing_ca.created",
        actor=actor,
        object_type="signing_ca",
        object_id=ca.id,
        payload={"subject": ca.subject, "sha256": _cert_sha256(certificate)},
    )
    return ca


def _cert_sha256(certificate: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import hashes

    return certificate.fingerprint(hashes.SHA256()).hex()


def all_ca_pem() -> list[str]:
    """Every CA certificate ever used (retired ones too: old letters name them)."""
    return list(
        db.session.execute(
            select(CertificateAuthority.certificate_pem).order_by(CertificateAuthority.id)
        ).scalars()
    )


def current_certificate(organisation: Organisation) -> OrganisationCertificate | None:
    return db.session.execute(
        select(OrganisationCertificate).where(
            OrganisationCertificate.organisation_id == organisation.id,
            OrganisationCertificate.retired_at.is_(None),
        )
    ).scalar_one_or_none()


def _store_certificate(
    organisation: Organisation,
    *,
    actor: User | None,
    certificate: x509.Certificate,
    private_der: bytes,
    source: CertificateSource,
    ca: CertificateAuthority | None,
    chain: Sequence[x509.Certificate] = (),
) -> OrganisationCertificate:
    from cryptography.hazmat.primitives import serialization

    previous = current_certificate(organisation)
    if previous is not None:
        previous.retired_at = utcnow()
        db.session.flush()
    row = OrganisationCertificate(
        organisation_id=organisation.id,
        source=source,
        ca_id=ca.id if ca else None,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        chain_pem="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain),
        sealed_private_key="pending",
        subject=certificate.subject.rfc4514_string()[:300],
        serial=format(certificate.serial_number, "x")[:60],
        sha256=_cert_sha256(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        created_by_id=actor.id if actor else None,
        created_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    row.sealed_private_key = seal(_kek(), private_der, f"org-certificate:{row.id}".encode())
    db.session.flush()
    audit.record(
        "organisation_certificate.issued"
        if source == CertificateSource.PLATFORM_CA
        else "organisation_certificate.uploaded",
        actor=actor,
        object_type="organisation_certificate",
        object_id=row.id,
        organisation_id=organisation.id,
        payload={
            "subject": row.subject,
            "serial": row.serial,
            "sha256": row.sha256,
            "replaces": previous.id if previous else None,
        },
    )
    return row


CRL_VALIDITY = timedelta(days=7)


def crl_url(ca: CertificateAuthority) -> str:
    """Where the CA's certificate revocation list is published (the app serves it, see
    consensus.web.signing): named in every certificate the CA issues."""
    base = current_app.config.get("BASE_URL") or "http://localhost"
    return f"{base}/pki/ca-{ca.id}.crl"


def _ca_private_key(ca: CertificateAuthority) -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_der_private_key(
        unseal(_kek(), ca.sealed_private_key, f"signing-ca:{ca.id}".encode()), password=None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def crl_der(ca: CertificateAuthority) -> bytes:
    """The CA's certificate revocation list, signed now (valid a week): every certificate
    it issued that an administrator revoked, with the moment of revocation."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    ca_cert = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
    now = utcnow()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - timedelta(minutes=1))
        .next_update(now + CRL_VALIDITY)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_cert.public_key()  # type: ignore[arg-type]
            ),
            False,
        )
        .add_extension(x509.CRLNumber(int(now.timestamp())), False)
    )
    revoked = db.session.execute(
        select(OrganisationCertificate)
        .where(
            OrganisationCertificate.ca_id == ca.id,
            OrganisationCertificate.revoked_at.is_not(None),
        )
        .order_by(OrganisationCertificate.id)
    ).scalars()
    for row in revoked:
        assert row.revoked_at is not None
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int(row.serial, 16))
            .revocation_date(row.revoked_at)
            .build()
        )
    crl = builder.sign(_ca_private_key(ca), hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)


def all_crls_der() -> list[bytes]:
    return [
        crl_der(ca)
        for ca in db.session.execute(
            select(CertificateAuthority).order_by(CertificateAuthority.id)
        ).scalars()
    ]


def revoke_certificate(
    row: OrganisationCertificate, *, actor: User, reason: str
) -> OrganisationCertificate:
    """Revoke an organisation's certificate (key compromised, left the organisation). It is
    listed on the CA's CRL from now on; signatures made with it before now stay valid at
    their timestamped time; the organisation signs again only after a new certificate
    was issued or uploaded."""
    if not permissions.can_administer(actor):
        raise Forbidden(str(_l("Only an administrator may do this.")))
    if row.revoked_at is not None:
        raise DomainError(str(_l("This certificate is already revoked.")))
    reason = reason.strip()
    if not reason:
        raise DomainError(str(_l("Give the reason for the revocation.")), field="reason")
    row.revoked_at = utcnow()
    row.revocation_reason = reason[:2000]
    db.session.flush()
    audit.record(
        "organisation_certificate.revoked",
        actor=actor,
        object_type="organisation_certificate",
        object_id=row.id,
        organisation_id=row.organisation_id,
        payload={"serial": row.serial, "sha256": row.sha256, "reason": row.revocation_reason},
    )
    return row


def issue_certificate(organisation: Organisation, *, actor: User | None) -> OrganisationCertificate:
    """A certificate for the organisation's PDF signatures from the platform's CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if actor is not None and not permissions.can_administer(actor):
        raise Forbidden(str(_l("Only an administrator may do this.")))
    ca = ensure_ca(actor)
    ca_cert = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
    ca_key = _ca_private_key(ca)
    private = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(organisation.name, organisation.name))
        .issuer_name(ca_cert.subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + CERTIFICATE_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()), False)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(crl_url(ca))],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _store_certificate(
        organisation,
        actor=actor,
        certificate=certificate,
        private_der=_pem_key(private),
        source=CertificateSource.PLATFORM_CA,
        ca=ca,
    )


def upload_pkcs12(
    organisation: Organisation, *, actor: User, data: bytes, password: str
) -> OrganisationCertificate:
    """An organisation's own certificate and key, as PKCS#12 (checked before it is kept)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12

    if not permissions.can_administer(actor):
        raise Forbidden(str(_l("Only an administrator may do this.")))
    if not data or len(data) > PKCS12_MAX_BYTES:
        raise DomainError(str(_l("Upload a PKCS#12 file of at most 64 kB.")), field="file")
    try:
        private, certificate, extra = pkcs12.load_key_and_certificates(
            data, password.encode() if password else None
        )
    except ValueError as error:
        raise DomainError(
            str(_l("This is not a PKCS#12 file, or the password is wrong.")), field="file"
        ) from error
    if certificate is None or private is None:
        raise DomainError(
            str(_l("The PKCS#12 file must hold one certificate and its private key.")),
            field="file",
        )
    if not isinstance(private, ec.EllipticCurvePrivateKey | _rsa_type()):
        raise DomainError(str(_l("Use an ECDSA or RSA key.")), field="file")
    now = utcnow()
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
        raise DomainError(str(_l("The certificate is not valid now.")), field="file")
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _store_certificate(
        organisation,
        actor=actor,
        certificate=certificate,
        private_der=der,
        source=CertificateSource.UPLOADED,
        ca=None,
        chain=list(extra or ()),
    )


def _rsa_type() -> type:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.RSAPrivateKey


def _credentials(row: OrganisationCertificate) -> documents.PdfCredentials:
    private = unseal(_kek(), row.sealed_private_key, f"org-certificate:{row.id}".encode())
    chain = [row.chain_pem] if row.chain_pem else []
    if row.ca_id is not None:
        ca = db.session.get_one(CertificateAuthority, row.ca_id)
        chain.append(ca.certificate_pem)
    return documents.PdfCredentials(row.certificate_pem, private, _split_pem(chain))


def _split_pem(blocks: Sequence[str]) -> list[str]:
    marker = "-----END CERTIFICATE-----"
    found = []
    for block in blocks:
        for part in block.split(marker):
            if part.strip():
                found.append(part.strip() + "\n" + marker + "\n")
    return found


def trust_anchors_pem() -> list[str]:
    """What `ca.pem` holds: our CAs, plus the root of any uploaded certificate chain."""
    anchors = all_ca_pem()
    for chain in db.session.execute(
        select(OrganisationCertificate.chain_pem).where(OrganisationCertificate.chain_pem != "")
    ).scalars():
        for pem in _split_pem([chain]):
            if pem not in anchors:
                anchors.append(pem)
    return anchors
