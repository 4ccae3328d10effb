"""Co-signing: keys and certificates per organisation, statements, signatures, the letter.

An organisation co-signs by signing a small JSON *statement* (exact bytes, SSHSIG,
namespace `cosign@consensus`) that names the version's text hash and the unsigned
letter's hash. The platform then adds the organisation's PAdES signature to the joint
letter. Statements are what anyone can check with `ssh-keygen`; the PDF is what anyone
can check with a PDF reader, `pdfsig` or `pyhanko`.

Custody, chosen per organisation by an administrator:
- signer-held: representatives enrol their own SSH key and upload a `.sig` made
  locally; the platform verifies it and can never forge one;
- platform-held: the platform generates an Ed25519 key, keeps it sealed with the KEK and
  uses it only right after the representative re-authenticates.

Every use case flushes and never commits, records an audit event, and the ones that
change a signature also make a signed checkpoint of the audit log.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from consensus import events, permissions
from consensus.crypto import sshsig
from consensus.crypto.keystore import KeystoreError, load_kek, open_ed25519, seal, unseal
from consensus.extensions import db
from consensus.models import (
    CertificateAuthority,
    CertificateSource,
    CoSignature,
    JointLetter,
    KeyCustody,
    Organisation,
    OrganisationCertificate,
    Outcome,
    Process,
    Round,
    RoundState,
    RoundType,
    SigningKey,
    SigningSettings,
    Stance,
    StanceKind,
    User,
    Version,
    utcnow,
)
from consensus.permissions import Action
from consensus.permissions.signing import may_sign  # noqa: F401  (the rule book)
from consensus.services import audit, letters, processes
from consensus.services.errors import Conflict, DomainError, Forbidden

NAMESPACE = "cosign@consensus"
STATEMENT_FORMAT = "consensus-cosign/1"
STATEMENT_MAX_BYTES = 8 * 1024
SIGNATURE_MAX_BYTES = 8 * 1024
PKCS12_MAX_BYTES = 64 * 1024
STATEMENT_MAX_AGE = timedelta(days=2)
CLOCK_SKEW = timedelta(minutes=5)
CA_VALIDITY = timedelta(days=3650)
CERTIFICATE_VALIDITY = timedelta(days=825)
COUNTED_FOR_ADOPTION = (StanceKind.ENDORSE, StanceKind.ENDORSE_WITH_RESERVATIONS)
DEFAULT_CUSTODY = KeyCustody.SIGNER_HELD
CUSTODY_LABELS = {
    KeyCustody.SIGNER_HELD: _l("Signer-held: representatives sign with their own SSH key"),
    KeyCustody.PLATFORM_HELD: _l(
        "Platform-held: the platform keeps the key and signs after re-authentication"
    ),
}


def _kek() -> bytes:
    return load_kek(current_app.config["KEY_ENCRYPTION_KEY"], current_app.instance_path)


def iso(moment: datetime) -> str:
    """The one textual form of a signing time: UTC, whole seconds, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ssh_time(moment: datetime) -> str:
    """A time as allowed_signers and `ssh-keygen -Overify-time` want it (UTC)."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def _can_manage_keys(actor: User, organisation: Organisation) -> bool:
    """Administrators, and whoever holds the organisation's mandate now."""
    return permissions.can_administer(actor) or permissions.holds_mandate(actor, organisation)


# --- Custody and keys -------------------------------------------------------------------------


def custody_of(organisation: Organisation) -> KeyCustody:
    settings = db.session.get(SigningSettings, organisation.id)
    return settings.custody if settings is not None else DEFAULT_CUSTODY


def set_custody(organisation: Organisation, custody: KeyCustody, *, actor: User) -> None:
    """The administrator decides who holds the organisation's key. Switching to
    platform-held generates a key; switching away retires it (its signatures stay)."""
    if not permissions.can_administer(actor):
        raise Forbidden(str(_l("Only an administrator may do this.")))
    custody = KeyCustody(custody)
    settings = db.session.get(SigningSettings, organisation.id)
    before = settings.custody.value if settings is not None else None
    if settings is None:
        settings = SigningSettings(organisation_id=organisation.id, custody=custody)
        db.session.add(settings)
    settings.custody = custody
    settings.updated_at = utcnow()
    settings.updated_by_id = actor.id
    db.session.flush()
    audit.record(
        "signing.custody_set",
        actor=actor,
        object_type="organisation",
        object_id=organisation.id,
        organisation_id=organisation.id,
        payload={"before": before, "custody": custody.value},
    )
    if custody == KeyCustody.PLATFORM_HELD and platform_key(organisation) is None:
        create_platform_key(organisation, actor=actor)
    if custody == KeyCustody.SIGNER_HELD:
        current = platform_key(organisation)
        if current is not None:
            _retire(current, actor=actor)


def keys_of(organisation: Organisation) -> list[SigningKey]:
    return list(
        db.session.execute(
            select(SigningKey)
            .where(SigningKey.organisation_id == organisation.id)
            .order_by(SigningKey.created_at.desc(), SigningKey.id.desc())
        ).scalars()
    )


def platform_key(organisation: Organisation) -> SigningKey | None:
    return db.session.execute(
        select(SigningKey).where(
            SigningKey.organisation_id == organisation.id,
            SigningKey.custody == KeyCustody.PLATFORM_HELD,
            SigningKey.retired_at.is_(None),
            SigningKey.revoked_at.is_(None),
        )
    ).scalar_one_or_none()


def keys_held_by(user: User, organisation: Organisation) -> list[SigningKey]:
    """The signer-held keys in use that `user` enrolled for `organisation`."""
    return list(
        db.session.execute(
            select(SigningKey)
            .where(
                SigningKey.organisation_id == organisation.id,
                SigningKey.holder_id == user.id,
                SigningKey.custody == KeyCustody.SIGNER_HELD,
                SigningKey.retired_at.is_(None),
                SigningKey.revoked_at.is_(None),
            )
            .order_by(SigningKey.id.desc())
        ).scalars()
    )


def _key_associated_data(key: SigningKey) -> bytes:
    return f"org-signing-key:{key.organisation_id}:{key.id}".encode()


def _audit_key(action: str, key: SigningKey, actor: User | None, **extra: object) -> None:
    audit.record(
        action,
        actor=actor,
        object_type="signing_key",
        object_id=key.id,
        organisation_id=key.organisation_id,
        payload={
            "custody": key.custody.value,
            "fingerprint": key.fingerprint,
            "public_key": key.public_key,
            **extra,
        },
    )


def create_platform_key(
    organisation: Organisation, *, actor: User | None, replaces: SigningKey | None = None
) -> SigningKey:
    """A fresh Ed25519 key; the private half is sealed to this row before it is stored."""
    private = Ed25519PrivateKey.generate()
    blob = sshsig.public_key_blob(private.public_key())
    key = SigningKey(
        organisation_id=organisation.id,
        custody=KeyCustody.PLATFORM_HELD,
        key_type=sshsig.ED25519,
        public_key=sshsig.openssh_public_key_line(private.public_key()),
        fingerprint=sshsig.fingerprint(blob),
        label=str(_l("Platform-held key")),
        sealed_private_key="pending",
        created_by_id=actor.id if actor else None,
        created_at=utcnow(),
    )
    db.session.add(key)
    db.session.flush()  # the id is part of the associated data
    key.sealed_private_key = seal(_kek(), private.private_bytes_raw(), _key_associated_data(key))
    db.session.flush()
    _audit_key(
        "signing_key.created", key, actor, replaces=replaces.id if replaces is not None else None
    )
    return key


def enrol_key(
    organisation: Organisation, *, actor: User, public_key_line: str, label: str = ""
) -> SigningKey:
    """A representative enrols their own SSH key (ssh-ed25519 or sk-ssh-ed25519)."""
    if custody_of(organisation) != KeyCustody.SIGNER_HELD:
        raise DomainError(str(_l("This organisation's key is held by the platform.")))
    if not permissions.holds_mandate(actor, organisation):
        raise Forbidden(
            str(_l("Only a representative with the organisation's mandate may do this."))
        )
    try:
        key_type, blob, comment = sshsig.parse_openssh_public_key(public_key_line)
    except sshsig.KeyFormatError as error:
        raise DomainError(
            str(_l("This is not an SSH Ed25519 public key: %(why)s", why=str(error))),
            field="public_key",
        ) from error
    fingerprint = sshsig.fingerprint(blob)
    exists = db.session.execute(
        select(SigningKey.id).where(
            SigningKey.organisation_id == organisation.id, SigningKey.fingerprint == fingerprint
        )
    ).first()
    if exists is not None:
        raise DomainError(str(_l("This key is already enrolled.")), field="public_key")
    key = SigningKey(
        organisation_id=organisation.id,
        custody=KeyCustody.SIGNER_HELD,
        key_type=key_type,
        public_key=f"{key_type} {base64.b64encode(blob).decode()}",
        fingerprint=fingerprint,
        label=(label.strip() or comment)[:120],
        holder_id=actor.id,
        created_by_id=actor.id,
        created_at=utcnow(),
    )
    db.session.add(key)
    db.session.flush()
    _audit_key("signing_key.enrolled", key, actor, key_type=key_type)
    return key


def _retire(key: SigningKey, *, actor: User | None) -> None:
    key.retired_at = utcnow()
    db.session.flush()
    _audit_key("signing_key.retired", key, actor)


def rotate_key(
    key: SigningKey, *, actor: User, public_key_line: str = "", label: str = ""
) -> SigningKey:
    """Replace a key in use by a new one; the old key stays valid for old signatures."""
    organisation = key.organisation
    if not _can_manage_keys(actor, organisation):
        raise Forbidden(str(_l("You may not manage this organisation's keys.")))
    if not key.in_use:
        raise DomainError(str(_l("Only a key in use can be rotated.")))
    if key.custody == KeyCustody.PLATFORM_HELD:
        _retire(key, actor=actor)
        return create_platform_key(organisation, actor=actor, replaces=key)
    if key.holder_id != actor.id:
        raise Forbidden(str(_l("Only the holder of a key can replace it.")))
    new = enrol_key(organisation, actor=actor, public_key_line=public_key_line, label=label)
    _retire(key, actor=actor)
    return new


def revoke_key(key: SigningKey, *, actor: User, reason: str) -> None:
    """Stop trusting a key (lost, compromised). Signatures made with it stay, flagged."""
    if not _can_manage_keys(actor, key.organisation):
        raise Forbidden(str(_l("You may not manage this organisation's keys.")))
    if key.revoked_at is not None:
        raise DomainError(str(_l("This key is already revoked.")))
    reason = reason.strip()
    if not reason:
        raise DomainError(str(_l("Give the reason for the revocation.")), field="reason")
    key.revoked_at = utcnow()
    key.revoked_by_id = actor.id
    key.revocation_reason = reason[:2000]
    db.session.flush()
    _audit_key("signing_key.revoked", key, actor, reason=key.revocation_reason)


def _platform_private_key(key: SigningKey) -> Ed25519PrivateKey:
    assert key.sealed_private_key is not None
    return open_ed25519(_kek(), key.sealed_private_key, _key_associated_data(key))


# --- The platform CA and organisation certificates --------------------------------------------


def _name(common_name: str, organisation: str = "Consensus") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _pem_key(private: ec.EllipticCurvePrivateKey) -> bytes:
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


def issue_certificate(organisation: Organisation, *, actor: User | None) -> OrganisationCertificate:
    """A certificate for the organisation's PDF signatures from the platform's CA."""
    if actor is not None and not permissions.can_administer(actor):
        raise Forbidden(str(_l("Only an administrator may do this.")))
    ca = ensure_ca(actor)
    ca_cert = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
    ca_key = serialization.load_der_private_key(
        unseal(_kek(), ca.sealed_private_key, f"signing-ca:{ca.id}".encode()), password=None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
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


def _credentials(row: OrganisationCertificate) -> letters.PdfCredentials:
    private = unseal(_kek(), row.sealed_private_key, f"org-certificate:{row.id}".encode())
    chain = [row.chain_pem] if row.chain_pem else []
    if row.ca_id is not None:
        ca = db.session.get_one(CertificateAuthority, row.ca_id)
        chain.append(ca.certificate_pem)
    return letters.PdfCredentials(row.certificate_pem, private, _split_pem(chain))


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


# --- Who may sign -----------------------------------------------------------------------------


def adopted_outcome(process: Process, version_id: int | None) -> Outcome | None:
    """The latest adopted outcome of the process about this version, if any."""
    if version_id is None:
        return None
    return db.session.execute(
        select(Outcome)
        .where(
            Outcome.process_id == process.id,
            Outcome.version_id == version_id,
            Outcome.adopted.is_(True),
        )
        .order_by(Outcome.fixed_at.desc(), Outcome.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def counted_stances(process: Process, round_: Round) -> list[Stance]:
    """The stances that counted for adoption of the round's version (endorse, with or
    without reservations), in the order of the organisations' names."""
    outcome = adopted_outcome(process, round_.version_id)
    if outcome is None:
        return []
    stances = db.session.execute(
        select(Stance).where(
            Stance.round_id == outcome.round_id,
            Stance.superseded_at.is_(None),
            Stance.version_id == outcome.version_id,
            Stance.kind.in_(COUNTED_FOR_ADOPTION),
        )
    ).scalars()
    participants = process.participant_ids
    return sorted(
        (s for s in stances if s.organisation_id in participants),
        key=lambda s: s.organisation.name,
    )


def eligible_organisations(process: Process, round_: Round) -> list[Organisation]:
    return [s.organisation for s in counted_stances(process, round_)]


def signing_rounds(process: Process) -> list[Round]:
    return [r for r in process.rounds if r.type == RoundType.SIGNING]


def current_signing_round(process: Process) -> Round | None:
    """The open signing round, else the latest one that has opened."""
    rounds = [r for r in signing_rounds(process) if r.state != RoundState.SCHEDULED]
    open_ = [r for r in rounds if r.state == RoundState.OPEN]
    return (open_ or rounds[-1:] or [None])[0]


# --- The joint letter -------------------------------------------------------------------------


def letter_of(round_: Round) -> JointLetter | None:
    return db.session.execute(
        select(JointLetter).where(JointLetter.round_id == round_.id)
    ).scalar_one_or_none()


def letter_content(process: Process, round_: Round, version: Version) -> letters.LetterContent:
    position = version.position
    opened = (round_.opened_at or utcnow()).astimezone(UTC)
    return letters.LetterContent(
        title=position.title,
        subject=position.subject or position.title,
        addressee=position.addressee,
        place=position.place or "Den Haag",
        letter_date=position.letter_date or _amsterdam_date(opened),
        reference=position.reference,
        body=version.body,
        version_number=version.number,
        version_sha256=version.sha256,
        process_title=process.title,
        signatories=[
            letters.Signatory(
                slug=s.organisation.slug,
                name=s.organisation.name,
                reservation=s.text if s.kind == StanceKind.ENDORSE_WITH_RESERVATIONS else "",
            )
            for s in counted_stances(process, round_)
        ],
    )


def _amsterdam_date(moment: datetime) -> date:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Europe/Amsterdam")).date()


def ensure_letter(process: Process, round_: Round, *, actor: User | None = None) -> JointLetter:
    """The unsigned letter of a signing round, laid out once and then fixed: statements
    name its hash. Two first visitors at once: the unique round_id keeps one (the caller
    rolls back and reloads on IntegrityError)."""
    existing = letter_of(round_)
    if existing is not None:
        return existing
    if round_.type != RoundType.SIGNING or round_.state == RoundState.SCHEDULED:
        raise DomainError(str(_l("The letter exists once the signing round has opened.")))
    if round_.version_id is None or adopted_outcome(process, round_.version_id) is None:
        raise DomainError(
            str(_l("This round's version was not adopted; there is nothing to sign."))
        )
    version = db.session.get_one(Version, round_.version_id)
    rendered = letters.render_letter(letter_content(process, round_, version))
    letter = JointLetter(
        process_id=process.id,
        round_id=round_.id,
        version_id=version.id,
        unsigned_pdf=rendered.pdf,
        unsigned_sha256=hashlib.sha256(rendered.pdf).hexdigest(),
        signature_boxes=rendered.boxes_json(),
        created_at=utcnow(),
    )
    db.session.add(letter)
    db.session.flush()
    audit.record(
        "letter.created",
        actor=actor,
        object_type="joint_letter",
        object_id=letter.id,
        payload={
            "process": process.id,
            "round": round_.id,
            "version": version.id,
            "version_sha256": version.sha256,
            "unsigned_sha256": letter.unsigned_sha256,
        },
    )
    return letter


def _letter_to_sign(process: Process, round_: Round, *, actor: User) -> JointLetter:
    """ensure_letter for a signer, also when another signer lays the first letter out at
    the same moment: the unique round keeps one (PostgreSQL: the later INSERT fails once
    the earlier commits) and this signer goes on with that one instead of an error."""
    try:
        with db.session.begin_nested():
            return ensure_letter(process, round_, actor=actor)
    except IntegrityError:
        letter = letter_of(round_)
        if letter is None:
            raise
        return letter


def _lock_letter(letter: JointLetter) -> JointLetter:
    """Take the letter row's write lock, then re-read it: one signer at a time.

    The UPDATE locks the row on PostgreSQL and takes SQLite's write lock, which a plain
    SELECT … FOR UPDATE would not; `populate_existing` makes the re-read win over any
    stale copy this session holds.
    """
    db.session.execute(
        update(JointLetter)
        .where(JointLetter.id == letter.id)
        .values(revision=JointLetter.revision)
        .execution_options(synchronize_session=False)
    )
    return db.session.execute(
        select(JointLetter)
        .where(JointLetter.id == letter.id)
        # Lock only the letter row: PostgreSQL refuses FOR UPDATE on the nullable side of
        # the outer join that the eager-loaded relationships would add.
        .with_for_update(of=JointLetter)
        .execution_options(populate_existing=True)
    ).scalar_one()


def current_signatures(round_: Round) -> list[CoSignature]:
    return list(
        db.session.execute(
            select(CoSignature)
            .where(CoSignature.round_id == round_.id, CoSignature.withdrawn_at.is_(None))
            .order_by(CoSignature.signed_at, CoSignature.id)
        ).scalars()
    )


def _field_name(organisation: Organisation) -> str:
    return f"Signature-{organisation.slug}"


def _add_pdf_signature(letter: JointLetter, pdf: bytes, signature: CoSignature) -> bytes:
    organisation = signature.organisation
    certificate = current_certificate(organisation) or issue_certificate(organisation, actor=None)
    boxes = json.loads(letter.signature_boxes or "{}")
    box = boxes.get(organisation.slug)
    return letters.sign_pdf(
        pdf,
        credentials=_credentials(certificate),
        field_name=_field_name(organisation),
        box=tuple(box) if box else None,  # type: ignore[arg-type]
        stamp=letters.StampText(
            signer_name=signature.signer_name,
            signer_title=signature.signer_title,
            organisation_name=organisation.name,
            signed_at=signature.signed_at,
            fingerprint=signature.key.fingerprint,
        ),
        reason=f"Medeondertekening namens {organisation.name}",
        location=organisation.name,
    )


def _write_signed_pdf(letter: JointLetter, pdf: bytes | None) -> None:
    letter.signed_pdf = pdf
    letter.revision += 1
    letter.updated_at = utcnow()
    db.session.flush()


def letter_is_final(process: Process, round_: Round) -> bool:
    """Final when every eligible organisation has signed, or the round has closed."""
    if round_.state == RoundState.CLOSED:
        return True
    signed = {s.organisation_id for s in current_signatures(round_)}
    eligible = {o.id for o in eligible_organisations(process, round_)}
    return bool(eligible) and eligible <= signed


# --- Statements -------------------------------------------------------------------------------


def statement_dict(
    *,
    process: Process,
    version: Version,
    letter: JointLetter,
    organisation: Organisation,
    signer_name: str,
    signer_title: str,
    key: SigningKey,
    signed_at: datetime,
) -> dict[str, object]:
    return {
        "format": STATEMENT_FORMAT,
        "type": "cosign",
        "namespace": NAMESPACE,
        "process": {"slug": process.slug, "title": process.title},
        "position": {"id": version.position_id, "title": version.position.title},
        "version": {"number": version.number, "sha256": version.sha256},
        "letter": {"unsigned_sha256": letter.unsigned_sha256},
        "organisation": {"slug": organisation.slug, "name": organisation.name},
        "signer": {"name": signer_name, "title": signer_title},
        "key_fingerprint": key.fingerprint,
        "signed_at": iso(signed_at),
    }


def canonical_json(value: object) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8, one final newline: the same
    statement always has the same bytes."""
    return (
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    ).encode("utf-8")


def _signer_snapshot(actor: User, organisation: Organisation) -> tuple[str, str]:
    mandate = permissions.mandate_for(actor, organisation)
    title = mandate.membership.title if mandate is not None else ""
    return actor.display_name, title


def _statement_bytes(
    process: Process,
    letter: JointLetter,
    organisation: Organisation,
    *,
    actor: User,
    key: SigningKey,
    signed_at: datetime,
) -> bytes:
    """The exact statement this person signs for this organisation with this key at this
    moment: one construction for issuing, platform signing and checking an upload."""
    name, title = _signer_snapshot(actor, organisation)
    return canonical_json(
        statement_dict(
            process=process,
            version=letter.version,
            letter=letter,
            organisation=organisation,
            signer_name=name,
            signer_title=title,
            key=key,
            signed_at=signed_at,
        )
    )


def prepare_statement(
    process: Process,
    round_: Round,
    organisation: Organisation,
    *,
    actor: User,
    key: SigningKey,
    at: datetime | None = None,
) -> bytes:
    """The exact bytes to sign now: what a signer-held representative downloads."""
    decision = may_sign(actor, process, round_, organisation)
    if not decision:
        raise Forbidden(decision.reason)
    _check_key_for(key, organisation, actor)
    letter = letter_of(round_)  # laid out when the round opened; a download only reads
    if letter is None:
        raise DomainError(str(_l("The letter exists once the signing round has opened.")))
    return _statement_bytes(
        process,
        letter,
        organisation,
        actor=actor,
        key=key,
        signed_at=(at or utcnow()).replace(microsecond=0),
    )


def _check_key_for(key: SigningKey, organisation: Organisation, actor: User) -> None:
    if key.organisation_id != organisation.id:
        raise Forbidden(str(_l("This key belongs to another organisation.")))
    if key.revoked_at is not None:
        raise DomainError(str(_l("This key has been revoked.")))
    if key.retired_at is not None:
        raise DomainError(str(_l("This key has been replaced; use the current one.")))
    if key.custody == KeyCustody.SIGNER_HELD and key.holder_id != actor.id:
        raise Forbidden(str(_l("Sign with a key you enrolled yourself.")))
    if key.custody != custody_of(organisation):
        raise DomainError(str(_l("This organisation's custody does not allow this key.")))


@dataclass(frozen=True)
class PasswordChecked:
    """A password found right for this user and this stored hash, moments ago."""

    user_id: int
    password_hash: str


@dataclass(frozen=True)
class ReAuthentication:
    """What a representative gives at the moment of a platform-held signature.

    `checked`: the result of `check_password_first` in the same request, if any.
    """

    password: str
    code: str = ""
    checked: PasswordChecked | None = None


def check_password_first(actor: User, password: str) -> PasswordChecked | None:
    """The password's argon2 check (a tenth of a second and more of CPU, by design) made
    before the request takes the database's write lock, so other writers do not wait for
    it. Inside the lock `_reauthenticate` accepts it only while the stored hash is still
    the one checked; otherwise it checks the password again in full."""
    from consensus.services import accounts

    if accounts.password_matches(actor, password):
        return PasswordChecked(actor.id, actor.password_hash or "")
    return None


def _still_checked(actor: User, checked: PasswordChecked | None) -> bool:
    """True when the password was found right moments ago against the hash still stored
    for this active user (read now, inside the transaction that signs)."""
    if checked is None or checked.user_id != actor.id:
        return False
    current = db.session.execute(
        select(User.password_hash, User.active).where(User.id == actor.id)
    ).one_or_none()
    return bool(
        current is not None and current.active and current.password_hash == checked.password_hash
    )


def _reauthenticate(actor: User, proof: ReAuthentication) -> None:
    """Password, and the second factor when enrolled: a stolen session alone cannot sign."""
    from consensus.services import accounts

    if not _still_checked(actor, proof.checked):
        user = accounts.authenticate(actor.email, proof.password)
        if user is None or user.id != actor.id:
            raise Forbidden(str(_l("The password is not correct.")))
    if actor.totp_enabled and accounts.verify_second_factor(actor, proof.code) is None:
        raise Forbidden(str(_l("That code is not correct. Try the current code.")))


def sign_with_platform_key(
    process: Process,
    round_: Round,
    organisation: Organisation,
    *,
    actor: User,
    proof: ReAuthentication,
) -> CoSignature:
    """Co-sign with the organisation's platform-held key, right after re-authentication."""
    return _platform_sign(process, round_, organisation, actor=actor, proof=proof)


def _platform_sign(
    process: Process,
    round_: Round,
    organisation: Organisation,
    *,
    actor: User,
    proof: ReAuthentication | None,
) -> CoSignature:
    """The platform-held signature itself. `proof=None` skips re-authentication: only the
    demo builder (a command-line tool without a person at the keyboard) passes None."""
    decision = may_sign(actor, process, round_, organisation)
    if not decision:
        raise Forbidden(decision.reason)
    if custody_of(organisation) != KeyCustody.PLATFORM_HELD:
        raise DomainError(str(_l("This organisation signs with its representatives' own keys.")))
    letter = _lock_letter(_letter_to_sign(process, round_, actor=actor))
    if proof is not None:
        _reauthenticate(actor, proof)
    key = platform_key(organisation)
    if key is None:
        raise DomainError(str(_l("This organisation has no platform-held key yet.")))
    signed_at = utcnow().replace(microsecond=0)
    statement = _statement_bytes(
        process, letter, organisation, actor=actor, key=key, signed_at=signed_at
    )
    try:
        private = _platform_private_key(key)
    except KeystoreError as error:
        raise DomainError(str(_l("The platform cannot open this key."))) from error
    armoured = sshsig.sign(private, statement, NAMESPACE)
    return _record_signature(
        process, round_, organisation, letter, actor, key, statement, armoured, signed_at
    )


def parse_statement(data: bytes) -> dict[str, object]:
    if not data or len(data) > STATEMENT_MAX_BYTES:
        raise DomainError(str(_l("Upload the statement file (at most 8 kB).")), field="statement")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise DomainError(str(_l("The statement is not JSON.")), field="statement") from error
    if not isinstance(value, dict):
        raise DomainError(str(_l("The statement is not JSON.")), field="statement")
    return value


def accept_uploaded_signature(
    process: Process,
    round_: Round,
    organisation: Organisation,
    *,
    actor: User,
    statement: bytes,
    signature: bytes,
) -> CoSignature:
    """Accept a statement signed locally with `ssh-keygen -Y sign`, after checking that
    it is byte for byte the statement we would issue (same version, same letter, this
    organisation, this signer, one of their keys in use) and that the signature verifies."""
    decision = may_sign(actor, process, round_, organisation)
    if not decision:
        raise Forbidden(decision.reason)
    if custody_of(organisation) != KeyCustody.SIGNER_HELD:
        raise DomainError(str(_l("This organisation's key is held by the platform.")))
    if not signature or len(signature) > SIGNATURE_MAX_BYTES:
        raise DomainError(str(_l("Upload the .sig file (at most 8 kB).")), field="signature")
    try:
        armoured = signature.decode("ascii")
    except UnicodeDecodeError as error:
        raise DomainError(
            str(_l("This is not an SSH signature file.")), field="signature"
        ) from error
    claimed = parse_statement(statement)
    letter = _lock_letter(_letter_to_sign(process, round_, actor=actor))
    fingerprint = claimed.get("key_fingerprint")
    key = (
        db.session.execute(select(SigningKey).where(SigningKey.fingerprint == str(fingerprint)))
        .scalars()
        .first()
    )
    if key is None:
        raise DomainError(
            str(_l("The statement names a key that is not enrolled.")), field="statement"
        )
    _check_key_for(key, organisation, actor)
    try:
        signed_at = datetime.strptime(str(claimed.get("signed_at")), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC
        )
    except ValueError as error:
        raise DomainError(
            str(_l("The statement has no valid signing time.")), field="statement"
        ) from error
    now = utcnow()
    if signed_at > now + CLOCK_SKEW or signed_at < now - STATEMENT_MAX_AGE:
        raise DomainError(
            str(_l("The statement is too old or in the future. Download a fresh one.")),
            field="statement",
        )
    expected = _statement_bytes(
        process, letter, organisation, actor=actor, key=key, signed_at=signed_at
    )
    if expected != statement:
        raise DomainError(
            str(
                _l(
                    "The statement is not the one for this round, version, organisation and "
                    "signer. Download it again and sign it unchanged."
                )
            ),
            field="statement",
        )
    try:
        sshsig.verify(armoured, statement, NAMESPACE, [key.public_key])
    except sshsig.SignatureError as error:
        raise DomainError(
            str(_l("The signature does not verify: %(why)s", why=str(error))), field="signature"
        ) from error
    return _record_signature(
        process, round_, organisation, letter, actor, key, statement, armoured, signed_at
    )


def _record_signature(
    process: Process,
    round_: Round,
    organisation: Organisation,
    letter: JointLetter,
    actor: User,
    key: SigningKey,
    statement: bytes,
    armoured: str,
    signed_at: datetime,
) -> CoSignature:
    already = db.session.execute(
        select(CoSignature.id).where(
            CoSignature.round_id == round_.id,
            CoSignature.organisation_id == organisation.id,
            CoSignature.withdrawn_at.is_(None),
        )
    ).first()
    if already is not None:  # checked under the letter lock, so no race
        raise Conflict(
            str(
                _l(
                    "%(org)s has already signed. Withdraw that signature first.",
                    org=organisation.name,
                )
            )
        )
    name, title = _signer_snapshot(actor, organisation)
    cosignature = CoSignature(
        process_id=process.id,
        round_id=round_.id,
        organisation_id=organisation.id,
        version_id=letter.version_id,
        letter_id=letter.id,
        key_id=key.id,
        signer_id=actor.id,
        signer_name=name,
        signer_title=title,
        custody=key.custody,
        statement=statement,
        signature=armoured,
        signed_at=signed_at,
        recorded_at=utcnow(),
    )
    db.session.add(cosignature)
    try:
        db.session.flush()
    except IntegrityError as error:
        raise Conflict(
            str(
                _l(
                    "%(org)s has already signed. Withdraw that signature first.",
                    org=organisation.name,
                )
            )
        ) from error
    _write_signed_pdf(
        letter, _add_pdf_signature(letter, letter.signed_pdf or letter.unsigned_pdf, cosignature)
    )
    _audit_and_checkpoint(
        "cosignature.signed",
        cosignature,
        actor,
        statement_sha256=hashlib.sha256(statement).hexdigest(),
        key=key.fingerprint,
        custody=key.custody.value,
        letter_revision=letter.revision,
        letter_sha256=hashlib.sha256(letter.signed_pdf or b"").hexdigest(),
    )
    events.record(
        events.CoSigned(round_id=round_.id, process_id=process.id, organisation_id=organisation.id)
    )
    return cosignature


def _audit_and_checkpoint(
    action: str, cosignature: CoSignature, actor: User | None, **payload: object
) -> None:
    audit.record(
        action,
        actor=actor,
        object_type="co_signature",
        object_id=cosignature.id,
        organisation_id=cosignature.organisation_id,
        payload={
            "process": cosignature.process_id,
            "round": cosignature.round_id,
            "version": cosignature.version_id,
            **payload,
        },
    )
    from consensus.services import checkpoints

    checkpoints.make_checkpoint(actor)


def withdraw(cosignature: CoSignature, *, actor: User) -> None:
    """Withdraw an organisation's signature while the round is open. The statement stays
    on record (flagged withdrawn); the letter is signed again without it."""
    round_ = db.session.get_one(Round, cosignature.round_id)
    process = round_.process
    decision = permissions.gate(
        actor, Action.SIGN, process, cosignature.organisation, round_=round_
    )
    if not decision:
        raise Forbidden(decision.reason)
    letter = _lock_letter(db.session.get_one(JointLetter, cosignature.letter_id))
    db.session.refresh(cosignature)
    if cosignature.withdrawn_at is not None:
        raise DomainError(str(_l("This signature was already withdrawn.")))
    cosignature.withdrawn_at = utcnow()
    cosignature.withdrawn_by_id = actor.id
    db.session.flush()
    pdf: bytes | None = None
    for remaining in current_signatures(round_):
        pdf = _add_pdf_signature(letter, pdf or letter.unsigned_pdf, remaining)
    _write_signed_pdf(letter, pdf)
    _audit_and_checkpoint(
        "cosignature.withdrawn",
        cosignature,
        actor,
        letter_revision=letter.revision,
        letter_sha256=hashlib.sha256(pdf).hexdigest() if pdf else None,
    )


# --- Verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureCheck:
    """What the public page shows for one signature."""

    signature: CoSignature
    verified: bool
    reason: str = ""

    @property
    def key_revoked(self) -> bool:
        return self.signature.key.revoked_at is not None

    @property
    def signed_before_revocation(self) -> bool:
        revoked = self.signature.key.revoked_at
        return revoked is None or self.signature.signed_at < revoked


def check_signature(cosignature: CoSignature, letter: JointLetter | None = None) -> SignatureCheck:
    """Verify now: the SSHSIG over the stored bytes with the enrolled key, and that the
    statement names this version's text hash and this letter's hash."""
    try:
        sshsig.verify(
            cosignature.signature, cosignature.statement, NAMESPACE, [cosignature.key.public_key]
        )
        claimed = json.loads(cosignature.statement)
    except (sshsig.SignatureError, ValueError) as error:
        return SignatureCheck(cosignature, False, str(error))
    version = db.session.get_one(Version, cosignature.version_id)
    letter = letter or db.session.get_one(JointLetter, cosignature.letter_id)
    if claimed.get("version", {}).get("sha256") != version.sha256:
        return SignatureCheck(cosignature, False, "text hash differs")
    if claimed.get("letter", {}).get("unsigned_sha256") != letter.unsigned_sha256:
        return SignatureCheck(cosignature, False, "letter hash differs")
    if claimed.get("key_fingerprint") != cosignature.key.fingerprint:
        return SignatureCheck(cosignature, False, "key differs")
    if (
        cosignature.key.revoked_at is not None
        and cosignature.signed_at >= cosignature.key.revoked_at
    ):
        return SignatureCheck(cosignature, False, "signed after revocation")
    return SignatureCheck(cosignature, True)


def allowed_signers_line(key: SigningKey) -> str:
    """`org namespaces="cosign@consensus",valid-after=…[,valid-before=…] ssh-ed25519 …`.

    Validity comes from enrolment and revocation, so `ssh-keygen -Overify-time=` accepts a
    statement signed before a revocation and refuses one signed after it."""
    line = sshsig.allowed_signers_line(key.organisation.slug, NAMESPACE, key.public_key)
    principal, rest = line.split(" ", 1)
    options, key_part = rest.split(" ", 1)
    options += f',valid-after="{_ssh_time(key.created_at - timedelta(minutes=1))}"'
    if key.revoked_at is not None:
        options += f',valid-before="{_ssh_time(key.revoked_at)}"'
    return f"{principal} {options} {key_part}"


def ssh_verify_time(cosignature: CoSignature) -> str:
    return _ssh_time(cosignature.signed_at)


# --- Status table and round closing -----------------------------------------------------------


def _signing_status(
    round_ids: list[int], organisation_ids: list[int] | None = None
) -> dict[tuple[int, int], tuple[datetime, str]]:
    statement = select(
        CoSignature.round_id,
        CoSignature.organisation_id,
        CoSignature.signed_at,
        CoSignature.signer_name,
    ).where(CoSignature.round_id.in_(round_ids), CoSignature.withdrawn_at.is_(None))
    if organisation_ids is not None:
        statement = statement.where(CoSignature.organisation_id.in_(organisation_ids))
    rows = db.session.execute(statement).all()
    return {(round_id, org_id): (at, name) for round_id, org_id, at, name in rows}


def _on_round_closed(round_: Round, actor: User | None) -> None:
    """A closing signing round fixes the letter as it stands: audited and checkpointed."""
    if round_.type != RoundType.SIGNING:
        return
    letter = letter_of(round_)
    if letter is None:
        return
    audit.record(
        "letter.finalised",
        actor=actor,
        object_type="joint_letter",
        object_id=letter.id,
        payload={
            "round": round_.id,
            "signatures": [s.id for s in current_signatures(round_)],
            "signed_sha256": hashlib.sha256(letter.signed_pdf).hexdigest()
            if letter.signed_pdf
            else None,
        },
        origin=None if actor else "clock",
    )
    from consensus.services import checkpoints

    checkpoints.make_checkpoint(actor)


def _on_round_opened(round_: Round, actor: User | None) -> None:
    """A signing round lays its letter out as it opens (the facilitator's request or the
    clock), so that the signing page and the statement download only read it. Nothing to
    sign (no adopted version, nobody eligible): no letter, and the page says so."""
    if round_.type != RoundType.SIGNING:
        return
    process = round_.process
    if letter_of(round_) is not None or not eligible_organisations(process, round_):
        return
    try:
        with db.session.begin_nested():
            ensure_letter(process, round_, actor=actor)
    except DomainError:
        return


def ensure_letters_of_open_rounds() -> int:
    """Lay out the letter of every open signing round that has none yet (a round opened
    before letters were laid out at opening, or whose letter could not be laid out then):
    run by `flask rounds tick`. Returns how many were laid out."""
    laid_out = 0
    for round_ in db.session.execute(
        select(Round).where(Round.type == RoundType.SIGNING, Round.state == RoundState.OPEN)
    ).scalars():
        if letter_of(round_) is None:
            _on_round_opened(round_, None)
            laid_out += letter_of(round_) is not None
    return laid_out


def record_failed_reauthentication(
    round_: Round, organisation: Organisation, *, actor: User, reason: str
) -> None:
    """A platform signature refused at re-authentication (wrong password or code, or
    another rule): a security event in the audit trail, in its own transaction (the
    refused signature's was rolled back)."""
    audit.record(
        "cosignature.reauthentication_failed",
        actor=db.session.get(User, actor.id),
        object_type="round",
        object_id=round_.id,
        organisation_id=organisation.id,
        result="failure",
        payload={"reason": reason},
    )


def register() -> None:
    """Hook into processes (status table, round closing). Called once by
    consensus.hooks.register (create_app); idempotent."""
    processes.STATUS_PROVIDERS[RoundType.SIGNING] = _signing_status
    if _on_round_closed not in processes.ROUND_CLOSED_HOOKS:
        processes.ROUND_CLOSED_HOOKS.append(_on_round_closed)
    if _on_round_opened not in processes.ROUND_OPENED_HOOKS:
        processes.ROUND_OPENED_HOOKS.append(_on_round_opened)
