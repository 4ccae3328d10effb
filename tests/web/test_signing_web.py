"""Signing pages: who sees what, platform-held signing with re-authentication, upload of a
locally made signature, withdrawal, admin custody, keys, public verification and bundle."""

from __future__ import annotations

import io
import zipfile

import pytest

from consensus import signing
from consensus.crypto import sshsig
from consensus.extensions import db
from consensus.models import KeyCustody, User, utcnow
from consensus.services.errors import Forbidden
from tests.factories import PASSWORD, make_user
from tests.signing_support import make_signing_world, sign_as


@pytest.fixture
def world(app):
    return make_signing_world()


def test_round_page_needs_login_and_hides_process_from_outsiders(client, world, login_as):
    url = f"/processes/{world.process.slug}/signing"
    assert client.get(url).status_code == 302
    login_as(make_user())
    assert client.get(url).status_code == 404


def test_representative_signs_with_platform_key_after_password(world, login_as):
    org = world.orgs[0]
    client = login_as(world.reps[org.id])
    page = client.get(f"/processes/{world.process.slug}/signing")
    assert page.status_code == 200
    assert "platform holds" in page.get_data(as_text=True) or "platform" in page.get_data(
        as_text=True
    )
    url = f"/processes/{world.process.slug}/signing/{org.slug}/platform"
    wrong = client.post(url, data={f"re{org.id}-password": "wrong password"})
    assert wrong.status_code == 400
    assert signing.current_signatures(world.signing) == []
    ok = client.post(url, data={f"re{org.id}-password": PASSWORD})
    assert ok.status_code == 302
    assert [s.organisation_id for s in signing.current_signatures(world.signing)] == [org.id]
    pdf = client.get(f"/processes/{world.process.slug}/signing/letter.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_other_organisations_representative_cannot_sign_for_it(world, login_as):
    org, other = world.orgs[0], world.orgs[1]
    client = login_as(world.reps[other.id])
    url = f"/processes/{world.process.slug}/signing/{org.slug}/platform"
    assert client.post(url, data={f"re{org.id}-password": PASSWORD}).status_code == 403


def test_upload_of_a_locally_made_signature(world, login_as):
    org = world.orgs[2]
    client = login_as(world.reps[org.id])
    key = world.keys[org.id]
    response = client.get(
        f"/processes/{world.process.slug}/signing/{org.slug}/statement.json?key={key.id}"
    )
    assert response.status_code == 200
    assert f"statement-{org.slug}.json" in response.headers["Content-Disposition"]
    statement = response.data
    armoured = sshsig.sign(world.private_keys[org.id], statement, signing.NAMESPACE)
    url = f"/processes/{world.process.slug}/signing/{org.slug}/upload"
    bad = client.post(
        url,
        data={
            f"up{org.id}-statement": (
                io.BytesIO(statement.replace(b"Voorzitter", b"Voorzitster")),
                "s.json",
            ),
            f"up{org.id}-signature": (io.BytesIO(armoured.encode()), "s.json.sig"),
        },
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400
    ok = client.post(
        url,
        data={
            f"up{org.id}-statement": (io.BytesIO(statement), "s.json"),
            f"up{org.id}-signature": (io.BytesIO(armoured.encode()), "s.json.sig"),
        },
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302
    assert [s.organisation_id for s in signing.current_signatures(world.signing)] == [org.id]


def test_withdraw_while_open(world, login_as):
    org = world.orgs[0]
    cosignature = sign_as(world, org)
    db.session.commit()
    client = login_as(world.reps[org.id])
    url = f"/processes/{world.process.slug}/signing/signatures/{cosignature.id}/withdraw"
    assert client.post(url).status_code == 302
    assert signing.current_signatures(world.signing) == []
    other = login_as(world.reps[world.orgs[1].id])
    cosignature = sign_as(world, org)
    db.session.commit()
    other.post(f"/processes/{world.process.slug}/signing/signatures/{cosignature.id}/withdraw")
    assert len(signing.current_signatures(world.signing)) == 1


def test_admin_sets_custody_and_issues_certificate(world, login_as):
    from sqlalchemy import select

    admin = db.session.execute(select(User).where(User.is_admin.is_(True))).scalars().first()
    org = world.orgs[2]
    client = login_as(admin)
    url = f"/admin/organisations/{org.id}/signing"
    assert client.get(url).status_code == 200
    assert client.post(url, data={"custody-custody": "platform_held"}).status_code == 302
    assert signing.custody_of(org) == KeyCustody.PLATFORM_HELD
    assert signing.platform_key(org) is not None
    assert client.post(f"{url}/certificate").status_code == 302
    assert signing.current_certificate(org) is not None
    bad = client.post(
        f"{url}/pkcs12",
        data={"p12-file": (io.BytesIO(b"nonsense"), "x.txt")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400
    login_as(world.reps[org.id])
    assert client.get(url).status_code == 403


def test_keys_page_enrol_and_revoke(world, login_as):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    org = world.orgs[3]
    client = login_as(world.reps[org.id])
    assert client.get(f"/organisations/{org.slug}/keys").status_code == 200
    line = sshsig.openssh_public_key_line(Ed25519PrivateKey.generate().public_key(), "new")
    assert (
        client.post(f"/organisations/{org.slug}/keys", data={"public_key": line}).status_code == 302
    )
    assert (
        client.post(f"/organisations/{org.slug}/keys", data={"public_key": "nonsense"}).status_code
        == 400
    )
    key = world.keys[org.id]
    client.post(f"/organisations/{org.slug}/keys/{key.id}/revoke", data={"reason": "lost"})
    db.session.refresh(key)
    assert key.revoked_at is not None
    login_as(world.reps[world.orgs[0].id])
    assert client.get(f"/organisations/{org.slug}/keys").status_code == 403


def test_public_signatures_and_bundle(world, client):
    for org in world.orgs:
        sign_as(world, org)
    db.session.commit()
    slug = world.process.slug
    assert client.get(f"/public/{slug}/signatures").status_code == 404  # not published
    world.process.visibility = "published"
    world.process.published_at = utcnow()
    db.session.commit()
    page = client.get(f"/public/{slug}/signatures")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    for org in world.orgs:
        assert org.name in text
    response = client.get(f"/public/{slug}/verification-{slug}.zip")
    assert response.status_code == 200
    assert "VERIFY.md" in zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert client.get(f"/public/{slug}/verification-other.zip").status_code == 404


class _CountingHasher:
    """The accounts module's argon2 hasher, noting for each verify whether the request had
    begun a transaction that may write (SQLite's BEGIN IMMEDIATE) by then."""

    def __init__(self, hasher, begins):
        self._hasher, self._begins, self.verified_in_write = hasher, begins, []

    def verify(self, hashed, password):
        self.verified_in_write.append(any(not deferred for deferred in self._begins))
        return self._hasher.verify(hashed, password)

    def __getattr__(self, name):
        return getattr(self._hasher, name)


def test_the_password_is_checked_once_and_before_the_write_lock(world, login_as, monkeypatch):
    """Argon2 takes a tenth of a second and more by design; on SQLite every other writer
    would wait for it if the signature checked it inside its write transaction."""
    from sqlalchemy import event

    from consensus import transactions
    from consensus.services import accounts

    org = world.orgs[0]
    client = login_as(world.reps[org.id])
    begins = []
    hasher = _CountingHasher(accounts._hasher, begins)
    monkeypatch.setattr(accounts, "_hasher", hasher)

    def began(_connection):
        begins.append(transactions.deferred())

    url = f"/processes/{world.process.slug}/signing/{org.slug}/platform"
    form = {f"re{org.id}-password": PASSWORD}
    organisation_id = org.id
    db.session.commit()  # the request begins its own transactions, as under a server
    event.listen(db.engine, "begin", began)
    try:
        assert client.post(url, data=form).status_code == 302
    finally:
        event.remove(db.engine, "begin", began)
    signed = signing.current_signatures(world.signing)
    assert [s.organisation_id for s in signed] == [organisation_id]
    assert len(hasher.verified_in_write) == 1, "the password is checked once"
    if db.engine.dialect.name == "sqlite":
        assert False in begins, "the signature was written in a transaction that may write"
        assert hasher.verified_in_write == [False], "checked before the write transaction"


def test_a_password_changed_after_the_early_check_is_checked_again(world):
    """The early check holds only for the stored hash it was made against."""
    from consensus.services import accounts

    org = world.orgs[0]
    rep = world.reps[org.id]
    assert signing.check_password_first(rep, "wrong password") is None
    checked = signing.check_password_first(rep, PASSWORD)
    assert checked is not None
    rep.password_hash = accounts._hasher.hash("a new password, changed meanwhile")
    db.session.commit()
    with pytest.raises(Forbidden):
        signing.sign_with_platform_key(
            world.process,
            world.signing,
            org,
            actor=rep,
            proof=signing.ReAuthentication(PASSWORD, "", checked),
        )
    db.session.rollback()
    assert signing.current_signatures(world.signing) == []
