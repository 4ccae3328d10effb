"""The demo world: the four associations of the House of Thorbecke and their people.

Idempotent by construction: every object is looked up by its natural key first and only
created when missing, so running it twice changes nothing (and writes no audit events).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, func, select

from consensus.extensions import db
from consensus.models import (
    DecisionRule,
    Delegation,
    MailState,
    Membership,
    MembershipRole,
    Organisation,
    OrganisationKind,
    OutgoingMail,
    Process,
    Round,
    RoundType,
    User,
    Version,
    utcnow,
)
from consensus.models.endorsements import ClearanceDecision, StanceKind
from consensus.services import accounts, organisations, processes
from consensus.signing import cosigning


@dataclass(frozen=True)
class DemoOrganisation:
    slug: str
    name: str
    short_name: str
    kind: OrganisationKind
    representative: tuple[str, str]  # display name, title
    official: tuple[str, str]
    # A second official (official2.<slug>@example.org): organisation contributions are
    # drafted by one official and cleared by another (four eyes, issue 21).
    second_official: tuple[str, str]


DEMO_ORGANISATIONS = [
    DemoOrganisation(
        "vng",
        "Vereniging van Nederlandse Gemeenten",
        "VNG",
        OrganisationKind.MUNICIPALITIES,
        ("Marieke de Vries", "Voorzitter commissie Informatiesamenleving"),
        ("Jeroen Bakker", "Senior beleidsadviseur digitalisering"),
        ("Ayşe Demir", "Beleidsadviseur informatiesamenleving"),
    ),
    DemoOrganisation(
        "ipo",
        "Interprovinciaal Overleg",
        "IPO",
        OrganisationKind.PROVINCES,
        ("Henk Jansen", "Gedeputeerde, portefeuillehouder digitalisering"),
        ("Sanne Visser", "Beleidsmedewerker informatievoorziening"),
        ("Koen de Groot", "Adviseur digitale overheid"),
    ),
    DemoOrganisation(
        "uvw",
        "Unie van Waterschappen",
        "UvW",
        OrganisationKind.WATER_BOARDS,
        ("Fatima El Amrani", "Dijkgraaf, bestuurslid Unie van Waterschappen"),
        ("Pieter Mulder", "Adviseur informatiebeleid"),
        ("Eva Kramer", "Juridisch adviseur informatievoorziening"),
    ),
    DemoOrganisation(
        "bzk",
        "Ministerie van Binnenlandse Zaken en Koninkrijksrelaties",
        "BZK",
        OrganisationKind.NATIONAL_GOVERNMENT,
        ("Thomas van den Berg", "Staatssecretaris Digitalisering"),
        ("Lotte Smit", "Coördinerend beleidsmedewerker Digitale Overheid"),
        ("Daan Verhoeven", "Beleidsmedewerker interbestuurlijke samenwerking"),
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
    organisations by slug, the people by (slug, role) and each organisation's second
    official by slug."""

    process: Process
    facilitator: User
    organisations: dict[str, Organisation]
    people: dict[tuple[str, MembershipRole], User]
    second_officials: dict[str, User] = field(default_factory=dict)


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
    outbox_before = db.session.execute(select(func.max(OutgoingMail.id))).scalar() or 0
    _ensure_user("admin@example.org", "Beheerder Consensus", password, is_admin=True)
    facilitator = _ensure_user(
        "facilitator@example.org", "Anouk Hendriks", password, is_facilitator=True
    )
    organisations_by_slug: dict[str, Organisation] = {}
    people: dict[tuple[str, MembershipRole], User] = {}
    second_officials: dict[str, User] = {}
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
        second = _ensure_user(
            f"official2.{demo.slug}@example.org", demo.second_official[0], password
        )
        _ensure_membership(second, organisation, MembershipRole.OFFICIAL, demo.second_official[1])
        second_officials[demo.slug] = second
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
            story(
                DemoContext(process, facilitator, organisations_by_slug, people, second_officials)
            )
    _notification_chapter(organisations_by_slug, people, list(second_officials.values()))
    # The demo's history is made up: nobody is e-mailed about it (the notices stay in the
    # inbox). Mail from what people do in the demo afterwards is sent as usual.
    db.session.execute(
        delete(OutgoingMail).where(
            OutgoingMail.id > outbox_before, OutgoingMail.state == MailState.QUEUED
        )
    )
    db.session.flush()
    from consensus.worlds.demo_bodies import build_bodies_chapter

    admin = accounts.find_user_by_email("admin@example.org")
    assert admin is not None
    build_bodies_chapter(
        admin=admin, organisations=organisations_by_slug, people=people, password=password
    )
    return {
        "processes": len(db.session.execute(select(Process.id)).all()),
        "organisations": len(db.session.execute(select(Organisation.id)).all()),
        "users": len(db.session.execute(select(User.id)).all()),
    }


def _notification_chapter(
    organisations_by_slug: dict[str, Organisation],
    people: dict[tuple[str, MembershipRole], User],
    others: list[User],
) -> None:
    """E-mail notifications (docs/notifications.md): everyone's settings are the defaults
    (immediately for what asks them to act, news in a digest at 08:00 Amsterdam time), and
    IPO's representative lends the mandate to IPO's official for a month, so the demo has a
    substitute whom round openings, reminders and deadline warnings reach too (IPO has not
    yet taken its stance in the open endorsement round)."""
    from consensus.notifications import preferences
    from consensus.services import endorsements

    preferences.give_defaults([*people.values(), *others])
    ipo = organisations_by_slug["ipo"]
    representative = people[("ipo", MembershipRole.REPRESENTATIVE)]
    official = people[("ipo", MembershipRole.OFFICIAL)]
    if not db.session.execute(
        select(Delegation.id).where(Delegation.organisation_id == ipo.id)
    ).first():
        now = utcnow()
        endorsements.create_delegation(
            actor=representative,
            organisation=ipo,
            delegate=official,
            valid_from=now - timedelta(days=1),
            valid_until=now + timedelta(days=30),
            note="Tijdens het reces",
        )


# --- The stories of each demo process ---------------------------------------------------------
# Each later feature adds its chapter here (positions and amendments, endorsements, signing).


def _no_story(ctx: DemoContext) -> None:
    """The draft process has no history yet."""


def _strategy_story(ctx: DemoContext) -> None:
    """The positions chapter of the main journey: the facilitator writes v1 of the letter,
    the four officials comment and propose amendments in a consultation round, the
    facilitator decides (accepted, accepted in part, rejected with a reason) and applies
    them as v2. The round is closed, so the next chapter can plan its rounds after it."""
    from datetime import date

    from consensus.models import AmendmentState
    from consensus.services import positions

    process, facilitator = ctx.process, ctx.facilitator
    org, people = ctx.organisations, ctx.people

    def official(slug: str) -> User:
        return people[(slug, MembershipRole.OFFICIAL)]

    body = """\
Geachte staatssecretaris,

Met deze brief geven de Vereniging van Nederlandse Gemeenten, het Interprovinciaal Overleg, \
de Unie van Waterschappen en het ministerie van Binnenlandse Zaken en Koninkrijksrelaties \
hun gezamenlijke inbreng op de nationale digitaliseringsstrategie. Wij doen dat in de geest \
van onze afspraak om de digitale overheid breed, gelijkwaardig en gezamenlijk te besturen.

## Eén digitale overheid

Inwoners en ondernemers maken geen onderscheid tussen bestuurslagen. Zij verwachten dat de \
overheid hun gegevens één keer vraagt, zorgvuldig bewaart en alleen gebruikt waarvoor die \
bedoeld zijn. Dat vraagt om gemeenschappelijke voorzieningen die alle overheden gebruiken en \
samen beheren.

## Cloud en data

Wij steunen de ambitie om overheidsdata beter te benutten. Gemeenten, provincies en \
waterschappen willen daarbij als volwaardige partner meebeslissen over standaarden, en niet \
alleen achteraf worden geïnformeerd.

Voor de overstap naar de cloud vragen wij een gezamenlijk kader voor soevereiniteit en \
exitstrategieën, zodat decentrale overheden niet ieder afzonderlijk met grote leveranciers \
hoeven te onderhandelen.

## Digitale identiteit

Een betrouwbare digitale identiteit is de basis van goede dienstverlening. Wij vragen het \
Rijk de invoering van de Europese digitale identiteitsportemonnee zo te organiseren dat \
gemeenten deze vanaf het begin in hun dienstverlening kunnen gebruiken.

## Digitale weerbaarheid

De dreiging van cyberaanvallen neemt toe, ook voor kleinere organisaties. Wij stellen voor \
jaarlijks gezamenlijk te oefenen met een grootschalige digitale verstoring en incidenten \
binnen 24 uur te delen via één gezamenlijke meldvoorziening.

## Uitvoering en financiering

De strategie vraagt veel van de uitvoering. Zonder structurele middelen voor decentrale \
overheden blijven de ambities op papier staan. Wij vragen u daarom de financiering via het \
Gemeentefonds, het Provinciefonds en voor de waterschappen expliciet te regelen.

Wij zien uit naar het vervolg en gaan graag met u in gesprek in het Bestuurlijk Overleg \
Digitalisering van het voorjaar.

Hoogachtend,
"""
    position = positions.create_position(
        process,
        actor=facilitator,
        title="Gezamenlijke brief over de nationale digitaliseringsstrategie",
        subject="Gezamenlijke inbreng op de nationale digitaliseringsstrategie",
        addressee="Aan de staatssecretaris van Binnenlandse Zaken en Koninkrijksrelaties\n"
        "Postbus 20011\n2500 EA Den Haag",
        place="Den Haag",
        letter_date=date(2026, 12, 15),
        reference="BOD-2026-017",
        body=body,
        change_summary="Eerste opzet op basis van de verkenning met de vier koepels.",
    )
    v1 = position.versions[0]
    p = {n: paragraph for n, paragraph in enumerate(v1.paragraphs, start=1)}

    now = utcnow()
    consultation = processes.add_round(
        process,
        actor=facilitator,
        type=RoundType.CONSULTATION,
        title="Consultatie op versie 1",
        instructions="Reageer per alinea en doe wijzigingsvoorstellen met een toelichting. "
        "De procesbegeleider verwerkt de voorstellen in versie 2 en legt elk besluit vast in "
        "de verwerkingsnota.",
        opens_at=now - timedelta(days=28),
        closes_at=now + timedelta(days=1),
    )
    processes.open_round(consultation, actor=facilitator)

    def comment(slug: str, n: int | None, text: str, parent: object = None) -> object:
        return positions.add_comment(
            v1,
            process,
            actor=official(slug),
            organisation=org[slug],
            body=text,
            paragraph_anchor=p[n].anchor if n else None,
            parent=parent,  # type: ignore[arg-type]
        )

    def answer(parent: object, text: str) -> None:
        positions.add_comment(v1, process, actor=facilitator, body=text, parent=parent)  # type: ignore[arg-type]

    def propose(slug: str, n: int, text: str, why: str, *, insert: bool = False) -> object:
        return positions.propose_amendment(
            v1,
            process,
            actor=official(slug),
            organisation=org[slug],
            proposed_text=text,
            rationale=why,
            paragraph_anchor=None if insert else p[n].anchor,
            insert_after_anchor=p[n].anchor if insert else None,
        )

    once = comment(
        "vng",
        4,
        "Goed dat de inwoner centraal staat. Kunnen we het principe van de eenmalige uitvraag "
        "hier met zoveel woorden noemen? Dat herkennen gemeenteraden direct.",
    )
    answer(once, "Dank, het staat er in de tweede zin al; we laten de formulering zo.")
    comment(
        "bzk",
        None,
        "Vanuit BZK: goede basis. Let op dat de strategie zelf zes prioriteiten kent; "
        "AI ontbreekt nog in deze brief. Misschien bewust?",
    )
    comment(
        "ipo",
        13,
        "De provincies delen de zorg over de uitvoeringskracht. Het Provinciefonds is wel "
        "een ander gesprek dan het Gemeentefonds.",
    )
    ot = comment(
        "uvw",
        11,
        "Waterschappen beheren vitale infrastructuur: gemalen, sluizen en zuiveringen. "
        "Operationele technologie verdient hier aandacht naast de kantoorautomatisering.",
    )
    answer(ot, "Terecht punt; zie wijzigingsvoorstel van de Unie.")

    # VNG: equal partners from the start — accepted.
    equal = propose(
        "vng",
        6,
        "Wij steunen de ambitie om overheidsdata beter te benutten. Gemeenten, provincies en "
        "waterschappen willen daarbij vanaf het begin als gelijkwaardige partner meebeslissen "
        "over standaarden en over de architectuur van gemeenschappelijke voorzieningen.",
        "‘Volwaardig’ en ‘niet alleen achteraf’ klinken defensief. ‘Gelijkwaardig’ sluit aan "
        "bij de afspraak over het interbestuurlijk sturen, en de architectuur hoort erbij.",
    )
    # IPO: a new paragraph on the provinces' regional role — accepted in part.
    region = propose(
        "ipo",
        7,
        "Provincies vervullen een regierol bij regionale samenwerking, onder meer bij de "
        "digitale infrastructuur in het landelijk gebied, de regionale datavoorzieningen en "
        "de ondersteuning van kleinere gemeenten. Wij vragen die rol in de strategie en in de "
        "bijbehorende uitvoeringsagenda uitdrukkelijk te benoemen en te financieren.",
        "De regionale schaal ontbreekt in de brief, terwijl veel uitvoering daar plaatsvindt.",
        insert=True,
    )
    # BZK: the wallet depends on European decisions — accepted.
    wallet = propose(
        "bzk",
        9,
        "Een betrouwbare digitale identiteit is de basis van goede dienstverlening. Wij vragen "
        "het Rijk de invoering van de Europese digitale identiteitsportemonnee zo te "
        "organiseren dat gemeenten, provincies en waterschappen deze kunnen gebruiken zodra "
        "zij beschikbaar is.",
        "De planning van de portemonnee hangt af van Europese uitvoeringshandelingen; "
        "‘vanaf het begin’ belooft meer dan het Rijk kan waarmaken. Ook provincies en "
        "waterschappen gebruiken haar.",
    )
    # UvW: vital water infrastructure — accepted.
    water = propose(
        "uvw",
        11,
        "De dreiging van cyberaanvallen neemt toe, ook voor kleinere organisaties en voor de "
        "vitale waterinfrastructuur. Wij stellen voor jaarlijks gezamenlijk te oefenen met een "
        "grootschalige digitale verstoring, inclusief uitval van operationele technologie, en "
        "incidenten binnen 24 uur te delen via één gezamenlijke meldvoorziening.",
        "Een digitale verstoring bij een gemaal of zuivering raakt de veiligheid direct. De "
        "oefeningen moeten ook de operationele technologie omvatten.",
    )
    # BZK: soften the funding request — rejected.
    funding = propose(
        "bzk",
        13,
        "De strategie vraagt veel van de uitvoering. Wij vragen u daarom in overleg met de "
        "koepels te bezien hoe de uitvoeringskracht van decentrale overheden kan worden "
        "versterkt.",
        "De financiering loopt via de reguliere begrotingscyclus; een expliciete toezegging "
        "in deze brief loopt vooruit op de voorjaarsbesluitvorming.",
    )
    processes.close_round(consultation, actor=facilitator)

    def settle(amendment: object, state: AmendmentState, why: str, adopted: str = "") -> None:
        positions.decide_amendment(
            amendment,  # type: ignore[arg-type]
            process,
            actor=facilitator,
            decision=state,
            reason=why,
            adopted_text=adopted or None,
        )

    settle(equal, AmendmentState.ACCEPTED, "Sluit aan bij de gezamenlijke lijn van de vier.")
    settle(
        region,
        AmendmentState.ACCEPTED_IN_PART,
        "De regierol van de provincies wordt benoemd. De vraag om aparte "
        "financiering valt onder de alinea over uitvoering en financiering.",
        "Provincies vervullen een regierol bij regionale samenwerking, onder meer bij de "
        "digitale infrastructuur in het landelijk gebied en de ondersteuning van kleinere "
        "gemeenten. Wij vragen die rol in de strategie uitdrukkelijk te benoemen.",
    )
    settle(
        wallet,
        AmendmentState.ACCEPTED,
        "Realistischer, en het geldt voor alle bestuurslagen.",
    )
    settle(water, AmendmentState.ACCEPTED, "Vitale infrastructuur hoort bij digitale weerbaarheid.")
    settle(
        funding,
        AmendmentState.REJECTED,
        "Gemeenten, provincies en waterschappen hechten aan een expliciete "
        "vraag om structurele middelen; zonder die vraag verliest de brief zijn kern. Het "
        "voorbehoud van BZK wordt besproken in het Bestuurlijk Overleg.",
    )
    _strategy_feedback_chapter(ctx, consultation)
    plan = positions.plan_application(position, positions.load_amendments(position.id))
    positions.apply_amendments(
        position,
        process,
        actor=facilitator,
        change_summary="Wijzigingsvoorstellen uit de consultatie verwerkt (zie de "
        "verwerkingsnota).",
        expected_sha256=plan.sha256,
    )
    _strategy_endorsement_chapter(ctx)
    _strategy_signing_chapter(ctx)


def _strategy_feedback_chapter(ctx: DemoContext, consultation: Round) -> None:
    """Feedback before publication (issue 21): the facilitator sent the proposed disposition
    of the consultation to the four organisations; VNG, IPO and the Unie van Waterschappen
    agreed, BZK agreed on the wallet and contested the rejection of its funding amendment;
    the report was then published with their answers. The demo's history is made up: the
    times are moved into the past afterwards (the clock has nothing left to announce)."""
    from consensus.models import FeedbackResponse, Notice, NotificationKind
    from consensus.services import drafting

    process, facilitator = ctx.process, ctx.facilitator
    now = utcnow()
    review = drafting.send_disposition(
        process,
        consultation,
        actor=facilitator,
        respond_by=now + timedelta(days=5),
        publish_at=now + timedelta(days=6),
    )
    slugs = {organisation.id: slug for slug, organisation in ctx.organisations.items()}
    for item in review.items:
        slug = slugs[item.organisation_id]
        contested = slug == "bzk" and item.proposed_state == "rejected"
        drafting.respond_to_disposition(
            item,
            process,
            actor=ctx.people[(slug, MembershipRole.OFFICIAL)],
            response=FeedbackResponse.CONTEST if contested else FeedbackResponse.AGREE,
            comment="BZK begrijpt de wens, maar kan niet vooruitlopen op de "
            "voorjaarsbesluitvorming; wij bespreken dit graag in het Bestuurlijk Overleg."
            if contested
            else "",
        )
    # Sent, answered and published just before the later rounds of this story (the
    # clearance round opened half an hour ago).
    review.sent_at = now - timedelta(minutes=50)
    review.respond_by = now - timedelta(minutes=40)
    review.publish_at = review.announced_at = now - timedelta(minutes=35)
    for item in review.items:
        item.responded_at = now - timedelta(minutes=45)
    # The request to answer (sent "now", with the future times) would mislead in the inbox
    # of this made-up history; its mail is dropped with the rest of the build's.
    db.session.execute(
        delete(Notice).where(
            Notice.round_id == consultation.id,
            Notice.kind == NotificationKind.DISPOSITION_SENT.value,
        )
    )
    db.session.flush()


def _consultation_story(ctx: DemoContext) -> None:
    """A process whose consultation round is open now, on v1 of a short joint reaction,
    with the first comments and one pending amendment."""
    from consensus.services import positions

    process, facilitator = ctx.process, ctx.facilitator
    position = positions.create_position(
        process,
        actor=facilitator,
        title="Reactie op de Interbestuurlijke Datastrategie",
        subject="Gezamenlijke reactie op de Interbestuurlijke Datastrategie",
        addressee="Aan de staatssecretaris van Binnenlandse Zaken en Koninkrijksrelaties",
        place="Den Haag",
        reference="IBDS-2026-03",
        body="""\
Geachte staatssecretaris,

De koepels van gemeenten, provincies en waterschappen en het ministerie van BZK reageren \
gezamenlijk op de Interbestuurlijke Datastrategie.

## Data als gemeenschappelijk goed

Overheidsdata zijn van de samenleving. Wij willen data zo delen dat ze voor beleid en \
uitvoering bruikbaar zijn, met oog voor privacy en voor de lasten van de organisaties die ze \
bijhouden.

## Federatief datastelsel

Wij steunen de bouw van een federatief datastelsel. Decentrale overheden leveren daarin \
belangrijke registraties en moeten daarom meebeslissen over afspraken en standaarden.

Met vriendelijke groet,
""",
    )
    v1 = position.versions[0]
    now = utcnow()
    processes.add_round(
        process,
        actor=facilitator,
        type=RoundType.CONSULTATION,
        title="Consultatie op versie 1",
        instructions="Reageer per alinea en doe wijzigingsvoorstellen met een toelichting.",
        opens_at=now - timedelta(days=3),
        closes_at=now + timedelta(days=11),
    )
    processes.tick()  # opens the round, about v1
    paragraphs = v1.paragraphs

    def comment(slug: str, paragraph: int, body: str) -> None:
        positions.add_comment(
            v1,
            process,
            actor=ctx.people[(slug, MembershipRole.OFFICIAL)],
            organisation=ctx.organisations[slug],
            paragraph_anchor=paragraphs[paragraph].anchor,
            body=body,
        )

    comment("vng", 3, "Graag ook de registratielasten voor kleine gemeenten noemen.")
    comment(
        "uvw", 5, "De waterschappen leveren de legger en peilbesluiten; die horen in het stelsel."
    )
    positions.propose_amendment(
        v1,
        process,
        actor=ctx.people[("ipo", MembershipRole.OFFICIAL)],
        organisation=ctx.organisations["ipo"],
        paragraph_anchor=paragraphs[5].anchor,
        proposed_text="Wij steunen de bouw van een federatief datastelsel. Decentrale "
        "overheden leveren daarin belangrijke registraties, zoals die van de ruimtelijke "
        "ordening en het water, en beslissen daarom als gelijkwaardige partner mee over "
        "afspraken en standaarden.",
        rationale="Concreet maken welke registraties het betreft, en ‘gelijkwaardig’ gebruiken.",
    )
    _consultation_contributions(ctx, v1)


def _consultation_contributions(ctx: DemoContext, v1: Version) -> None:
    """Organisation contributions (issue 21, docs/positions.md): VNG's two officials
    prepared an amendment together — Jeroen Bakker drafted it, Ayşe Demir added an internal
    note, cleared it (four eyes) and submitted it — so it appears once, as VNG's, on the same
    paragraph as IPO's amendment: the facilitator finds the two as one group to consolidate.
    The Unie van Waterschappen has a draft that its second official can still clear and
    submit."""
    from consensus.models import ContributionKind
    from consensus.services import drafting

    process, paragraphs = ctx.process, v1.paragraphs
    vng, uvw = ctx.organisations["vng"], ctx.organisations["uvw"]
    contribution = drafting.prepare_contribution(
        v1,
        process,
        actor=ctx.people[("vng", MembershipRole.OFFICIAL)],
        organisation=vng,
        kind=ContributionKind.AMENDMENT,
        paragraph_anchor=paragraphs[5].anchor,
        text="Wij steunen de bouw van een federatief datastelsel. Gemeenten leveren daarin "
        "de basisregistraties van personen, adressen en gebouwen, en beslissen daarom mee over "
        "afspraken en standaarden, met oog voor de lasten van kleine gemeenten.",
        rationale="De gemeentelijke basisregistraties zijn de kern van het stelsel; wie ze "
        "bijhoudt, draagt ook de lasten.",
    )
    second = ctx.second_officials["vng"]
    drafting.add_note(
        contribution,
        process,
        actor=second,
        body="Akkoord met de tekst; de lasten voor kleine gemeenten staan er nu in.",
    )
    drafting.clear_contribution(contribution, process, actor=second)
    drafting.submit_contribution(contribution, process, actor=second)
    drafting.prepare_contribution(
        v1,
        process,
        actor=ctx.people[("uvw", MembershipRole.OFFICIAL)],
        organisation=uvw,
        kind=ContributionKind.AMENDMENT,
        insert_after_anchor=paragraphs[5].anchor,
        text="De waterschappen leveren de legger en de peilbesluiten aan het stelsel; die "
        "registraties zijn nodig voor het waterbeheer en de ruimtelijke ordening.",
        rationale="Ook de registraties van de waterschappen horen in het stelsel.",
    )


def _endorsement_story(ctx: DemoContext) -> None:
    """A process in an open endorsement round with two stances cast (VNG and UvW)."""
    from consensus.services import endorsements, positions

    process, facilitator = ctx.process, ctx.facilitator
    positions.create_position(
        process,
        actor=facilitator,
        title="Digitale weerbaarheid: gezamenlijke afspraken",
        subject="Gezamenlijke afspraken over digitale weerbaarheid",
        addressee="De leden van de Tweede Kamer der Staten-Generaal",
        body=DEMO_RESILIENCE_TEXT,
    )
    now = utcnow()
    round_ = processes.add_round(
        process,
        actor=facilitator,
        type=RoundType.ENDORSEMENT,
        title="Instemming met versie 1",
        instructions="Leg namens uw organisatie het standpunt vast. Een voorbehoud of bezwaar "
        "licht u toe; het voorbehoud komt als voetnoot bij de tekst.",
        opens_at=now - timedelta(minutes=5),
        closes_at=now + timedelta(days=9),
    )
    processes.open_round(round_, actor=facilitator)
    vng, uvw = ctx.organisations["vng"], ctx.organisations["uvw"]
    endorsements.cast_stance(
        round_,
        actor=ctx.people[("vng", MembershipRole.REPRESENTATIVE)],
        organisation=vng,
        kind=StanceKind.ENDORSE,
    )
    endorsements.cast_stance(
        round_,
        actor=ctx.people[("uvw", MembershipRole.REPRESENTATIVE)],
        organisation=uvw,
        kind=StanceKind.ENDORSE_WITH_RESERVATIONS,
        text="De waterschappen stemmen in, mits de oefeningen ook de vitale "
        "waterinfrastructuur omvatten.",
    )


DEMO_RESILIENCE_TEXT = """\
# Digitale weerbaarheid van de decentrale overheden

Gemeenten, provincies, waterschappen en het Rijk maken samen afspraken over digitale
weerbaarheid: één gezamenlijk beeld van dreigingen, één aanpak bij incidenten.

## Afspraken

1. Elke bestuurslaag oefent jaarlijks een grootschalige digitale verstoring.
2. Incidenten worden binnen 24 uur gedeeld via de gezamenlijke meldvoorziening.
3. Het Rijk ondersteunt kleinere organisaties met kennis en capaciteit.
"""


def _strategy_endorsement_chapter(ctx: DemoContext) -> None:
    """After the positions chapter (v2 is the latest version): every official clears v2,
    the representatives endorse it — IPO with a reservation, UvW after first abstaining —
    the round closes adopted by consensus, the facilitator adds the outcome statement, and
    the process is published so its board and outcome are public."""
    from consensus.services import endorsements

    process, facilitator = ctx.process, ctx.facilitator
    now = utcnow()
    clearance = processes.add_round(
        process,
        actor=facilitator,
        type=RoundType.CLEARANCE,
        title="Ambtelijk akkoord op versie 2",
        instructions="De ambtelijke voorbereiders geven akkoord op versie 2, of zeggen wat "
        "nog in de weg staat.",
        opens_at=now - timedelta(minutes=30),
        closes_at=now + timedelta(days=5),
    )
    processes.open_round(clearance, actor=facilitator)
    for slug in ("vng", "ipo", "uvw", "bzk"):
        endorsements.record_clearance(
            clearance,
            actor=ctx.people[(slug, MembershipRole.OFFICIAL)],
            organisation=ctx.organisations[slug],
            decision=ClearanceDecision.CLEARED,
        )
    processes.close_round(clearance, actor=facilitator)

    endorsement = processes.add_round(
        process,
        actor=facilitator,
        type=RoundType.ENDORSEMENT,
        title="Bestuurlijke instemming met versie 2",
        instructions="De bestuurders leggen namens hun organisatie het standpunt over versie 2 "
        "vast. De beslisregel is consensus: geen bezwaren, en minstens drie organisaties "
        "stemmen in.",
        opens_at=now - timedelta(minutes=20),
        closes_at=now + timedelta(days=14),
    )
    processes.open_round(endorsement, actor=facilitator)

    def cast(slug: str, kind: StanceKind, text: str = "") -> None:
        endorsements.cast_stance(
            endorsement,
            actor=ctx.people[(slug, MembershipRole.REPRESENTATIVE)],
            organisation=ctx.organisations[slug],
            kind=kind,
            text=text,
        )

    cast("vng", StanceKind.ENDORSE)
    cast(
        "ipo",
        StanceKind.ENDORSE_WITH_RESERVATIONS,
        "De provincies stemmen in, met het voorbehoud dat hun regierol bij de regionale "
        "uitvoering in de uitwerking van de strategie wordt vastgelegd.",
    )
    cast("uvw", StanceKind.ABSTAIN, "Ons algemeen bestuur vergadert nog over de strategie.")
    cast("bzk", StanceKind.ENDORSE)
    cast("uvw", StanceKind.ENDORSE)  # after the board meeting
    processes.close_round(endorsement, actor=facilitator)
    outcome = endorsements.outcome_for(endorsement)
    assert outcome is not None and outcome.adopted
    endorsements.set_outcome_statement(
        outcome,
        actor=facilitator,
        statement="VNG, IPO, de Unie van Waterschappen en BZK stemmen in met versie 2 van de "
        "gezamenlijke inbreng. Het voorbehoud van het IPO over de regierol van de provincies "
        "wordt meegenomen in de uitwerking. De inbreng wordt namens de vier partijen "
        "ondertekend en aangeboden aan de minister.",
        review_on=(now + timedelta(days=365)).date(),
    )
    processes.schedule_publication(process, actor=facilitator, at=None)


def _strategy_signing_chapter(ctx: DemoContext) -> None:
    """After the endorsement chapter (v2 adopted, process published): a signing round in
    which all four organisations co-sign. IPO and the Unie van Waterschappen hold their own
    keys (the demo writes them to <instance>/demo-keys/<org>/id_ed25519 so anyone can try
    `ssh-keygen -Y sign` with them); VNG and BZK let the platform hold theirs. The public
    page then offers a verification bundle that checks out end to end."""
    import os
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from flask import current_app

    from consensus import signing
    from consensus.crypto import sshsig
    from consensus.models import KeyCustody

    process, facilitator = ctx.process, ctx.facilitator
    admin = db.session.execute(select(User).where(User.is_admin.is_(True))).scalars().first()
    now = utcnow()
    round_ = processes.add_round(
        process,
        actor=facilitator,
        type=RoundType.SIGNING,
        title="Ondertekening van de gezamenlijke inbreng",
        instructions="De bestuurders ondertekenen versie 2 namens hun organisatie. De brief "
        "gaat naar de minister zodra alle vier hebben ondertekend.",
        opens_at=now - timedelta(minutes=10),
        closes_at=now + timedelta(days=14),
    )
    processes.open_round(round_, actor=facilitator)
    key_folder = Path(current_app.instance_path) / "demo-keys"
    for slug in ("vng", "ipo", "uvw", "bzk"):
        organisation = ctx.organisations[slug]
        representative = ctx.people[(slug, MembershipRole.REPRESENTATIVE)]
        if slug in ("ipo", "uvw"):
            signing.set_custody(organisation, KeyCustody.SIGNER_HELD, actor=admin)
            private = Ed25519PrivateKey.generate()
            folder = key_folder / slug
            folder.mkdir(parents=True, exist_ok=True)
            key_path = folder / "id_ed25519"
            key_path.write_bytes(
                private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.OpenSSH,
                    serialization.NoEncryption(),
                )
            )
            os.chmod(key_path, 0o600)
            public_line = sshsig.openssh_public_key_line(private.public_key(), f"demo-{slug}")
            (folder / "id_ed25519.pub").write_text(public_line + "\n")
            key = signing.enrol_key(
                organisation,
                actor=representative,
                public_key_line=public_line,
                label="Demo-sleutel",
            )
            statement = signing.prepare_statement(
                process, round_, organisation, actor=representative, key=key
            )
            signing.accept_uploaded_signature(
                process,
                round_,
                organisation,
                actor=representative,
                statement=statement,
                signature=sshsig.sign(private, statement, signing.NAMESPACE).encode(),
            )
        else:
            signing.set_custody(organisation, KeyCustody.PLATFORM_HELD, actor=admin)
            # No person at the keyboard here, so no re-authentication (demo only).
            cosigning._platform_sign(
                process, round_, organisation, actor=representative, proof=None
            )
