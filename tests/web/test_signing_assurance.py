"""The public signatures page states, for each PDF signature, what it is (assurance level),
where its time comes from and whether it validates against the configured trust anchors."""

from __future__ import annotations

import pytest

from consensus.extensions import db
from consensus.services import processes
from tests.pki_support import start_local_pki
from tests.signing_support import make_signing_world, sign_as


@pytest.fixture
def local_pki(tmp_path):
    pki = start_local_pki(tmp_path / "pki")
    yield pki
    pki.stop()


def _signed_and_published(count: int | None = None):
    world = make_signing_world()
    for org in world.orgs[:count]:
        sign_as(world, org)
        db.session.commit()
    processes.close_round(world.signing, actor=world.facilitator)
    processes.schedule_publication(world.process, actor=world.facilitator, at=None)
    db.session.commit()
    return world


def test_page_states_level_timestamp_and_validation(app, client, local_pki):
    app.config["TSA_URL"] = local_pki.tsa_url
    app.config["TRUST_ANCHORS"] = str(local_pki.anchors_dir)
    world = _signed_and_published()
    page = client.get(f"/public/{world.process.slug}/signatures")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    level = "Geavanceerde elektronische handtekening (certificaat van de eigen CA van dit platform)"
    assert html.count(level) == 4
    assert html.count("van een tijdstempeldienst") == 4
    assert html.count(">geldig<") == 4
    assert "Verzegeld op" in html
    with client.session_transaction() as session:
        session["locale"] = "en"
    english = client.get(f"/public/{world.process.slug}/signatures").get_data(as_text=True)
    assert english.count("from a timestamping authority") == 4
    assert english.count("certificate from this platform&#39;s own CA") == 4


def test_without_a_tsa_the_page_names_the_platform_clock(app, client):
    world = _signed_and_published(count=2)
    html = client.get(f"/public/{world.process.slug}/signatures").get_data(as_text=True)
    assert html.count("van de klok van het platform (geen vertrouwd tijdstempel)") == 2
    assert html.count(">geldig<") == 2
    assert "Nog niet verzegeld" in html


def test_the_crl_route_serves_the_platform_ca_crl(app, client):
    from asn1crypto import crl as asn1_crl

    from consensus import signing

    world = _signed_and_published(count=1)
    ca = signing.current_ca()
    response = client.get(f"/pki/ca-{ca.id}.crl")
    assert response.status_code == 200
    assert response.mimetype == "application/pkix-crl"
    parsed = asn1_crl.CertificateList.load(response.data)
    assert parsed.issuer.human_friendly.startswith("Common Name: Consensus signing CA")
    assert client.get(f"/pki/ca-{ca.id + 1}.crl").status_code == 404
    certificate = signing.current_certificate(world.orgs[0])
    assert f"/pki/ca-{ca.id}.crl" in _crl_points(certificate.certificate_pem)


def _crl_points(pem: str) -> str:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem.encode())
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    return " ".join(str(p.full_name[0].value) for p in points)


def test_admin_connects_a_remote_signing_service(app, client, login_as):
    from consensus.models import AuditEvent, SigningSettings
    from consensus.signing import remote
    from tests.factories import make_organisation, make_user

    org = make_organisation("gem-a", name="Gemeente A")
    admin = make_user(is_admin=True)
    db.session.commit()
    login_as(admin)
    page = client.get(f"/admin/organisations/{org.id}/signing")
    assert "Ondertekenen op afstand" in page.get_data(as_text=True)
    refused = client.post(
        f"/admin/organisations/{org.id}/signing/remote",
        data={"csc-enabled": "y", "csc-service_url": "http://provider.example/csc"},
    )
    assert refused.status_code == 400
    assert "https://" in refused.get_data(as_text=True)
    assert remote.csc_settings(org) is None
    saved = client.post(
        f"/admin/organisations/{org.id}/signing/remote",
        data={
            "csc-enabled": "y",
            "csc-service_url": "https://provider.example/csc/v1",
            "csc-credential_id": "cred-42",
            "csc-token": "geheim-token",
        },
    )
    assert saved.status_code == 302
    db.session.expire_all()
    settings = db.session.get(SigningSettings, org.id)
    assert settings.csc_enabled and settings.csc_credential_id == "cred-42"
    assert "geheim-token" not in (settings.csc_sealed_token or "")
    shown = client.get(f"/admin/organisations/{org.id}/signing").get_data(as_text=True)
    assert "geheim-token" not in shown and "cred-42" in shown
    assert db.session.query(AuditEvent).filter_by(action="signing.remote_set").count() == 1
