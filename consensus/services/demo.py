"""The demo world: the four associations of the House of Thorbecke and their people.

Idempotent by construction: every object is looked up by its natural key first and only
created when missing, so running it twice changes nothing (and writes no audit events).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from consensus.extensions import db
from consensus.models import (
    DecisionRule,
    Membership,
    MembershipRole,
    Organisation,
    OrganisationKind,
    Process,
    RoundType,
    User,
    utcnow,
)
from consensus.services import accounts, organisations, processes


@dataclass(frozen=True)
class DemoOrganisation:
    slug: str
    name: str
    short_name: str
    kind: OrganisationKind
    representative: tuple[str, str]  # display name, title
    official: tuple[str, str]


DEMO_ORGANISATIONS = [
    DemoOrganisation(
        "vng",
        "Vereniging van Nederlandse Gemeenten",
        "VNG",
        OrganisationKind.MUNICIPALITIES,
        ("Marieke de Vries", "Voorzitter commissie Informatiesamenleving"),
        ("Jeroen Bakker", "Senior beleidsadviseur digitalisering"),
    ),
    DemoOrganisation(
        "ipo",
        "Interprovinciaal Overleg",
        "IPO",
        OrganisationKind.PROVINCES,
        ("Henk Jansen", "Gedeputeerde, portefeuillehouder digitalisering"),
        ("Sanne Visser", "Beleidsmedewerker informatievoorziening"),
    ),
    DemoOrganisation(
        "uvw",
        "Unie van Waterschappen",
        "UvW",
        OrganisationKind.WATER_BOARDS,
        ("Fatima El Amrani", "Dijkgraaf, bestuurslid Unie van Waterschappen"),
        ("Pieter Mulder", "Adviseur informatiebeleid"),
    ),
    DemoOrganisation(
        "bzk",
        "Ministerie van Binnenlandse Zaken en Koninkrijksrelaties",
        "BZK",
        OrganisationKind.NATIONAL_GOVERNMENT,
        ("Thomas van den Berg", "Staatssecretaris Digitalisering"),
        ("Lotte Smit", "Coördinerend beleidsmedewerker Digitale Overheid"),
    ),
]


def _ensure_user(email: str, name: str, password: str, **flags: bool) -> User:
    user = accounts.find_user_by_email(email)
    if user is None:
        user = accounts.create_user(
            actor=None, email=email, display_name=name, password=password, **flags
        )
    return user


def _ensure_membership(
    user: User, organisation: Organisation, role: MembershipRole, title: str
) -> None:
    exists = db.session.execute(
        select(Membership.id).where(
            Membership.user_id == user.id, Membership.organisation_id == organisation.id
        )
    ).scalar_one_or_none()
    if exists is None:
        organisations.add_membership(
            actor=None, user=user, organisation=organisation, role=role, title=title
        )


def build_demo_world(password: str) -> dict[str, int]:
    """Create whatever part of the demo world is missing. Returns how many of each exist."""
    _ensure_user("admin@example.org", "Beheerder Consensus", password, is_admin=True)
    _ensure_user(
        "facilitator@example.org",
        "Anouk Hendriks (procesbegeleider)",
        password,
        is_facilitator=True,
    )
    for demo in DEMO_ORGANISATIONS:
        organisation = db.session.execute(
            select(Organisation).where(Organisation.slug == demo.slug)
        ).scalar_one_or_none()
        if organisation is None:
            organisation = organisations.create_organisation(
                actor=None,
                name=demo.name,
                short_name=demo.short_name,
                slug=demo.slug,
                kind=demo.kind,
            )
        rep = _ensure_user(
            f"representative.{demo.slug}@example.org", demo.representative[0], password
        )
        _ensure_membership(rep, organisation, MembershipRole.REPRESENTATIVE, demo.representative[1])
        official = _ensure_user(f"official.{demo.slug}@example.org", demo.official[0], password)
        _ensure_membership(official, organisation, MembershipRole.OFFICIAL, demo.official[1])
    db.session.flush()
    return {
        "processes": len(db.session.execute(select(Process.id)).all()),
        "organisations": len(db.session.execute(select(Organisation.id)).all()),
        "users": len(db.session.execute(select(User.id)).all()),
    }


# --- The stories of each demo process ---------------------------------------------------------
# Each later feature adds its chapter here (positions and amendments, endorsements, signing).


def _no_story(ctx: DemoContext) -> None:
    """The draft process has no history yet."""


def _strategy_story(ctx: DemoContext) -> None:
    """The main journey: v1, consultation, v2, clearance, endorsement, outcome, signing."""


def _consultation_story(ctx: DemoContext) -> None:
    """A process whose consultation round is open now."""
    now = utcnow()
    processes.add_round(
        ctx.process,
        actor=ctx.facilitator,
        type=RoundType.CONSULTATION,
        title="Consultatie op versie 1",
        instructions="Reageer per alinea en doe wijzigingsvoorstellen met een toelichting.",
        opens_at=now - timedelta(days=3),
        closes_at=now + timedelta(days=11),
    )
    processes.tick()


def _endorsement_story(ctx: DemoContext) -> None:
    """A process in an open endorsement round (stances come with the endorsement feature)."""
