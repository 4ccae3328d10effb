"""The signing page of an organisation that signs at its CSC provider: the signer types
the PIN and one-time code of their credential there; a wrong one is refused in Dutch with
nothing signed; the right one signs (platform-held statement key and signer-held alike),
and the PIN appears nowhere in what the platform keeps or shows."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import select

from consensus import signing
from consensus.crypto import sshsig
from consensus.extensions import db
from consensus.models import AuditEvent
from consensus.signing import remote
from tests.factories import PASSWORD, make_user
from tests.pki_support import start_local_csc, start_local_pki
from tests.signing_support import make_signing_world

PIN = "384756"
OTP = "918273"


@pytest.fixture
def provider(app, tmp_path):
    pki = start_local_pki(tmp_path / "pki")
    csc = start_local_csc(pki)
    csc.pin, csc.otp = PIN, OTP
    app.config["TSA_URL"] = pki.tsa_url
    app.config["TRUST_ANCHORS"] = str(pki.anchors_dir)
    yield csc
    csc.stop()
    pki.stop()


def _connect(org, csc):
    remote.set_csc(
        org,
        actor=make_user(is_admin=True),
        enabled=True,
        service_url=csc.url,
        credential_id=csc.credential("qualified-signer"),
        token=csc.token,
    )
    db.session.commit()


def test_the_signer_types_pin_and_code_on_the_signing_page(provider, login_as, caplog):
    world = make_signing_world()
    org, plain = world.orgs[0], world.orgs[1]
    _connect(org, provider)
    client = login_as(world.reps[org.id])
    page = client.get(f"/processes/{world.process.slug}/signing").get_data(as_text=True)
    assert "Uw toestemming bij de ondertekendienst" in page
    assert f'name="re{org.id}-csc_pin"' in page and f'name="re{org.id}-csc_otp"' in page
    url = f"/processes/{world.process.slug}/signing/{org.slug}/platform"

    missing = client.post(url, data={f"re{org.id}-password": PASSWORD})
    assert missing.status_code == 400
    asked = "vraagt de ondertekenaar zelf toestemming te geven voor deze handtekening"
    assert asked in missing.get_data(as_text=True)
    wrong = client.post(
        url,
        data={
            f"re{org.id}-password": PASSWORD,
            f"re{org.id}-csc_pin": "000000",
            f"re{org.id}-csc_otp": OTP,
        },
    )
    assert wrong.status_code == 400
    html = wrong.get_data(as_text=True)
    assert "de pincode of de eenmalige code klopte niet" in html
    assert "000000" not in html  # a password field is not filled in again
    assert signing.current_signatures(world.signing) == []
    assert signing.letter_of(world.signing).signed_pdf is None

    caplog.set_level(logging.DEBUG)
    ok = client.post(
        url,
        data={
            f"re{org.id}-password": PASSWORD,
            f"re{org.id}-csc_pin": PIN,
            f"re{org.id}-csc_otp": OTP,
        },
    )
    assert ok.status_code == 302
    assert [s.organisation_id for s in signing.current_signatures(world.signing)] == [org.id]
    assert PIN not in caplog.text
    for event in db.session.execute(select(AuditEvent)).scalars():
        assert PIN not in event.payload and OTP not in event.payload
    # An organisation without a provider sees no such fields.
    other = login_as(world.reps[plain.id])
    plain_page = other.get(f"/processes/{world.process.slug}/signing").get_data(as_text=True)
    assert "csc_pin" not in plain_page


def test_a_signer_held_key_uploads_and_authorises_at_the_provider(provider, login_as):
    world = make_signing_world()
    org = world.orgs[2]  # signer-held statement key
    _connect(org, provider)
    client = login_as(world.reps[org.id])
    key = world.keys[org.id]
    statement = client.get(
        f"/processes/{world.process.slug}/signing/{org.slug}/statement.json?key={key.id}"
    ).data
    armoured = sshsig.sign(world.private_keys[org.id], statement, signing.NAMESPACE)

    def upload(pin: str):  # type: ignore[no-untyped-def]
        return client.post(
            f"/processes/{world.process.slug}/signing/{org.slug}/upload",
            data={
                f"up{org.id}-statement": (io.BytesIO(statement), "statement.json"),
                f"up{org.id}-signature": (io.BytesIO(armoured.encode()), "statement.json.sig"),
                f"up{org.id}-csc_pin": pin,
                f"up{org.id}-csc_otp": OTP,
            },
            content_type="multipart/form-data",
        )

    refused = upload("111111")
    assert refused.status_code == 400
    assert "klopte niet" in refused.get_data(as_text=True)
    assert signing.current_signatures(world.signing) == []
    assert upload(PIN).status_code == 302
    (mine,) = signing.current_signatures(world.signing)
    assert mine.organisation_id == org.id
