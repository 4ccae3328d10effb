"""Remote signing through CSC (issue 22 item 1), offline against certomancer-csc-dummy on
loopback with a Certomancer PKI: only the hash leaves, the PAdES signature is embedded
incrementally, a refused authorisation and a provider that is down change nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from consensus import signing
from consensus.extensions import db
from consensus.models import AuditEvent, JointLetter, SigningSettings
from consensus.services.errors import DomainError, Forbidden
from consensus.signing import bundle, documents, longterm, remote
from tests.factories import make_user
from tests.pki_support import start_local_csc, start_local_pki
from tests.signing_support import make_signing_world, sign_as
from tests.tools import require_tool
from tests.unit.test_signing_bundle import commands, run, unpack


@pytest.fixture
def pki(tmp_path):
    local = start_local_pki(tmp_path / "pki")
    yield local
    local.stop()


@pytest.fixture
def csc(pki):
    service = start_local_csc(pki)
    yield service
    service.stop()


@pytest.fixture
def configured(app, pki):
    app.config["TSA_URL"] = pki.tsa_url
    app.config["TRUST_ANCHORS"] = str(pki.anchors_dir)
    return app


def _connect(org, csc, *, token=None):
    remote.set_csc(
        org,
        actor=make_user(is_admin=True),
        enabled=True,
        service_url=csc.url + "/",
        credential_id=csc.credential_id,
        token=token or csc.token,
    )
    db.session.commit()


def test_an_organisation_signs_remotely_and_the_letter_is_sealed(
    configured, csc, pki, tmp_path, monkeypatch
):
    world = make_signing_world()
    first = world.orgs[0]
    _connect(first, csc)
    for org in world.orgs:
        sign_as(world, org)
        db.session.commit()
    letter = signing.letter_of(world.signing)
    assert letter.sealed_at is not None
    assessed = longterm.assess(letter.signed_pdf)
    mine = assessed[f"Signature-{first.slug}"]
    assert mine.signer_subject.startswith("Common Name: Gemeente Testdorp")
    assert mine.valid and mine.timestamped and mine.trusted, mine.summary
    # The provider's certificate, not the platform's: an advanced signature with the
    # organisation's own certificate (the test certificate claims no qualified status).
    assert mine.level == longterm.ADVANCED_OWN_CERTIFICATE
    others = [assessed[f"Signature-{o.slug}"] for o in world.orgs[1:]]
    assert all(a.level == longterm.ADVANCED_PLATFORM_CA and a.valid for a in others)
    assert signing.current_certificate(first) is None  # no platform certificate was made
    assert letter.signed_pdf.startswith(letter.unsigned_pdf)
    # The bundle's commands confirm it offline: provider, TSA and CRL server stopped.
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    for tool in ("pdfsig", "pyhanko"):
        require_tool(tool)
    data = bundle.build(world.process, world.signing, letter)
    csc.stop()
    pki.stop()
    folder = unpack(data, tmp_path / "bundle")
    verify = (folder / "VERIFY.md").read_text()
    assert "advanced electronic signature (the organisation's own certificate)" in verify
    lines = commands(verify)
    (pdfsig,) = [c for c in lines if c.startswith("pdfsig")]
    assert run(pdfsig, folder).stdout.count("Signature is Valid.") == 4
    (ades,) = [c for c in lines if "adesverify" in c]
    result = run(ades, folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("The signature is judged VALID.") == 4
    assert "Gemeente Testdorp" in result.stdout


def test_the_token_is_sealed_and_never_audited(configured, csc):
    world = make_signing_world()
    _connect(world.orgs[0], csc)
    settings = db.session.get(SigningSettings, world.orgs[0].id)
    assert csc.token not in (settings.csc_sealed_token or "")
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "signing.remote_set")
    ).scalar_one()
    assert csc.token not in str(event.payload)
    assert remote.access_for(world.orgs[0]).token == csc.token


@pytest.mark.parametrize("how", ["declined", "wrong-token"])
def test_a_refused_authorisation_signs_nothing(configured, csc, how):
    world = make_signing_world()
    first = world.orgs[0]
    sign_as(world, world.orgs[1])
    db.session.commit()
    if how == "declined":
        _connect(first, csc)
        csc.declining = True
    else:
        _connect(first, csc, token="not-the-token")
    letter = signing.letter_of(world.signing)
    before = (letter.signed_pdf, letter.revision)
    with force_locale("en"), pytest.raises(DomainError, match="refused the authorisation"):
        sign_as(world, first)
    db.session.rollback()
    with force_locale("nl"), pytest.raises(DomainError, match="weigerde de toestemming"):
        sign_as(world, first)
    db.session.rollback()
    letter = db.session.get(JointLetter, letter.id)
    db.session.refresh(letter)
    assert (letter.signed_pdf, letter.revision) == before
    assert [s.organisation_id for s in signing.current_signatures(world.signing)] == [
        world.orgs[1].id
    ]


def test_a_provider_that_is_down_signs_nothing(configured, csc):
    world = make_signing_world()
    first = world.orgs[0]
    _connect(first, csc)
    csc.stop()
    with force_locale("en"), pytest.raises(DomainError, match="could not be reached"):
        sign_as(world, first)
    db.session.rollback()
    with force_locale("nl"), pytest.raises(DomainError, match="was niet bereikbaar"):
        sign_as(world, first)
    db.session.rollback()
    assert signing.current_signatures(world.signing) == []
    letter = signing.letter_of(world.signing)
    assert letter.signed_pdf is None


def test_settings_are_checked_and_only_for_administrators(configured, csc):
    world = make_signing_world()
    org = world.orgs[0]
    admin = make_user(is_admin=True)
    with pytest.raises(Forbidden):
        remote.set_csc(org, actor=world.reps[org.id], enabled=True, service_url=csc.url)
    with force_locale("en"), pytest.raises(DomainError, match="https://"):
        remote.set_csc(
            org,
            actor=admin,
            enabled=True,
            service_url="http://provider.example/csc",
            credential_id="x",
            token="t",
        )
    with force_locale("en"), pytest.raises(DomainError, match="credential id"):
        remote.set_csc(org, actor=admin, enabled=True, service_url=csc.url, token="t")
    with force_locale("en"), pytest.raises(DomainError, match="access token"):
        remote.set_csc(org, actor=admin, enabled=True, service_url=csc.url, credential_id="x")
    db.session.rollback()
    assert remote.csc_settings(org) is None


def test_only_the_hash_is_sent(configured, csc, monkeypatch):
    """What goes to signatures/signHash: base64 hashes (32 bytes each), never the PDF."""
    import aiohttp

    sent: list[dict] = []
    original = aiohttp.ClientSession._request

    async def spy(self, method, url, **kwargs):  # type: ignore[no-untyped-def]
        if "json" in kwargs and kwargs["json"] is not None:
            sent.append({"url": str(url), "json": kwargs["json"]})
        return await original(self, method, url, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", spy)
    world = make_signing_world()
    _connect(world.orgs[0], csc)
    sign_as(world, world.orgs[0])
    db.session.commit()
    import base64

    sign_calls = [c for c in sent if c["url"].endswith("signatures/signHash")]
    assert len(sign_calls) == 1
    hashes = sign_calls[0]["json"]["hash"]
    assert [len(base64.b64decode(h)) for h in hashes] == [32]
    letter = signing.letter_of(world.signing)
    largest = max(len(str(c["json"])) for c in sent)
    assert largest < 2000 < len(letter.unsigned_pdf)
    assert documents.has_document_timestamp(letter.signed_pdf) is False
