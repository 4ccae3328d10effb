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


@dataclass
class DemoContext:
    """What each chapter of the demo story needs: the process, its facilitator, the
    organisations by slug and the people by (slug, role)."""

    process: Process
    facilitator: User
    organisations: dict[str, Organisation]
    people: dict[tuple[str, MembershipRole], User]


STRATEGY_TITLE = "Gezamenlijke inbreng op de nationale digitaliseringsstrategie"
STRATEGY_SLUG = "digitaliseringsstrategie"
STRATEGY_PURPOSE = """\
Het Rijk, de provincies, de gemeenten en de waterschappen geven samen richting aan de
digitale overheid: **breed, gelijkwaardig en gezamenlijk**. Met dit traject stellen VNG, IPO,
de Unie van Waterschappen en BZK een gezamenlijke inbreng op voor de nationale
digitaliseringsstrategie, gericht aan de staatssecretaris voor Digitalisering.

Het traject volgt de zes prioriteiten van de strategie:

1. Cloud
2. Data
3. Digitale identiteit
4. AI
5. Digitale weerbaarheid
6. Digitale inclusie en vaardigheden
"""
CONSULTATION_TITLE = "Gezamenlijke reactie op de Interbestuurlijke Datastrategie"
CONSULTATION_SLUG = "datastrategie"
DRAFT_TITLE = "Standpunt over regie op gegevens voor inwoners en ondernemers"
DRAFT_SLUG = "regie-op-gegevens"
ENDORSEMENT_TITLE = "Gezamenlijk standpunt over digitale weerbaarheid van decentrale overheden"
ENDORSEMENT_SLUG = "digitale-weerbaarheid"


def _ensure_process(
    *,
    slug: str,
    title: str,
    purpose: str,
    themes: list[str],
    facilitator: User,
    organisations: list[Organisation],
    activate: bool,
) -> tuple[Process, bool]:
    """The process with this slug, created (with its participants) when missing."""
    process = db.session.execute(select(Process).where(Process.slug == slug)).scalar_one_or_none()
    if process is not None:
        return process, False
    process = processes.create_process(
        actor=facilitator,
        title=title,
        purpose=purpose,
        themes=themes,
        decision_rule=DecisionRule.CONSENSUS,
        quorum=3,
        slug=slug,
    )
    for organisation in organisations:
        processes.add_participant(process, actor=facilitator, organisation=organisation)
    if activate:
        # A first drafting round that already took place, so the process can start.
        now = utcnow()
        processes.add_round(
            process,
            actor=facilitator,
            type=RoundType.DRAFTING,
            title="Eerste opzet",
            instructions="De procesbegeleider schrijft de eerste versie op basis van de "
            "verkenning met de vier koepels.",
            opens_at=now - timedelta(days=42),
            closes_at=now - timedelta(days=35),
        )
        processes.activate_process(process, actor=facilitator)
        processes.tick()
    return process, True


def build_demo_world(password: str) -> dict[str, int]:
    """Create whatever part of the demo world is missing. Returns how many of each exist."""
    _ensure_user("admin@example.org", "Beheerder Consensus", password, is_admin=True)
    facilitator = _ensure_user(
        "facilitator@example.org", "Anouk Hendriks", password, is_facilitator=True
    )
    organisations_by_slug: dict[str, Organisation] = {}
    people: dict[tuple[str, MembershipRole], User] = {}
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
        organisations_by_slug[demo.slug] = organisation
        people[(demo.slug, MembershipRole.REPRESENTATIVE)] = rep
        people[(demo.slug, MembershipRole.OFFICIAL)] = official
    db.session.flush()
    all_four = [organisations_by_slug[slug] for slug in ("vng", "ipo", "uvw", "bzk")]
    stories: list[tuple[str, str, str, list[str], bool, Callable[[DemoContext], None]]] = [
        (
            STRATEGY_SLUG,
            STRATEGY_TITLE,
            STRATEGY_PURPOSE,
            ["Cloud", "Data", "Digitale identiteit", "AI", "Digitale weerbaarheid"],
            True,
            _strategy_story,
        ),
        (
            CONSULTATION_SLUG,
            CONSULTATION_TITLE,
            "Een gezamenlijke reactie van de koepels op de Interbestuurlijke Datastrategie.",
            ["Data"],
            True,
            _consultation_story,
        ),
        (
            ENDORSEMENT_SLUG,
            ENDORSEMENT_TITLE,
            "Afspraken over digitale weerbaarheid die alle bestuurslagen samen willen maken.",
            ["Digitale weerbaarheid"],
            True,
            _endorsement_story,
        ),
        (
            DRAFT_SLUG,
            DRAFT_TITLE,
            "Verkenning van een gezamenlijk standpunt; de eerste rondes worden nog gepland.",
            ["Data", "Digitale identiteit"],
            False,
            _no_story,
        ),
    ]
    for slug, title, purpose, themes, activate, story in stories:
        process, created = _ensure_process(
            slug=slug,
            title=title,
            purpose=purpose,
            themes=themes,
            facilitator=facilitator,
            organisations=all_four,
            activate=activate,
        )
        if created:
            story(DemoContext(process, facilitator, organisations_by_slug, people))
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
