"""The audit pages: who may see what, the filters, receipts, and the public page."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from consensus import audit
from consensus.audit import checkpoints
from consensus.crypto import merkle
from consensus.extensions import db
from consensus.models import AuditEvent, MembershipRole, utcnow
from tests.audit_support import add_events
from tests.factories import make_membership, make_organisation, make_user


@pytest.fixture
def world(app):
    """VNG and IPO, a member of each, an admin; events for both and one without any."""
    vng, ipo = make_organisation("vng"), make_organisation("ipo")
    vng_member = make_user("official.vng@example.org", name="Jeroen Bakker")
    ipo_member = make_user("official.ipo@example.org", name="Sanne Visser")
    make_membership(vng_member, vng, MembershipRole.OFFICIAL)
    make_membership(ipo_member, ipo, MembershipRole.OFFICIAL)
    admin = make_user(is_admin=True)
    audit.record(
        "test.vng_only",
        actor=vng_member,
        object_type="thing",
        object_id=1,
        organisation_id=vng.id,
        payload={"secret": "x", "note": "Geheim VNG-stuk"},
    )
    audit.record(
        "test.ipo_only",
        actor=ipo_member,
        object_type="thing",
        object_id=2,
        organisation_id=ipo.id,
        payload={"note": "Interne IPO-notitie"},
    )
    db.session.commit()
    seqs = dict(db.session.execute(select(AuditEvent.action, AuditEvent.seq)).all())
    checkpoints.make_checkpoint()
    db.session.commit()
    return {
        "vng": vng,
        "ipo": ipo,
        "vng_member": vng_member,
        "ipo_member": ipo_member,
        "admin": admin,
        "vng_event": seqs["test.vng_only"],
        "ipo_event": seqs["test.ipo_only"],
    }


MEMBER_URLS = ["/audit", "/audit/vng", "/audit/vng/{vng_event}/receipt.json"]
ADMIN_URLS = ["/admin/audit", "/admin/audit/{vng_event}/receipt.json"]
PUBLIC_URLS = [
    "/transparency",
    "/transparency/checkpoints.json",
    "/transparency/allowed_signers",
    "/transparency/checkpoints/1/note",
    "/transparency/checkpoints/1/signature",
    "/transparency/verify_audit.py",
]


@pytest.mark.parametrize("url", MEMBER_URLS + ADMIN_URLS)
def test_anonymous_people_are_sent_to_log_in(client, world, url):
    response = client.get(url.format(**world))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_the_public_pages_are_public(client, world, url):
    response = client.get(url)
    assert response.status_code == 200
    if url != "/transparency":
        assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("url", ["/audit/vng", "/audit/vng/{vng_event}/receipt.json", *ADMIN_URLS])
def test_a_member_of_another_organisation_is_refused(client, login_as, world, url):
    login_as(world["ipo_member"])
    assert client.get(url.format(**world)).status_code == 403


def test_another_organisations_event_is_not_found_through_ones_own(client, login_as, world):
    login_as(world["ipo_member"])
    assert client.get(f"/audit/ipo/{world['vng_event']}/receipt.json").status_code == 404
    assert client.get(f"/audit/ipo/{world['ipo_event']}/receipt.json").status_code == 200
    assert client.get("/audit/ipo/99999/receipt.json").status_code == 404
    assert client.get("/audit/nowhere").status_code == 404


def test_an_ended_membership_no_longer_shows_the_trail(client, login_as, world):
    membership = world["vng_member"].memberships[0]
    membership.valid_until = utcnow() - timedelta(days=1)
    membership.valid_from = utcnow() - timedelta(days=10)
    db.session.commit()
    login_as(world["vng_member"])
    assert client.get("/audit/vng").status_code == 403


@pytest.mark.parametrize("url", MEMBER_URLS + ADMIN_URLS)
def test_admins_see_every_page(client, login_as, world, url):
    login_as(world["admin"])
    response = client.get(url.format(**world))
    assert response.status_code == 200


def test_members_see_only_their_organisations_events(client, login_as, world):
    login_as(world["vng_member"])
    response = client.get("/audit", follow_redirects=False)
    assert response.headers["Location"].endswith("/audit/vng")  # one organisation: go there
    page = client.get("/audit/vng").get_data(as_text=True)
    assert "test.vng_only" in page and "Geheim VNG-stuk" in page
    assert "test.ipo_only" not in page and "Interne IPO-notitie" not in page
    assert "Auditlog" in page and "Bewaar een ontvangstbewijs" in page  # Dutch by default
    assert '"secret"' not in page  # never in the log at all


def test_a_member_of_two_organisations_chooses(client, login_as, world):
    make_membership(world["vng_member"], world["ipo"], MembershipRole.OBSERVER)
    login_as(world["vng_member"])
    page = client.get("/audit").get_data(as_text=True)
    assert "/audit/vng" in page and "/audit/ipo" in page


def test_someone_without_organisations_gets_an_explanation(client, login_as, world):
    login_as(make_user())
    page = client.get("/audit").get_data(as_text=True)
    assert "geen lid van een organisatie" in page


def test_a_receipt_is_a_self_contained_proof(client, login_as, world):
    login_as(world["vng_member"])
    response = client.get(f"/audit/vng/{world['vng_event']}/receipt.json")
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    receipt = json.loads(response.data)
    entry = receipt["entry"].encode()
    assert json.loads(receipt["entry"])["action"] == "test.vng_only"
    assert merkle.verify_inclusion(
        merkle.leaf_hash(entry),
        receipt["leaf_index"],
        receipt["tree_size"],
        [bytes.fromhex(h) for h in receipt["inclusion_proof"]],
        bytes.fromhex(receipt["checkpoint"]["root_hash"]),
    )
    assert receipt["checkpoint"]["signature"].startswith("-----BEGIN SSH SIGNATURE-----")


# --- Administrators --------------------------------------------------------------------------


def rows(page: str) -> int:
    return page.count('<td class="c-num">')


def test_the_admin_filters(client, login_as, world):
    login_as(world["admin"])
    everything = client.get("/admin/audit").get_data(as_text=True)
    assert "test.vng_only" in everything and "test.ipo_only" in everything
    by_org = client.get(f"/admin/audit?organisation={world['vng'].id}").get_data(as_text=True)
    assert "test.vng_only" in by_org and "test.ipo_only" not in by_org
    by_action = client.get("/admin/audit?action=test").get_data(as_text=True)
    assert rows(by_action) == 2
    assert rows(client.get("/admin/audit?action=test.ipo_only").get_data(as_text=True)) == 1
    assert rows(client.get("/admin/audit?action=tes").get_data(as_text=True)) == 0
    by_actor = client.get("/admin/audit?actor=sanne").get_data(as_text=True)
    assert "test.ipo_only" in by_actor and "test.vng_only" not in by_actor
    today = utcnow().date()
    assert (
        rows(
            client.get(f"/admin/audit?date_from={today - timedelta(days=1)}&action=test").get_data(
                as_text=True
            )
        )
        == 2
    )
    assert (
        rows(
            client.get(f"/admin/audit?date_until={today - timedelta(days=2)}").get_data(
                as_text=True
            )
        )
        == 0
    )


def test_bad_filters_are_explained(client, login_as, world):
    login_as(world["admin"])
    response = client.get("/admin/audit?date_from=2025-02-01&date_until=2025-01-01")
    assert response.status_code == 422
    assert "De einddatum kan niet vóór de begindatum liggen." in response.get_data(as_text=True)
    assert client.get("/admin/audit?date_from=yesterday").status_code == 422
    assert client.get("/admin/audit?organisation=abc").status_code == 422


def test_the_admin_page_paginates_and_keeps_the_filters(client, login_as, world):
    add_events(60, action="bulk.done")
    login_as(world["admin"])
    first = client.get("/admin/audit?action=bulk").get_data(as_text=True)
    assert rows(first) == 50
    assert "page=2" in first and "action=bulk" in first
    second = client.get("/admin/audit?action=bulk&page=2").get_data(as_text=True)
    assert rows(second) == 10


@pytest.mark.parametrize(("url", "who"), [("/admin/audit", "admin"), ("/audit/vng", "vng_member")])
def test_the_query_count_does_not_grow_with_the_page(
    client, login_as, world, page_queries, url, who
):
    login_as(world[who])
    few = page_queries(client, url)
    users = [make_user() for _ in range(5)]
    for i in range(45):
        audit.record(
            "test.more",
            actor=users[i % 5],
            object_type="thing",
            object_id=i,
            organisation_id=world["vng"].id,
        )
    db.session.commit()
    many = page_queries(client, url)  # warmed as `few` was: caches see the new head once
    assert rows(client.get(url).get_data(as_text=True)) >= 47
    assert many.count == few.count, many.statements


def test_the_receipt_of_a_deleted_persons_event_still_works(client, login_as, world):
    db.session.execute(
        update(AuditEvent).values(actor_id=None).where(AuditEvent.seq == world["vng_event"])
    )
    db.session.commit()
    login_as(world["admin"])
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "Systeem" in page


# --- The public page -------------------------------------------------------------------------


def test_the_transparency_page_shows_checkpoints_and_keys_but_no_events(client, world):
    checkpoint = checkpoints.latest_checkpoint()
    key = checkpoints.active_key()
    page = client.get("/transparency").get_data(as_text=True)
    assert checkpoint.root_hash.hex() in page
    assert key.fingerprint in page
    assert checkpoints.allowed_signers_line(key).replace('"', "&#34;") in page
    assert "ssh-keygen -Y verify -f allowed_signers -I consensus.example.org" in page
    # htmx must not fetch the JSON list into the page: a real navigation or download.
    links = re.findall(r'<a [^>]*href="/transparency/checkpoints\.json"[^>]*>', page)
    assert links and all('hx-boost="false"' in link for link in links)
    for shown in (page, client.get("/transparency/checkpoints.json").get_data(as_text=True)):
        for secret in (
            "Geheim VNG-stuk",
            "Interne IPO-notitie",
            "test.vng_only",
            "official.vng@example.org",
            "Jeroen Bakker",
        ):
            assert secret not in shown


def test_the_note_and_signature_downloads_are_exact(client, world):
    checkpoint = checkpoints.latest_checkpoint()
    note = client.get(f"/transparency/checkpoints/{checkpoint.id}/note")
    signature = client.get(f"/transparency/checkpoints/{checkpoint.id}/signature")
    assert note.data.decode() == checkpoint.body
    assert signature.data.decode() == checkpoint.signature
    assert 'filename="checkpoint-' in note.headers["Content-Disposition"]
    assert client.get("/transparency/checkpoints/999/note").status_code == 404


def test_the_transparency_page_without_checkpoints(client, app):
    page = client.get("/transparency").get_data(as_text=True)
    assert "Er is nog geen controlepunt gepubliceerd." in page
    listing = client.get("/transparency/checkpoints.json").get_json()
    assert listing["checkpoints"] == [] and listing["keys"] == []


def test_the_page_speaks_english_too(client, world):
    client.post("/language", data={"locale": "en", "next": "/transparency"})
    page = client.get("/transparency").get_data(as_text=True)
    assert "How to verify" in page and "Latest checkpoint" in page


def test_a_new_checkpoint_shows_at_once_although_the_pages_are_cached(client, login_as, world):
    """The audit pages are kept in the fragment cache by the audit head; a checkpoint is
    signed without an event of its own, so the pages must not keep showing the older one
    (issue 23)."""
    audit.record(
        "test.later",
        actor=world["vng_member"],
        object_type="thing",
        object_id=3,
        organisation_id=world["vng"].id,
    )
    db.session.commit()
    not_covered = "De nieuwste gebeurtenissen vallen nog niet onder een ondertekend controlepunt"
    login_as(world["vng_member"])
    for _ in range(2):  # rendered, then from the cache
        assert not_covered in client.get("/audit/vng").get_data(as_text=True)
    old = checkpoints.latest_checkpoint()
    assert old.root_hash.hex() in client.get("/transparency").get_data(as_text=True)

    new = checkpoints.make_checkpoint()
    db.session.commit()
    assert new.id != old.id and new.tree_size > old.tree_size
    assert not_covered not in client.get("/audit/vng").get_data(as_text=True)
    transparency = client.get("/transparency").get_data(as_text=True)
    assert new.root_hash.hex() in transparency
    login_as(world["admin"])
    admin = client.get("/admin/audit").get_data(as_text=True)
    assert f"Nr. {new.id}, ondertekend" in admin
