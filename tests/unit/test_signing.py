"""Co-signing rules at the service level: statements, refusals, re-authentication,
revocation, withdrawal, audit, and concurrent signers (real database, threads)."""

from __future__ import annotations

import json
import threading

import pyotp
import pytest
from flask_babel import force_locale
from sqlalchemy import select

from consensus import signing
from consensus.audit import verify as audit_verify
from consensus.crypto import sshsig
from consensus.extensions import db
from consensus.models import (
    AuditEvent,
    Checkpoint,
    CoSignature,
    JointLetter,
    KeyCustody,
    Organisation,
    Process,
    Round,
    StanceKind,
    User,
)
from consensus.permissions.signing import may_sign
from consensus.services import processes
from consensus.services.errors import DomainError, Forbidden
from consensus.signing import authority, keys
from consensus.signing import documents as letters
from tests.factories import PASSWORD
from tests.signing_support import make_signing_world, sign_as


def pdf_signers(world) -> list[str]:
    letter = signing.letter_of(world.signing)
    if letter.signed_pdf is None:
        return []
    return [c.field_name for c in letters.validate_pdf(letter.signed_pdf, signing.all_ca_pem())]


def test_statement_is_canonical_json_naming_text_letter_signer_and_key(app):
    world = make_signing_world()
    org = world.orgs[2]  # signer-held
    rep = world.reps[org.id]
    raw = signing.prepare_statement(
        world.process, world.signing, org, actor=rep, key=world.keys[org.id]
    )
    value = json.loads(raw)
    assert raw == signing.canonical_json(value) and raw.endswith(b"}\n")
    letter = signing.letter_of(world.signing)
    assert value["type"] == "cosign"
    assert value["process"]["slug"] == world.process.slug
    assert value["version"] == {"number": 1, "sha256": letter.version.sha256}
    assert value["letter"] == {"unsigned_sha256": letter.unsigned_sha256}
    assert value["organisation"]["slug"] == org.slug
    assert value["signer"] == {"name": rep.display_name, "title": "Voorzitter"}
    assert value["key_fingerprint"] == world.keys[org.id].fingerprint
    assert value["signed_at"].endswith("Z")


def test_all_four_sign_and_the_letter_carries_four_valid_pdf_signatures(app):
    world = make_signing_world()
    for org in world.orgs:
        cosignature = sign_as(world, org)
        db.session.commit()
        assert signing.check_signature(cosignature).verified
    assert pdf_signers(world) == [f"Signature-{o.slug}" for o in world.orgs]
    assert signing.letter_is_final(world.process, world.signing)
    letter = signing.letter_of(world.signing)
    assert letter.signed_pdf.startswith(letter.unsigned_pdf)
    status = processes.response_status(world.process, world.signing)
    assert all(s.acted for s in status)
    actions = db.session.execute(select(AuditEvent.action)).scalars().all()
    assert actions.count("cosignature.signed") == 4
    assert db.session.execute(select(Checkpoint)).scalars().first() is not None


def test_platform_key_is_sealed_never_plain(app):
    world = make_signing_world()
    key = world.keys[world.orgs[0].id]
    private = keys._platform_private_key(key)
    raw = private.private_bytes_raw()
    assert key.sealed_private_key.startswith("v1:")
    assert raw.hex() not in key.sealed_private_key and raw not in key.sealed_private_key.encode()


def test_wrong_password_refused_and_totp_required_when_enrolled(app):
    world = make_signing_world()
    org = world.orgs[0]
    rep = world.reps[org.id]
    with pytest.raises(Forbidden):
        sign_as(world, org, password="not the password")
    db.session.rollback()
    secret = pyotp.random_base32()
    rep.totp_secret, rep.totp_enabled = secret, True
    db.session.commit()
    proof = signing.ReAuthentication(PASSWORD, "000000")
    with pytest.raises(Forbidden):
        signing.sign_with_platform_key(world.process, world.signing, org, actor=rep, proof=proof)
    db.session.rollback()
    proof = signing.ReAuthentication(PASSWORD, pyotp.TOTP(secret).now())
    signing.sign_with_platform_key(world.process, world.signing, org, actor=rep, proof=proof)
    db.session.commit()
    assert pdf_signers(world) == [f"Signature-{org.slug}"]


def _signed_statement(world, org, key=None, private=None, **changes):
    rep = world.reps[org.id]
    raw = signing.prepare_statement(
        world.process, world.signing, org, actor=rep, key=key or world.keys[org.id]
    )
    if changes:
        value = json.loads(raw)
        value.update(changes)
        raw = signing.canonical_json(value)
    return raw, sshsig.sign(private or world.private_keys[org.id], raw, signing.NAMESPACE)


def test_signature_by_another_organisations_key_is_refused(app):
    world = make_signing_world()
    org, other = world.orgs[2], world.orgs[3]
    statement, _ = _signed_statement(world, org)
    forged = sshsig.sign(world.private_keys[other.id], statement, signing.NAMESPACE)
    with pytest.raises(DomainError):
        signing.accept_uploaded_signature(
            world.process,
            world.signing,
            org,
            actor=world.reps[org.id],
            statement=statement,
            signature=forged.encode(),
        )
    db.session.rollback()
    # Naming the other organisation's key in the statement is refused too.
    with pytest.raises(Forbidden):
        signing.prepare_statement(
            world.process, world.signing, org, actor=world.reps[org.id], key=world.keys[other.id]
        )


def test_statement_over_another_version_is_refused(app):
    world = make_signing_world()
    org = world.orgs[2]
    statement, armoured = _signed_statement(world, org, version={"number": 2, "sha256": "0" * 64})
    with pytest.raises(DomainError) as refused:
        signing.accept_uploaded_signature(
            world.process,
            world.signing,
            org,
            actor=world.reps[org.id],
            statement=statement,
            signature=armoured.encode(),
        )
    assert refused.value.field == "statement"


def test_revoked_key_is_refused_but_earlier_signatures_stay_verifiable_and_flagged(app):
    world = make_signing_world()
    org = world.orgs[2]
    rep = world.reps[org.id]
    cosignature = sign_as(world, org)
    db.session.commit()
    signing.revoke_key(world.keys[org.id], actor=rep, reason="laptop lost")
    db.session.commit()
    check = signing.check_signature(cosignature)
    assert check.verified and check.key_revoked and check.signed_before_revocation
    assert "valid-before=" in signing.allowed_signers_line(world.keys[org.id])
    signing.withdraw(cosignature, actor=rep)
    db.session.commit()
    with force_locale("en"), pytest.raises(DomainError, match="revoked"):
        _signed_statement(world, org)


def test_only_organisations_whose_stance_counted_may_sign(app):
    world = make_signing_world(
        custody=(KeyCustody.PLATFORM_HELD,) * 4,
        stances=(StanceKind.ENDORSE, StanceKind.ENDORSE, StanceKind.ENDORSE, StanceKind.ABSTAIN),
    )
    abstainer = world.orgs[3]
    with force_locale("en"):
        gate = may_sign(world.reps[abstainer.id], world.process, world.signing, abstainer)
    assert not gate and "counted" in gate.reason
    with pytest.raises(Forbidden):
        sign_as(world, abstainer)
    assert [o.id for o in signing.eligible_organisations(world.process, world.signing)] == sorted(
        (o.id for o in world.orgs[:3]), key=lambda i: db.session.get(Organisation, i).name
    )


def test_someone_without_the_mandate_cannot_sign(app):
    world = make_signing_world()
    org, other = world.orgs[0], world.orgs[1]
    with pytest.raises(Forbidden):
        signing.sign_with_platform_key(
            world.process,
            world.signing,
            org,
            actor=world.reps[other.id],
            proof=signing.ReAuthentication(PASSWORD),
        )


def test_closed_round_refuses_signing_and_withdrawal(app):
    world = make_signing_world()
    org = world.orgs[0]
    cosignature = sign_as(world, org)
    db.session.commit()
    processes.close_round(world.signing, actor=world.facilitator)
    db.session.commit()
    assert signing.letter_is_final(world.process, world.signing)
    with pytest.raises(Forbidden):
        signing.withdraw(cosignature, actor=world.reps[org.id])
    with pytest.raises(Forbidden):
        sign_as(world, world.orgs[1])
    actions = db.session.execute(select(AuditEvent.action)).scalars().all()
    assert "letter.finalised" in actions


def test_withdrawal_rebuilds_the_letter_without_that_signature(app):
    world = make_signing_world()
    first, second = world.orgs[:2]
    sign_as(world, first)
    withdrawn = sign_as(world, second)
    db.session.commit()
    signing.withdraw(withdrawn, actor=world.reps[second.id])
    db.session.commit()
    assert pdf_signers(world) == [f"Signature-{first.slug}"]
    assert withdrawn.withdrawn_at is not None and withdrawn.statement  # kept on record
    sign_as(world, second)  # may sign again
    db.session.commit()
    assert pdf_signers(world) == [f"Signature-{first.slug}", f"Signature-{second.slug}"]
    assert "cosignature.withdrawn" in db.session.execute(select(AuditEvent.action)).scalars().all()


def test_signing_twice_is_a_conflict(app):
    world = make_signing_world()
    org = world.orgs[0]
    sign_as(world, org)
    db.session.commit()
    with pytest.raises(DomainError):
        sign_as(world, org)


def test_key_management_rules(app):
    world = make_signing_world()
    platform_org, signer_org = world.orgs[0], world.orgs[2]
    rep = world.reps[signer_org.id]
    with pytest.raises(DomainError):
        signing.enrol_key(platform_org, actor=world.reps[platform_org.id], public_key_line="x")
    with pytest.raises(DomainError):
        signing.enrol_key(signer_org, actor=rep, public_key_line="ssh-rsa AAAAB3NzaC1yc2E= me")
    with pytest.raises(Forbidden):
        signing.enrol_key(signer_org, actor=world.reps[platform_org.id], public_key_line="x")
    old = signing.platform_key(platform_org)
    new = signing.rotate_key(old, actor=world.reps[platform_org.id])
    db.session.commit()
    assert old.retired_at is not None and new.in_use and new.fingerprint != old.fingerprint
    with pytest.raises(Forbidden):
        signing.set_custody(platform_org, KeyCustody.SIGNER_HELD, actor=rep)


def test_uploaded_pkcs12_is_checked_and_used(app):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    world = make_signing_world()
    org = world.orgs[0]
    admin = db.session.execute(select(User).where(User.is_admin.is_(True))).scalars().first()
    with pytest.raises(DomainError):
        signing.upload_pkcs12(org, actor=admin, data=b"not pkcs12", password="")
    row = signing.issue_certificate(world.orgs[1], actor=admin)
    private = serialization.load_der_private_key(authority._credentials(row).private_key_der, None)
    cert = x509.load_pem_x509_certificate(row.certificate_pem.encode())
    data = pkcs12.serialize_key_and_certificates(
        b"org", private, cert, None, serialization.BestAvailableEncryption(b"geheim")
    )
    with pytest.raises(DomainError):
        signing.upload_pkcs12(org, actor=admin, data=data, password="fout")
    uploaded = signing.upload_pkcs12(org, actor=admin, data=data, password="geheim")
    db.session.commit()
    assert signing.current_certificate(org).id == uploaded.id


def test_concurrent_signers_lose_no_signature(app):
    """Four representatives press "sign" at the same moment; the letter row serialises
    them and the final PDF carries all four signatures."""
    world = make_signing_world()
    letter = signing.ensure_letter(world.process, world.signing)
    for org in world.orgs:
        signing.current_certificate(org) or signing.issue_certificate(org, actor=None)
    db.session.commit()
    process_id, round_id = world.process.id, world.signing.id
    barrier = threading.Barrier(len(world.orgs))
    errors: list[BaseException] = []

    def sign(org_id: int) -> None:
        # A POST request context: on SQLite the app then begins write transactions with
        # BEGIN IMMEDIATE, as it does for real form posts; PostgreSQL relies on the row lock.
        with app.app_context(), app.test_request_context("/", method="POST"):
            try:
                process = db.session.get_one(Process, process_id)
                round_ = db.session.get_one(Round, round_id)
                org = db.session.get_one(Organisation, org_id)
                rep = db.session.get_one(User, world.reps[org_id].id)
                local = type(world)(
                    world.facilitator,
                    process,
                    world.endorsement,
                    round_,
                    world.orgs,
                    {org_id: rep},
                    world.private_keys,
                    world.keys,
                )
                if signing.custody_of(org) == KeyCustody.SIGNER_HELD:
                    local.keys = {
                        org_id: db.session.get(type(world.keys[org_id]), world.keys[org_id].id)
                    }
                db.session.commit()  # release the write lock taken by the reads above
                barrier.wait(timeout=30)
                sign_as(local, org)
                db.session.commit()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=sign, args=(o.id,)) for o in world.orgs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    db.session.rollback()  # a fresh snapshot: the threads committed meanwhile
    letter = db.session.get_one(JointLetter, letter.id)
    assert letter.revision == 4
    fields = [c.field_name for c in letters.validate_pdf(letter.signed_pdf, signing.all_ca_pem())]
    assert sorted(fields) == sorted(f"Signature-{o.slug}" for o in world.orgs)
    assert len(db.session.execute(select(CoSignature)).scalars().all()) == 4
    assert all(
        c.valid and c.intact for c in letters.validate_pdf(letter.signed_pdf, signing.all_ca_pem())
    )


def test_two_first_signers_at_once_both_sign_the_one_letter(app, monkeypatch):
    """The first signers of a round may each find no letter and lay one out at the same
    moment; the database keeps one and the other signer goes on with it (on PostgreSQL
    the second INSERT fails on the unique round; here the race is staged)."""
    from consensus.models import JointLetter
    from consensus.signing import letter as letter_module

    world = make_signing_world()
    first, second = world.orgs[0], world.orgs[1]
    sign_as(world, first)
    db.session.commit()
    real_letter_of = signing.letter_of
    missed = []

    def letter_of_missing_it_once(round_):
        if not missed:
            missed.append(True)
            return None  # as if the other signer's letter was not committed yet
        return real_letter_of(round_)

    # The letter module lays out the letter when its own look-up finds none.
    monkeypatch.setattr(letter_module, "letter_of", letter_of_missing_it_once)
    sign_as(world, second)
    db.session.commit()
    assert missed == [True]
    assert db.session.query(JointLetter).count() == 1
    assert {s.organisation_id for s in signing.current_signatures(world.signing)} == {
        first.id,
        second.id,
    }
    assert audit_verify.verify_log(workers=0).ok
