"""Qualified remote signing end to end (issue 22): the signer authorises at the provider
with the PIN and one-time code of their credential, the provider's certificate is a
qualified one on a QSCD (QC statements), its revocation status comes from a Certomancer
OCSP responder, and the letter's B-LTA validation data carries those OCSP responses.

The provider is certomancer-csc-dummy on loopback behind the gate of
`tests.pki_support.start_local_csc`, which announces `authMode: explicit` and checks the
PIN and code like a provider would (the dummy itself authorises anything).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from consensus import signing
from consensus.extensions import db
from consensus.models import AuditEvent, CoSignature, JointLetter
from consensus.services import processes
from consensus.services.errors import DomainError
from consensus.signing import bundle, documents, longterm, remote
from tests.factories import make_user
from tests.pki_support import start_local_csc, start_local_pki
from tests.signing_support import make_signing_world, sign_as
from tests.tools import require_tool
from tests.unit.test_signing_bundle import commands, run, unpack

PIN = "482913"
OTP = "771204"


@pytest.fixture
def pki(tmp_path):
    local = start_local_pki(tmp_path / "pki")
    yield local
    local.stop()


@pytest.fixture
def csc(pki):
    service = start_local_csc(pki)
    service.pin = PIN
    service.otp = OTP
    yield service
    service.stop()


@pytest.fixture
def tools(monkeypatch):
    """The bundle's commands: pyhanko from this environment, pdfsig and ssh-keygen."""
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    for name in ("pdfsig", "pyhanko", "sha256sum", "ssh-keygen"):
        require_tool(name)


@pytest.fixture
def configured(app, pki):
    app.config["TSA_URL"] = pki.tsa_url
    app.config["TRUST_ANCHORS"] = str(pki.anchors_dir)
    return app


def _connect(org, csc, label="qualified-signer"):
    remote.set_csc(
        org,
        actor=make_user(is_admin=True),
        enabled=True,
        service_url=csc.url,
        credential_id=csc.credential(label),
        token=csc.token,
    )
    db.session.commit()


def _sign(world, org, pin="", otp=""):
    """As the signing page does: platform-held statement key, the signer's password, and
    for the PDF signature the PIN and code typed for the provider."""
    from tests.factories import PASSWORD

    return signing.sign_with_platform_key(
        world.process,
        world.signing,
        org,
        actor=world.reps[org.id],
        proof=signing.ReAuthentication(PASSWORD),
        remote_authorisation=remote.SignerAuthorisation(pin, otp),
    )


def _unchanged(world, before):
    letter = db.session.get(JointLetter, signing.letter_of(world.signing).id)
    db.session.refresh(letter)
    return (letter.signed_pdf, letter.revision) == before


def _payload(event: AuditEvent) -> dict:  # type: ignore[type-arg]
    import json

    return event.payload if isinstance(event.payload, dict) else json.loads(event.payload or "{}")


def _dss(pdf: bytes) -> dict[str, int]:
    from pyhanko.pdf_utils.reader import PdfFileReader

    dss = PdfFileReader(io.BytesIO(pdf)).root["/DSS"]
    return {name: len(dss.get(name, [])) for name in ("/Certs", "/OCSPs", "/CRLs")}


def test_the_signer_authorises_with_pin_and_code_and_the_letter_is_qualified(
    configured,
    csc,
    pki,
    tmp_path,
    tools,
    caplog,
):
    world = make_signing_world()
    first = world.orgs[0]
    _connect(first, csc)
    letter = signing.letter_of(world.signing)
    before = (letter.signed_pdf, letter.revision)

    # No PIN: the provider's credentials/info says the signer must authorise; nothing is
    # asked of credentials/authorize and nothing changes.
    with force_locale("nl"), pytest.raises(remote.SignerMustAuthorise, match="pincode"):
        _sign(world, first)
    db.session.rollback()
    assert not any(path.endswith("credentials/authorize") for path, _ in csc.requests)

    # A wrong PIN: the provider refuses, clearly, and nothing is half-signed.
    for pin, otp in ((PIN[::-1], OTP), (PIN, "000000")):
        with force_locale("nl"), pytest.raises(DomainError, match="klopte niet"):
            _sign(world, first, pin, otp)
        db.session.rollback()
        assert _unchanged(world, before)
        assert signing.current_signatures(world.signing) == []
    with force_locale("en"), pytest.raises(DomainError, match="was not accepted"):
        _sign(world, first, "1", OTP)
    db.session.rollback()

    # The right PIN and code: signed; they went to credentials/authorize and nowhere else.
    caplog.set_level(logging.DEBUG)
    csc.requests.clear()
    _sign(world, first, PIN, OTP)
    db.session.commit()
    carrying = [path for path, body in csc.requests if PIN in str(body) or OTP in str(body)]
    assert carrying == ["/csc/v1/credentials/authorize"]
    assert PIN not in caplog.text and OTP not in caplog.text
    for event in db.session.execute(select(AuditEvent)).scalars():
        assert PIN not in str(event.payload) and OTP not in str(event.payload)
    for row in db.session.execute(select(CoSignature)).scalars():
        assert PIN.encode() not in row.statement

    for org in world.orgs[1:]:
        sign_as(world, org)
        db.session.commit()
    letter = signing.letter_of(world.signing)
    assert letter.sealed_at is not None
    assessed = longterm.assess(letter.signed_pdf)
    mine = assessed[f"Signature-{first.slug}"]
    assert mine.level == longterm.QUALIFIED, mine
    assert mine.valid and mine.timestamped and mine.trusted, mine.summary
    assert mine.signer_subject.startswith("Common Name: Jan Jansen")
    # B-LTA: the provider certificate's status came from the OCSP responder and is in the
    # letter's document security store (with the CRLs: see tests/pki_support.py).
    stored = _dss(letter.signed_pdf)
    assert stored["/OCSPs"] >= 1 and stored["/CRLs"] >= 1, stored

    # The bundle's commands confirm it offline: provider, TSA and responders stopped.
    data = bundle.build(world.process, world.signing, letter)
    csc.stop()
    pki.stop()
    folder = unpack(data, tmp_path / "bundle")
    verify = (folder / "VERIFY.md").read_text()
    assert f"{first.name}: qualified electronic signature;" in verify
    outputs = {}
    for command in commands(verify):
        result = run(command, folder)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        outputs[command] = result.stdout
    (pdfsig,) = [o for c, o in outputs.items() if c.startswith("pdfsig")]
    assert pdfsig.count("Signature is Valid.") == 4
    assert "Signer Certificate Common Name: Jan Jansen" in pdfsig
    (summary,) = [o for c, o in outputs.items() if c.startswith("pyhanko sign validate")]
    assert summary.count(":VALID") == 4, summary
    (ades,) = [o for c, o in outputs.items() if "adesverify" in c]
    assert ades.count("The signature is judged VALID.") == 4
    assert "Jan Jansen" in ades


def test_the_public_page_shows_the_qualified_signature(configured, csc, client):
    world = make_signing_world()
    first = world.orgs[0]
    _connect(first, csc)
    _sign(world, first, PIN, OTP)
    db.session.commit()
    processes.close_round(world.signing, actor=world.facilitator)
    processes.schedule_publication(world.process, actor=world.facilitator, at=None)
    db.session.commit()
    html = client.get(f"/public/{world.process.slug}/signatures").get_data(as_text=True)
    assert html.count("Gekwalificeerde elektronische handtekening") == 1
    assert "Verzegeld op" in html


def test_a_certificate_revoked_at_the_provider_is_refused_through_ocsp(configured, csc):
    """`revoked-signer` names no CRL: only the OCSP responder can say it is revoked."""
    world = make_signing_world()
    first = world.orgs[0]
    _connect(first, csc, "revoked-signer")
    sign_as(world, world.orgs[1])
    db.session.commit()
    letter = signing.letter_of(world.signing)
    before = (letter.signed_pdf, letter.revision)
    with force_locale("en"), pytest.raises(DomainError, match="could not be validated"):
        _sign(world, first, PIN, OTP)
    db.session.rollback()
    assert _unchanged(world, before)
    assert [s.organisation_id for s in signing.current_signatures(world.signing)] == [
        world.orgs[1].id
    ]
    # Refused before the signer was asked for anything at the provider.
    assert not any(path.endswith("signatures/signHash") for path, _ in csc.requests)


def test_revoked_after_signing_the_signature_stays_valid_at_its_timestamp(configured, csc, pki):
    """`later-revoked-signer` is revoked from 2040 on. Judged in 2041 with fresh OCSP
    (the responder's clock moved there): revoked now, yet the signature is valid at its
    timestamped time; the same certificate without that proof of time is not."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.authority import CertTrustAnchor
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
    from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
    from pyhanko_certvalidator.registry import SimpleTrustManager

    world = make_signing_world()
    first = world.orgs[0]
    _connect(first, csc, "later-revoked-signer")
    _sign(world, first, PIN, OTP)
    db.session.commit()
    processes.close_round(world.signing, actor=world.facilitator)
    db.session.commit()
    letter = signing.letter_of(world.signing)
    assert letter.sealed_at is not None
    assert longterm.assess(letter.signed_pdf)[f"Signature-{first.slug}"].valid

    later = datetime(2041, 6, 1, tzinfo=UTC)
    pki.set_clock(later)
    roots = longterm.anchor_certificates()
    (embedded,) = [
        e
        for e in PdfFileReader(io.BytesIO(letter.signed_pdf)).embedded_regular_signatures
        if e.field_name == f"Signature-{first.slug}"
    ]
    # Without the timestamp's proof of time: revoked (the responder says so in 2041).
    # (in a worker thread when an event loop runs here, as after Playwright's tests)
    basic = documents._without_event_loop(
        validate_pdf_signature,
        embedded,
        ValidationContext(
            trust_roots=roots, allow_fetching=True, revocation_mode="hard-fail", moment=later
        ),
    )
    assert not basic.bottom_line
    assert basic.revoked
    # The long-term validation in 2041, fetching fresh OCSP: valid at its timestamp.
    spec = PdfSignatureValidationSpec(
        signature_validation_spec=SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=SimpleTrustManager.build(
                    trust_roots=[CertTrustAnchor(root) for root in roots]
                ),
                revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO),
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.ALWAYS_FETCH
            ),
        )
    )
    timing = ValidationTimingInfo(later, later, point_in_time_validation=False)
    result = documents._without_event_loop(
        lambda: asyncio.run(ades_lta_validation(embedded, spec, timing_info=timing))
    )
    assert result.ades_subindic.status.name == "PASSED", result.failure_msg
    assert result.best_signature_time < datetime(2040, 1, 1, tzinfo=UTC)


def test_a_provider_asking_for_an_oauth2_redirect_is_refused_clearly(configured, csc):
    csc.auth_mode = "oauth2code"
    world = make_signing_world()
    first = world.orgs[0]
    _connect(first, csc)
    with force_locale("nl"), pytest.raises(DomainError, match="OAuth2"):
        _sign(world, first, PIN, OTP)
    db.session.rollback()
    assert signing.current_signatures(world.signing) == []
    assert not any(path.endswith("credentials/authorize") for path, _ in csc.requests)


def test_a_withdrawal_takes_off_a_signature_only_its_signer_can_renew(configured, csc):
    """Withdrawing an earlier signature re-signs the later ones; a remote one whose
    provider wants its signer's PIN cannot be renewed without them, so it comes off too
    (audited), and its organisation can sign again."""
    world = make_signing_world()
    first, second = world.orgs[0], world.orgs[1]
    _connect(second, csc)
    sign_as(world, first)
    db.session.commit()
    _sign(world, second, PIN, OTP)
    db.session.commit()
    mine = signing.current_signatures(world.signing)[0]
    taken_off = signing.withdraw(mine, actor=world.reps[first.id])
    db.session.commit()
    assert taken_off == [second.name]
    assert signing.current_signatures(world.signing) == []
    assert signing.letter_of(world.signing).signed_pdf is None
    reasons = [
        _payload(e).get("reason")
        for e in db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "cosignature.withdrawn")
        ).scalars()
    ]
    assert sorted(r or "" for r in reasons) == ["", "signer_must_authorise_again"]
    _sign(world, second, PIN, OTP)
    db.session.commit()
    assert [s.organisation_id for s in signing.current_signatures(world.signing)] == [second.id]
