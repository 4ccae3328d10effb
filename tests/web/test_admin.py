"""Administration: only administrators, every change audited, bad input explained."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from consensus import permissions
from consensus.extensions import db
from consensus.models import AuditEvent, Membership, MembershipRole, Organisation, User, utcnow
from tests.factories import make_membership, make_organisation, make_user

ADMIN_GET_URLS = [
    "/admin/",
    "/admin/organisations",
    "/admin/organisations/new",
    "/admin/organisations/{org}",
    "/admin/users",
    "/admin/users/new",
    "/admin/users/{user}",
    "/admin/memberships/{membership}",
]


@pytest.fixture
def world(app):
    organisation = make_organisation("vng")
    user = make_user("member@example.org")
    membership = make_membership(user, organisation)
    return {"org": organisation.id, "user": user.id, "membership": membership.id}


@pytest.mark.parametrize("url", ADMIN_GET_URLS)
def test_anonymous_is_sent_to_login(client, world, url):
    response = client.get(url.format(**world))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("url", ADMIN_GET_URLS)
def test_non_admins_are_refused(client, login_as, world, url):
    login_as(make_user(is_facilitator=True))
    response = client.get(url.format(**world))
    assert response.status_code == 403
    assert "geen toegang" in response.get_data(as_text=True)


@pytest.mark.parametrize("url", ADMIN_GET_URLS)
def test_admins_see_the_pages(client, login_as, world, url):
    login_as(make_user(is_admin=True))
    assert client.get(url.format(**world)).status_code == 200


def test_non_admin_post_changes_nothing(client, login_as, world):
    login_as(make_user())
    response = client.post(
        "/admin/organisations/new",
        data={
            "name": "Sneaky",
            "short_name": "S",
            "slug": "sneaky",
            "kind": "other",
            "active": "y",
        },
    )
    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 1


def test_admin_creates_and_edits_an_organisation(client, login_as):
    admin = make_user(is_admin=True)
    login_as(admin)
    response = client.post(
        "/admin/organisations/new",
        data={
            "name": "Interprovinciaal Overleg",
            "short_name": "IPO",
            "slug": "ipo",
            "kind": "provinces",
            "active": "y",
        },
    )
    assert response.status_code == 302
    organisation = db.session.execute(
        select(Organisation).where(Organisation.slug == "ipo")
    ).scalar_one()
    assert organisation.kind.value == "provinces"

    response = client.post(
        f"/admin/organisations/{organisation.id}",
        data={
            "name": "Interprovinciaal Overleg",
            "short_name": "IPO",
            "slug": "ipo",
            "kind": "provinces",
        },
    )  # active unticked
    assert response.status_code == 302
    db.session.expire_all()
    assert not db.session.get(Organisation, organisation.id).active
    events = (
        db.session.execute(
            select(AuditEvent)
            .where(AuditEvent.object_type == "organisation")
            .order_by(AuditEvent.seq)
        )
        .scalars()
        .all()
    )
    assert [e.action for e in events] == ["organisation.created", "organisation.updated"]
    assert all(e.actor_id == admin.id for e in events)
    assert '"active":[true,false]' in events[1].payload


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "short_name": "X", "slug": "x", "kind": "other"}, "Vul de naam in."),
        (
            {"name": "X", "short_name": "X", "slug": "Not A Slug", "kind": "other"},
            "Gebruik kleine letters, cijfers en koppeltekens",
        ),
        (
            {"name": "X", "short_name": "X", "slug": "vng", "kind": "other"},
            "Een andere organisatie gebruikt dit korte adres al.",
        ),
        ({"name": "X" * 201, "short_name": "X", "slug": "x", "kind": "other"}, "200"),
        ({"name": "X", "short_name": "X", "slug": "x", "kind": "planet"}, "Ongeldige keuze"),
    ],
)
def test_bad_organisation_input_is_explained_and_changes_nothing(client, login_as, data, message):
    make_organisation("vng")
    login_as(make_user(is_admin=True))
    before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    response = client.post("/admin/organisations/new", data=data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert message in page
    assert "Er is een probleem" in page  # the error summary
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_admin_creates_a_user_with_unique_case_insensitive_email(client, login_as):
    login_as(make_user(is_admin=True))
    data = {
        "email": "New.Person@Example.org",
        "display_name": "New Person",
        "password": "long enough password",
        "is_facilitator": "y",
        "active": "y",
    }
    assert client.post("/admin/users/new", data=data).status_code == 302
    user = db.session.execute(
        select(User).where(User.email == "new.person@example.org")
    ).scalar_one()
    assert user.is_facilitator and not user.is_admin

    data["email"] = "NEW.PERSON@example.org"
    response = client.post("/admin/users/new", data=data)
    assert "Er bestaat al een gebruiker met dit e-mailadres." in response.get_data(as_text=True)


def test_admin_cannot_demote_themselves(client, login_as):
    admin = make_user(is_admin=True)
    login_as(admin)
    response = client.post(
        f"/admin/users/{admin.id}",
        data={"email": admin.email, "display_name": admin.display_name, "active": "y"},
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(User, admin.id).is_admin


def test_membership_lifecycle(client, login_as):
    admin = make_user(is_admin=True)
    organisation = make_organisation("ipo")
    person = make_user()
    login_as(admin)

    response = client.post(
        f"/admin/users/{person.id}/memberships",
        data={
            "m-organisation_id": organisation.id,
            "m-role": "representative",
            "m-title": "Gedeputeerde",
        },
    )
    assert response.status_code == 302
    membership = db.session.execute(select(Membership)).scalar_one()
    assert membership.role == MembershipRole.REPRESENTATIVE
    assert permissions.holds_mandate(db.session.get(User, person.id), organisation)

    # One membership per person and organisation.
    response = client.post(
        f"/admin/users/{person.id}/memberships",
        data={"m-organisation_id": organisation.id, "m-role": "official"},
    )
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 1

    # A period must end after it starts.
    response = client.post(
        f"/admin/memberships/{membership.id}",
        data={
            "role": "representative",
            "title": "Gedeputeerde",
            "valid_from": "2026-05-01",
            "valid_until": "2026-04-01",
        },
    )
    assert "Het einde moet na het begin liggen." in response.get_data(as_text=True)

    response = client.post(
        f"/admin/memberships/{membership.id}",
        data={"role": "official", "title": "Adviseur", "valid_from": "", "valid_until": ""},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Membership, membership.id).role == MembershipRole.OFFICIAL

    response = client.post(f"/admin/memberships/{membership.id}/end")
    assert response.status_code == 302
    db.session.expire_all()
    ended = db.session.get(Membership, membership.id)
    assert ended.valid_until is not None and ended.valid_until <= utcnow()
    assert not ended.is_valid_at(utcnow())
    assert [
        e
        for e in db.session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars()
        if e.startswith("membership.")
    ] == ["membership.created", "membership.updated", "membership.ended"]


def test_mandate_follows_the_validity_period(app):
    organisation = make_organisation()
    person = make_user()
    now = utcnow()
    make_membership(
        person,
        organisation,
        MembershipRole.REPRESENTATIVE,
        valid_from=now - timedelta(days=10),
        valid_until=now + timedelta(days=1),
    )
    assert permissions.holds_mandate(person, organisation)
    assert not permissions.holds_mandate(person, organisation, at=now + timedelta(days=2))
    assert not permissions.holds_mandate(person, organisation, at=now - timedelta(days=11))
    assert not permissions.holds_mandate(person, make_organisation())


def test_user_list_is_paginated_and_searchable(client, login_as):
    login_as(make_user(is_admin=True, name="Admin"))
    for n in range(55):
        make_user(f"p{n}@example.org", name=f"Person {n:02d}")
    page1 = client.get("/admin/users").get_data(as_text=True)
    assert page1.count("/admin/users/") >= 50
    page2 = client.get("/admin/users?page=2").get_data(as_text=True)
    assert "Person 54" in page2
    found = client.get("/admin/users?q=person 07").get_data(as_text=True)
    assert "Person 07" in found and "Person 08" not in found


def test_user_list_query_count_does_not_grow(client, login_as, page_queries):
    organisation = make_organisation()
    login_as(make_user(is_admin=True))
    for _ in range(3):
        make_membership(make_user(), organisation)
    small = page_queries(client, "/admin/users")
    for _ in range(20):
        make_membership(make_user(), organisation)
    large = page_queries(client, "/admin/users")
    assert large.count == small.count
