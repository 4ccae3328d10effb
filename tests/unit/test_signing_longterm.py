"""Trusted timestamps and long-term validation (issue 22): a local Certomancer TSA on
loopback, the platform CA's own CRL, the letter checked with pdfsig and pyhanko for real."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from flask_babel import force_locale
from sqlalchemy import func, select

from consensus import signing
from consensus.extensions import db
from consensus.models import AuditEvent, CoSignature, JointLetter
from consensus.services.errors import DomainError
from consensus.signing import bundle, documents, longterm
from tests.factories import make_user
from tests.pki_support import start_local_pki
from tests.signing_support import make_signing_world, sign_as
from tests.tools import require_tool
from tests.unit.test_signing_bundle import commands, run, unpack


@pytest.fixture
def local_pki(tmp_path):
    pki = start_local_pki(tmp_path / "pki")
    yield pki
    pki.stop()


@pytest.fixture
def tsa_app(app, local_pki):
    app.config["TSA_URL"] = local_pki.tsa_url
    app.config["TRUST_ANCHORS"] = str(local_pki.anchors_dir)
    return app


@pytest.fixture
def tools(monkeypatch):
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    for name in ("pdfsig", "pyhanko", "sha256sum", "ssh-keygen"):
        require_tool(name)


def _sign_everyone(world):
    for org in world.orgs:
        sign_as(world, org)
        db.session.commit()
    return signing.letter_of(world.signing)


def test_every_signature_is_timestamped_and_the_final_letter_is_sealed(tsa_app):
    world = make_signing_world()
    sign_as(world, world.orgs[0])
    db.session.commit()
    letter = signing.letter_of(world.signing)
    assert letter.sealed_at is None  # not final yet: B-T, no document timestamp
    assert not documents.has_document_timestamp(letter.signed_pdf)
    letter = _sign_everyone_else(world)
    assert letter.sealed_at is not None
    assert documents.has_document_timestamp(letter.signed_pdf)
    assessed = longterm.assess(letter.signed_pdf)
    assert len(assessed) == 4
    for org in world.orgs:
        a = assessed[f"Signature-{org.slug}"]
        assert a.timestamped and a.valid and a.trusted, a.summary
        assert a.level == longterm.ADVANCED_PLATFORM_CA
    # The sealed letter still begins with the unsigned one (incremental updates only).
    assert letter.signed_pdf.startswith(letter.unsigned_pdf)
    sealed = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "letter.sealed")
    ).scalar_one()
    assert sealed.object_id == str(letter.id)


def _sign_everyone_else(world):
    for org in world.orgs[1:]:
        sign_as(world, org)
        db.session.commit()
    return signing.letter_of(world.signing)


def test_bundle_commands_confirm_timestamps_and_ltv_offline(tsa_app, local_pki, tmp_path, tools):
    world = make_signing_world()
    letter = _sign_everyone(world)
    data = bundle.build(world.process, world.signing, letter)
    local_pki.stop()  # from here on: no TSA, no CRL server, only the files
    folder = unpack(data, tmp_path / "bundle")
    assert (folder / "tsa.pem").read_text().count("BEGIN CERTIFICATE") == 1
    verify_md = (folder / "VERIFY.md").read_text()
    lines = commands(verify_md)
    outputs = {}
    for command in lines:
        result = run(command, folder)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        outputs[command] = result.stdout
    (pdfsig,) = [o for c, o in outputs.items() if c.startswith("pdfsig")]
    assert pdfsig.count("Signature is Valid.") == 4
    assert pdfsig.count("Signer Certificate Common Name: Test Timestamping Authority") == 1
    (ades,) = [o for c, o in outputs.items() if c.startswith("pyhanko sign adesverify")]
    assert ades.count("The signature is judged VALID.") == 4
    assert ades.count("This timestamp is backed by a time stamping authority.") == 4
    assert ades.count("The TSA certificate is trusted.") == 4
    assert "advanced electronic signature (certificate from the platform's own CA)" in verify_md
    assert "from timestamping authority (RFC 3161)" in verify_md


def test_a_certificate_revoked_after_signing_leaves_the_signature_valid(
    tsa_app, local_pki, tmp_path, tools, client
):
    world = make_signing_world()
    letter = _sign_everyone(world)
    first = world.orgs[0]
    certificate = signing.current_certificate(first)
    signing.revoke_certificate(certificate, actor=make_user(is_admin=True), reason="gestolen")
    db.session.commit()
    # The CRL the app publishes lists it from now on.
    ca = signing.current_ca()
    response = client.get(f"/pki/ca-{ca.id}.crl")
    assert response.status_code == 200
    listed = asn1_crl.CertificateList.load(response.data)["tbs_cert_list"]["revoked_certificates"]
    assert [format(e["user_certificate"].native, "x") for e in listed] == [certificate.serial]
    # Judged now, with that CRL: valid at its timestamped time.
    assessed = longterm.assess(letter.signed_pdf)
    assert assessed[f"Signature-{first.slug}"].valid
    # And offline, with the bundle's commands.
    data = bundle.build(world.process, world.signing, letter)
    local_pki.stop()
    folder = unpack(data, tmp_path / "bundle")
    (ades,) = [c for c in commands((folder / "VERIFY.md").read_text()) if "adesverify" in c]
    result = run(ades, folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("The signature is judged VALID.") == 4


def test_signing_after_revocation_is_refused_and_changes_nothing(tsa_app):
    world = make_signing_world()
    sign_as(world, world.orgs[1])
    db.session.commit()
    first = world.orgs[0]
    certificate = signing.current_certificate(first) or signing.issue_certificate(first, actor=None)
    signing.revoke_certificate(certificate, actor=make_user(is_admin=True), reason="gelekt")
    db.session.commit()
    letter = signing.letter_of(world.signing)
    before = (letter.signed_pdf, letter.revision)
    with force_locale("en"), pytest.raises(DomainError, match="revoked"):
        sign_as(world, first)
    db.session.rollback()
    with force_locale("nl"), pytest.raises(DomainError, match="is ingetrokken"):
        sign_as(world, first)
    db.session.rollback()
    letter = db.session.get(JointLetter, letter.id)
    db.session.refresh(letter)
    assert (letter.signed_pdf, letter.revision) == before
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(CoSignature)
            .where(CoSignature.organisation_id == first.id)
        )
        == 0
    )
    # A new certificate lets the organisation sign again.
    signing.issue_certificate(first, actor=make_user(is_admin=True))
    db.session.commit()
    sign_as(world, first)
    db.session.commit()


def test_pyhanko_refuses_a_revoked_certificate_even_past_the_domain_check(tsa_app):
    """Defence in depth: with a TSA configured the signer's certificate is validated
    against the CRL before pyHanko signs, so a revoked certificate cannot slip through."""
    world = make_signing_world()
    first = world.orgs[0]
    certificate = signing.issue_certificate(first, actor=None)
    signing.revoke_certificate(certificate, actor=make_user(is_admin=True), reason="gelekt")
    db.session.commit()
    letter = signing.letter_of(world.signing)
    with (
        force_locale("en"),
        pytest.raises(DomainError, match="could not be validated"),
        longterm.explained_failures(first.name),
    ):
        documents.sign_pdf(
            letter.unsigned_pdf,
            credentials=signing.authority._credentials(certificate),
            field_name="Signature-x",
            box=None,
            stamp=documents.StampText("N", "T", first.name, letter.created_at, "SHA256:x"),
            reason="r",
            location="l",
            timestamper=longterm.timestamper(),
            validation_context=longterm.validation_context(fetching=True),
        )


def test_a_timestamping_service_that_is_down_refuses_cleanly(tsa_app, local_pki):
    world = make_signing_world()
    sign_as(world, world.orgs[0])
    db.session.commit()
    letter = signing.letter_of(world.signing)
    before = (letter.signed_pdf, letter.revision)
    local_pki.stop()
    with (
        force_locale("en"),
        pytest.raises(DomainError, match="timestamping service could not be reached"),
    ):
        sign_as(world, world.orgs[1])
    db.session.rollback()
    with force_locale("nl"), pytest.raises(DomainError, match="tijdstempeldienst was niet"):
        sign_as(world, world.orgs[1])
    db.session.rollback()
    letter = db.session.get(JointLetter, letter.id)
    db.session.refresh(letter)
    assert (letter.signed_pdf, letter.revision) == before
    assert len(signing.current_signatures(world.signing)) == 1


def test_without_a_timestamping_service_the_clock_is_named(app):
    world = make_signing_world()
    sign_as(world, world.orgs[0])
    db.session.commit()
    letter = signing.letter_of(world.signing)
    (a,) = longterm.assess(letter.signed_pdf).values()
    assert not a.timestamped
    assert a.valid and a.level == longterm.ADVANCED_PLATFORM_CA


def test_a_round_closing_while_the_tsa_is_down_closes_and_is_sealed_later(tsa_app, local_pki):
    from consensus.services import processes

    world = make_signing_world()
    for org in world.orgs[:2]:
        sign_as(world, org)
        db.session.commit()
    tsa_app.config["TSA_URL"] = local_pki.prefix + "/no-such-tsa"
    processes.close_round(world.signing, actor=world.facilitator)
    db.session.commit()
    letter = signing.letter_of(world.signing)
    assert world.signing.state.value == "closed"
    assert letter.sealed_at is None and not documents.has_document_timestamp(letter.signed_pdf)
    tsa_app.config["TSA_URL"] = local_pki.tsa_url
    assert signing.seal_letters_of_closed_rounds() == 1
    db.session.commit()
    letter = signing.letter_of(world.signing)
    assert letter.sealed_at is not None and documents.has_document_timestamp(letter.signed_pdf)
    assert signing.seal_letters_of_closed_rounds() == 0
