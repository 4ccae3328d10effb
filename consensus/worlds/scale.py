"""The scale world: a deterministic, national-size world for benchmarks (issues 9 and 23).

`build_scale_world(1.0, ...)` makes about 400 organisations (342 municipalities, 12
provinces, 21 water boards, the ministries and some others), 3,000 people, 500 processes
with their rounds, 5,000 versions, 50,000 comments, 10,000 amendments and 100,000 stances,
each with the audit event its service would have written: about a year and a half of a
running platform.

A scale N above 1 is N years of history of the same country: the same organisations and
people (two more facilitators per extra year), and N times the processes, versions,
comments, amendments and stances. The processes of the last year have the stages of a
running platform (drafting, consultation, endorsement, concluded, published); the others
are spread over the N years before the anchor and are long concluded (published or not).
Scale 10 is about 5,000 processes, 1,000,000 stances and 2,200,000 audit events over the
same ~400 organisations. Below 1 (the tests) everything shrinks: a smaller country over
one period. `history=` sets the years separately (a test's "ten years" in small).

Everything comes from one seeded random generator and a fixed anchor moment, so two runs
on empty databases give identical rows. Rows are written with Core `insert()` in batches
(executemany), with explicit primary keys, never one request per row, and streamed: a
process's rows go to the database once the process is complete, so memory stays bounded
at any scale. The audit events get exactly the leaf hashes, Merkle nodes and head frontier
that `audit.record` would have produced, so `flask audit verify` passes on the result;
they are appended in time order, so they are sorted in runs that spill to temporary files
and merged (the same order as one sort in memory).

Three processes are special, because the benchmark needs them, and have the same shape at
every scale of 1 and above (their own random generator, fixed numbers of versions,
comments, amendments and stance changes), so that page timings and SQL counts can be
compared between scales: the first has every organisation as participant and an open
endorsement round, and the version with the largest comment thread; the second, also with
every organisation, is concluded and published with two endorsement rounds and their
outcomes (the public page and board); the third, also with every organisation, has an
open consultation round, so every representative's dashboard shows the same kinds of
rounds in every world (it reads who acted per kind of open round).
"""

from __future__ import annotations

import gc
import heapq
import json
import random
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from sqlalchemy import Connection, Table, func, select, text

from consensus.audit.entry import Edge, canonical_entry, node_rows
from consensus.crypto import merkle
from consensus.domain import decision_rules
from consensus.domain.canonical import join_blocks, new_anchor, sha256_hex
from consensus.extensions import db
from consensus.models import (
    Amendment,
    AmendmentState,
    AuditEvent,
    AuditLogHead,
    Base,
    Comment,
    DecisionRule,
    Membership,
    MembershipRole,
    MerkleNode,
    Organisation,
    OrganisationKind,
    Outcome,
    Participation,
    Position,
    Process,
    ProcessFacilitator,
    ProcessState,
    ProcessTheme,
    Round,
    RoundState,
    RoundType,
    Stance,
    StanceKind,
    User,
    Version,
    VersionParagraph,
    Visibility,
)

DEFAULT_SEED = 20_261_128
# History ends here; open rounds stay open for a year after it.
DEFAULT_ANCHOR = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
EMAIL_DOMAIN = "scale.example.org"
SLUG_PREFIX = "schaal"
BATCH = 5_000
ROW_BUFFER = 50_000  # rows kept before they are written (at the end of a process)
EVENT_RUN = 250_000  # audit events sorted in memory before a run spills to a file
ORIGIN = "cli"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Per unit of scale (the country: organisations and people grow only up to scale 1).
ORGANISATION_MIX = [
    (OrganisationKind.MUNICIPALITIES, 342, "Gemeente", "gemeente"),
    (OrganisationKind.PROVINCES, 12, "Provincie", "provincie"),
    (OrganisationKind.WATER_BOARDS, 21, "Waterschap", "waterschap"),
    (OrganisationKind.NATIONAL_GOVERNMENT, 12, "Ministerie van", "ministerie"),
    (OrganisationKind.OTHER, 13, "Samenwerkingsverband", "samenwerking"),
]
USERS_PER_ORGANISATION = 7.5  # one representative, officials and observers
OPEN_RESPONSE = 0.6  # share of participants that responded in an open endorsement round
CLOSED_RESPONSE = 0.92
FACILITATORS = 20
FACILITATORS_PER_EXTRA_YEAR = 2
# Per unit of scale (the history: N years at scale N).
PROCESSES = 500
VERSIONS = 5_000
COMMENTS = 50_000
AMENDMENTS = 10_000
STANCES = 100_000
LARGEST_THREAD_SHARE = 0.01  # of a year's comments, on the first process's version 1
# The two special processes (the same shape at every scale >= 1): versions of their one
# position, and how many extra (changed) stances per responding organisation and round.
SPECIAL = 3  # the first three processes
NATIONAL_VERSIONS = 6
PUBLISHED_VERSIONS = 12
CONSULTATION_VERSIONS = 3
SPECIAL_CHANGE_RATE = 1.0

THEMES = ["Cloud", "Data", "Digitale identiteit", "AI", "Digitale weerbaarheid", "Inclusie"]
_SYLLABLES = [
    "aal", "berg", "bree", "dam", "dijk", "drecht", "ee", "gou", "haar", "hoorn", "hout",
    "kamp", "ker", "lan", "len", "lo", "meer", "mond", "na", "oost", "ooster", "rijn", "ro",
    "sloot", "ste", "veen", "veld", "vliet", "voor", "wa", "wold", "zand", "zee", "zwaag",
]  # fmt: skip
_WORDS = [
    "de",
    "het",
    "een",
    "gemeenten",
    "provincies",
    "waterschappen",
    "rijk",
    "overheid",
    "inwoners",
    "ondernemers",
    "gegevens",
    "samenwerking",
    "digitale",
    "voorzieningen",
    "standaarden",
    "afspraken",
    "uitvoering",
    "financiering",
    "weerbaarheid",
    "identiteit",
    "cloud",
    "data",
    "strategie",
    "bestuurslagen",
    "gezamenlijk",
    "gelijkwaardig",
    "breed",
    "regie",
    "ondersteuning",
    "kennis",
    "capaciteit",
    "toezicht",
    "privacy",
    "beheer",
    "architectuur",
    "kaders",
    "keuzes",
    "vragen",
    "stellen",
    "voor",
    "steunen",
    "willen",
    "moeten",
    "kunnen",
    "zorgen",
    "borgen",
    "verbeteren",
    "delen",
    "oefenen",
    "wij",
    "zij",
    "met",
    "voor",
    "door",
    "over",
    "bij",
    "in",
    "op",
    "van",
    "naar",
    "en",
    "ook",
    "daarom",
    "zodat",
    "structureel",
    "jaarlijks",
    "regionaal",
    "landelijk",
    "lokaal",
    "tijdig",
    "zorgvuldig",
]


@dataclass
class _Ids:
    """The next free primary key per table (explicit keys make bulk inserts possible)."""

    next: dict[str, int] = field(default_factory=dict)

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


# An audit event to append: (microseconds since the epoch, creation order, actor,
# organisation, action, object type, object id, payload JSON). Plain tuples sort by time
# and then by the order they were made in, and travel through a JSON file unchanged.
_Event = tuple[int, int, int | None, int | None, str, str, str, str]


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


@dataclass
class _World:
    rng: random.Random
    anchor: datetime
    ids: _Ids
    conn: Connection
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    buffered: int = 0
    written: dict[str, int] = field(default_factory=dict)
    events: list[_Event] = field(default_factory=list)
    made_events: int = 0
    runs: list[IO[str]] = field(default_factory=list)  # sorted runs spilled to files

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)
        self.buffered += 1

    def write_rows(self, *, everything: bool = False) -> None:
        """Write the buffered rows (called between processes, whose rows are complete)."""
        if everything or self.buffered >= ROW_BUFFER:
            _insert_rows(self.conn, self.rows, self.written)
            self.rows = {}
            self.buffered = 0

    def event(
        self,
        at: datetime,
        action: str,
        *,
        actor: int | None,
        object_type: str,
        object_id: object,
        organisation: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        self.events.append(
            (
                _micros(at),
                self.made_events,
                actor,
                organisation,
                action,
                object_type,
                str(object_id),
                json.dumps(
                    payload or {},
                    sort_keys=True,
                    separators=(",", ":"),
                    ensure_ascii=False,
                    default=str,
                ),
            )
        )
        self.made_events += 1
        if len(self.events) >= EVENT_RUN:
            self._spill()

    def _spill(self) -> None:
        """Sort the events in memory and move them to a temporary file (a sorted run)."""
        self.events.sort()
        run = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed below)
        run.writelines(json.dumps(event, ensure_ascii=False) + "\n" for event in self.events)
        run.seek(0)
        self.runs.append(run)
        self.events = []

    def sorted_events(self) -> Iterator[_Event]:
        """Every event in time order: the runs on file merged with the ones in memory."""
        self.events.sort()
        if not self.runs:
            yield from self.events
            return

        def read(run: IO[str]) -> Iterator[_Event]:
            for line in run:
                yield tuple(json.loads(line))  # type: ignore[misc]

        yield from heapq.merge(*(read(run) for run in self.runs), self.events)

    def close(self) -> None:
        for run in self.runs:
            run.close()
        self.runs = []
        self.events = []


def _scaled(amount: int, scale: float, minimum: int) -> int:
    return max(minimum, round(amount * scale))


def _place_name(rng: random.Random) -> str:
    parts = [rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3)))]
    return "".join(parts).capitalize()


def _sentence(rng: random.Random, words: int) -> str:
    chosen = [rng.choice(_WORDS) for _ in range(words)]
    return " ".join(chosen).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng, rng.randint(8, 18)) for _ in range(rng.randint(2, 4)))


def _minutes(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(minutes=rng.randint(low, high))


def scale_world_exists() -> bool:
    """True when a scale world is already in the database (the command is then a no-op)."""
    return (
        db.session.execute(
            select(Organisation.id).where(Organisation.slug.like(f"{SLUG_PREFIX}-%")).limit(1)
        ).first()
        is not None
    )


@dataclass(frozen=True)
class _Size:
    """The two dimensions of a scale: the country (organisations and people) and the
    history (years of processes). `volume` multiplies processes, versions, comments,
    amendments and stances."""

    country: float
    history: float

    @property
    def volume(self) -> float:
        return self.country * self.history


def _size(scale: float, history: float | None) -> _Size:
    if scale <= 0 or (history is not None and history < 1):
        raise ValueError("scale must be positive and history at least 1 (year)")
    return _Size(min(scale, 1.0), history if history is not None else max(scale, 1.0))


def build_scale_world(
    scale: float,
    *,
    password_hash: str,
    seed: int = DEFAULT_SEED,
    anchor: datetime = DEFAULT_ANCHOR,
    history: float | None = None,
) -> dict[str, int]:
    """Write the scale world into the current transaction (flushes, never commits).

    Up to 1, `scale` sizes the country (organisations, people) and everything in it; above
    1 it is the years of history of the scale-1 country. `history` (at least 1) sets the
    years separately, e.g. a small country over ten years in a test.

    `password_hash` is given to every person (hashing 3,000 passwords would take minutes
    and make the run non-deterministic). Returns how many rows of each kind were written.
    """
    size = _size(scale, history)
    # Hundreds of thousands of plain rows (dicts and tuples, no reference cycles) pass
    # through memory: the cyclic garbage collector would walk them again and again for
    # nothing (a quarter of the build's CPU time at N = 1). Off while building.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(size, password_hash=password_hash, seed=seed, anchor=anchor)
    finally:
        if collecting:
            gc.enable()


def _build(size: _Size, *, password_hash: str, seed: int, anchor: datetime) -> dict[str, int]:
    db.session.flush()
    conn = db.session.connection()
    ids = _Ids({name: _next_id(conn, table) for name, table in _TABLES.items()})
    # Not for secrets: a seeded generator is the point (the same world every time).
    rng = random.Random(seed)  # noqa: S311  # nosec B311  # nosemgrep
    world = _World(rng=rng, anchor=anchor, ids=ids, conn=conn)
    try:
        organisations = _organisations(world, size)
        people = _people(world, organisations, size, password_hash)
        world.write_rows(everything=True)
        _processes(world, size, organisations, people, seed)
        world.write_rows(everything=True)
        events = _append_audit_events(conn, world.sorted_events())
    finally:
        world.close()
    _reset_sequences(conn)
    db.session.expire_all()
    counts = {name: world.written.get(name, 0) for name in _TABLES}
    counts["audit_events"] = events
    return counts


# --- Organisations and people -----------------------------------------------------------------


def _before_history(size: _Size) -> timedelta:
    """How much earlier than at scale 1 the country is set up (the extra years)."""
    return timedelta(days=round(365 * (size.history - 1)))


def _organisations(world: _World, size: _Size) -> list[dict[str, Any]]:
    rng, anchor = world.rng, world.anchor
    created: list[dict[str, Any]] = []
    used_names: set[str] = set()
    at = anchor - timedelta(days=1500) - _before_history(size)
    for kind, amount, prefix, slug_word in ORGANISATION_MIX:
        for n in range(1, _scaled(amount, size.country, 1) + 1):
            place = _place_name(rng)
            while place in used_names:
                place = _place_name(rng)
            used_names.add(place)
            organisation_id = world.ids.take("organisation")
            at += _minutes(rng, 1, 30)
            row = {
                "id": organisation_id,
                "name": f"{prefix} {place}",
                "short_name": place[:40],
                "slug": f"{SLUG_PREFIX}-{slug_word}-{n:04d}",
                "kind": kind,
                "active": True,
                "created_at": at,
            }
            world.add("organisation", row)
            created.append(row)
            world.event(
                at,
                "organisation.created",
                actor=None,
                object_type="organisation",
                object_id=organisation_id,
                organisation=organisation_id,
                payload={"name": row["name"], "slug": row["slug"], "kind": kind.value},
            )
    return created


@dataclass
class _People:
    facilitators: list[int]
    representative: dict[int, tuple[int, str, str]]  # organisation -> (user, name, title)
    officials: dict[int, list[int]]


_FIRST = [
    "Anna",
    "Bram",
    "Carla",
    "Daan",
    "Eva",
    "Fatima",
    "Gijs",
    "Hanna",
    "Ilse",
    "Joris",
    "Karim",
    "Lotte",
    "Mark",
    "Noor",
    "Omar",
    "Petra",
    "Ruben",
    "Sanne",
    "Tim",
    "Yara",
]
_LAST = [
    "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder",
    "Bos", "Vos", "Peters", "Hendriks", "van Dijk", "El Amrani", "Yilmaz", "Kok",
]  # fmt: skip


def _person(world: _World, email: str, at: datetime, password_hash: str, **flags: bool) -> str:
    user_id = world.ids.take("user_account")
    name = f"{world.rng.choice(_FIRST)} {world.rng.choice(_LAST)}"
    world.add(
        "user_account",
        {
            "id": user_id,
            "email": email,
            "display_name": name,
            "password_hash": password_hash,
            "locale": "nl",
            "is_admin": False,
            "is_facilitator": flags.get("is_facilitator", False),
            "active": True,
            "totp_enabled": False,
            "session_generation": 0,
            "created_at": at,
        },
    )
    world.event(
        at,
        "user.created",
        actor=None,
        object_type="user",
        object_id=user_id,
        payload={"email": email, "is_admin": False, **flags},
    )
    return name


def _people(
    world: _World, organisations: list[dict[str, Any]], size: _Size, password_hash: str
) -> _People:
    rng = world.rng
    at = world.anchor - timedelta(days=1400) - _before_history(size)
    people = _People([], {}, {})
    facilitators = _scaled(FACILITATORS, size.country, 2)
    for n in range(1, facilitators + 1):
        at += _minutes(rng, 1, 60)
        user_id = world.ids.next["user_account"]
        _person(world, f"facilitator{n:03d}@{EMAIL_DOMAIN}", at, password_hash, is_facilitator=True)
        people.facilitators.append(user_id)
    for n, organisation in enumerate(organisations):
        slug = organisation["slug"].removeprefix(f"{SLUG_PREFIX}-")
        people.officials[organisation["id"]] = []
        # Alternately the whole and the next whole number, to average the fraction.
        members = int(USERS_PER_ORGANISATION) + (n % 2 if USERS_PER_ORGANISATION % 1 else 0)
        for k in range(members):
            at += _minutes(rng, 1, 20)
            if k == 0:
                role, email, title = (
                    MembershipRole.REPRESENTATIVE,
                    f"representative.{slug}@{EMAIL_DOMAIN}",
                    "Bestuurder, portefeuillehouder digitalisering",
                )
            elif k <= 4:
                role, email, title = (
                    MembershipRole.OFFICIAL,
                    f"official{k}.{slug}@{EMAIL_DOMAIN}",
                    "Beleidsadviseur digitalisering",
                )
            else:
                role, email, title = (
                    MembershipRole.OBSERVER,
                    f"observer{k}.{slug}@{EMAIL_DOMAIN}",
                    "Medewerker",
                )
            user_id = world.ids.next["user_account"]
            name = _person(world, email, at, password_hash)
            membership_id = world.ids.take("membership")
            world.add(
                "membership",
                {
                    "id": membership_id,
                    "user_id": user_id,
                    "organisation_id": organisation["id"],
                    "role": role,
                    "title": title,
                    "created_at": at,
                },
            )
            world.event(
                at,
                "membership.created",
                actor=None,
                object_type="membership",
                object_id=membership_id,
                organisation=organisation["id"],
                payload={"user": user_id, "role": role.value, "title": title},
            )
            if role == MembershipRole.REPRESENTATIVE:
                people.representative[organisation["id"]] = (user_id, name, title)
            elif role == MembershipRole.OFFICIAL:
                people.officials[organisation["id"]].append(user_id)
    # Longer history: a few more facilitators, made after everyone else so that the
    # people of the country (and their names) are the same as at scale 1.
    extra = round(FACILITATORS_PER_EXTRA_YEAR * (size.history - 1))
    for n in range(facilitators + 1, facilitators + extra + 1):
        at += _minutes(rng, 1, 60)
        user_id = world.ids.next["user_account"]
        _person(world, f"facilitator{n:03d}@{EMAIL_DOMAIN}", at, password_hash, is_facilitator=True)
        people.facilitators.append(user_id)
    return people


# --- Processes, positions, rounds and everything in them --------------------------------------


@dataclass
class _Plan:
    index: int
    stage: str  # drafting | consultation | endorsement | concluded | published
    participants: list[int]
    positions: int
    versions: list[int]  # per position
    comments: int = 0
    amendments: int = 0
    endorsement_rounds: int = 0
    earlier: int = 0  # days before the last period (a process of an earlier year)

    @property
    def special(self) -> bool:
        return self.index < SPECIAL


_STAGES = ["drafting", "consultation", "endorsement", "concluded", "published"]


def _plan(world: _World, size: _Size, organisations: list[dict[str, Any]]) -> list[_Plan]:
    rng = world.rng
    org_ids = [o["id"] for o in organisations]
    plans: list[_Plan] = []
    count = _scaled(PROCESSES, size.volume, SPECIAL + 2)
    for i in range(count):
        recent = True
        if i == 0:
            stage, participants = "endorsement", list(org_ids)
        elif i == 1:
            stage, participants = "published", list(org_ids)
        elif i == 2:
            stage, participants = "consultation", list(org_ids)
        else:
            # One process in `history` is of the last period (the stages of a running
            # platform); the others are of the years before and long concluded.
            recent = size.history <= 1 or rng.random() < 1 / size.history
            if recent:
                stage = rng.choices(_STAGES, weights=[10, 20, 20, 30, 20])[0]
            else:
                stage = rng.choices(_STAGES[3:], weights=[30, 20])[0]
            broad = rng.random() < 0.3
            size_ = (
                rng.randint(min(100, len(org_ids)), len(org_ids)) if broad else rng.randint(4, 40)
            )
            participants = sorted(rng.sample(org_ids, min(size_, len(org_ids))))
        positions = 2 if (i >= SPECIAL and rng.random() < 0.15) else 1
        plan = _Plan(i, stage, participants, positions, [])
        if not recent:
            plan.earlier = rng.randint(250, max(250, round(365 * size.history) - 100))
        plans.append(plan)
    # Versions: about VERSIONS * volume in all, more for processes that got further.
    weight = {"drafting": 1, "consultation": 3, "endorsement": 4, "concluded": 5, "published": 5}
    total_weight = sum(weight[p.stage] * p.positions for p in plans)
    target = _scaled(VERSIONS, size.volume, 3 * count)
    for plan in plans[SPECIAL:]:
        for _ in range(plan.positions):
            mean = target * weight[plan.stage] / total_weight
            plan.versions.append(max(1, min(40, round(rng.uniform(0.5, 1.5) * mean))))
    plans[0].versions = [NATIONAL_VERSIONS]
    plans[1].versions = [PUBLISHED_VERSIONS]
    plans[2].versions = [CONSULTATION_VERSIONS]
    # Comments and amendments, spread by the number of versions. The largest thread (the
    # first process's) is a share of one year's comments of the country, so the same at
    # every scale >= 1; so are the second process's comments and amendments.
    all_versions = sum(sum(p.versions) for p in plans)
    comments = _scaled(COMMENTS, size.volume, 20)
    largest = max(
        10,
        round(COMMENTS * size.country * LARGEST_THREAD_SHARE),
        3 * comments // count,
    )
    plans[0].comments = largest
    plans[0].amendments = max(5, round(AMENDMENTS * size.country * 0.002))
    plans[1].comments = largest // 4
    plans[1].amendments = max(5, round(AMENDMENTS * size.country * 0.003))
    plans[2].comments = largest // 5
    plans[2].amendments = max(5, round(AMENDMENTS * size.country * 0.001))
    for plan in plans[SPECIAL:]:
        share = sum(plan.versions) / all_versions
        plan.comments = round((comments - largest) * share * rng.uniform(0.5, 1.5))
        plan.comments = min(plan.comments, largest - 1)
        plan.amendments = round(_scaled(AMENDMENTS, size.volume, 5) * share * rng.uniform(0.5, 1.5))
    for plan in plans:
        if plan.index == 1:
            plan.endorsement_rounds = 2  # the same shape at every scale (query budgets)
        elif plan.stage in ("concluded", "published"):
            plan.endorsement_rounds = 2 if rng.random() < 0.4 else 1
        elif plan.stage == "endorsement":
            plan.endorsement_rounds = 1
    return plans


def _processes(
    world: _World,
    size: _Size,
    organisations: list[dict[str, Any]],
    people: _People,
    seed: int,
) -> None:
    plans = _plan(world, size, organisations)
    by_id = {o["id"]: o for o in organisations}
    # Stances: how many extra (changed) stances to spread so the total meets the target.
    responses = sum(
        len(p.participants)
        * p.endorsement_rounds
        * (OPEN_RESPONSE if p.stage == "endorsement" else CLOSED_RESPONSE)
        for p in plans[SPECIAL:]
    )
    special_stances = sum(
        len(p.participants)
        * p.endorsement_rounds
        * (OPEN_RESPONSE if p.stage == "endorsement" else CLOSED_RESPONSE)
        * (1 + SPECIAL_CHANGE_RATE)
        for p in plans[:SPECIAL]
    )
    target = max(10.0, STANCES * size.volume - special_stances)
    change_rate = max(0.0, target / max(1.0, responses) - 1)
    shared = world.rng
    for plan in plans:
        if plan.special:
            # The special processes draw from their own generator: the same at every scale.
            world.rng = random.Random(seed + 1 + plan.index)  # noqa: S311  # nosec B311  # nosemgrep
            try:
                _process(world, plan, people, by_id, SPECIAL_CHANGE_RATE)
            finally:
                world.rng = shared
        else:
            _process(world, plan, people, by_id, change_rate)
        world.write_rows()


def _process(
    world: _World,
    plan: _Plan,
    people: _People,
    organisations: dict[int, dict[str, Any]],
    change_rate: float,
) -> None:
    rng, anchor = world.rng, world.anchor
    process_id = world.ids.take("process")
    facilitator = people.facilitators[plan.index % len(people.facilitators)]
    finished = plan.stage in ("concluded", "published")
    span_days = sum(plan.versions) * 6 + 60
    start = anchor - timedelta(days=span_days + (rng.randint(10, 300) if finished else 0))
    start -= timedelta(days=plan.earlier)
    if plan.index == 0:
        title = "Landelijke agenda digitale overheid: inbreng van alle overheden"
    elif plan.index == 1:
        title = "Gezamenlijk standpunt over de basisinfrastructuur van de digitale overheid"
    elif plan.index == 2:
        title = "Consultatie: gezamenlijke aanpak van de digitale weerbaarheid"
    else:
        title = f"{rng.choice(THEMES)}: {_sentence(rng, rng.randint(4, 8))[:-1].lower()}"
        title = title[:200]
    rule = rng.choice(list(DecisionRule)) if plan.index > 1 else DecisionRule.QUALIFIED_MAJORITY
    share = rng.choice((51, 60, 67, 75)) if rule == DecisionRule.QUALIFIED_MAJORITY else None
    quorum = 0 if rule == DecisionRule.UNANIMITY else min(3, len(plan.participants))
    state = {
        "drafting": ProcessState.ACTIVE,
        "consultation": ProcessState.ACTIVE,
        "endorsement": ProcessState.ACTIVE,
        "concluded": ProcessState.CONCLUDED,
        "published": ProcessState.CONCLUDED,
    }[plan.stage]
    slug = f"{SLUG_PREFIX}-traject-{plan.index + 1:04d}"
    process_row: dict[str, Any] = {
        "id": process_id,
        "slug": slug,
        "title": title,
        "purpose": _paragraph(rng),
        "state": state,
        "decision_rule": rule,
        "quorum": quorum,
        "qualified_share_percent": share,
        "hide_tally_until_closed": False,
        "require_clearance": False,
        "visibility": Visibility.PARTICIPANTS,
        "publish_at": None,
        "published_at": None,
        "created_by_id": facilitator,
        "created_at": start,
        "concluded_at": None,
    }
    world.add("process", process_row)
    themes = sorted(rng.sample(THEMES, rng.randint(1, 3)))
    world.event(
        start,
        "process.created",
        actor=facilitator,
        object_type="process",
        object_id=process_id,
        payload={"title": title, "slug": slug, "rule": rule.value, "themes": themes},
    )
    for theme in themes:
        world.add(
            "process_theme",
            {"id": world.ids.take("process_theme"), "process_id": process_id, "name": theme},
        )
    world.add("process_facilitator", {"process_id": process_id, "user_id": facilitator})
    at = start
    for organisation_id in plan.participants:
        at += timedelta(seconds=rng.randint(5, 90))
        world.add(
            "participation",
            {
                "id": world.ids.take("participation"),
                "process_id": process_id,
                "organisation_id": organisation_id,
                "added_at": at,
                "reason": "",
            },
        )
        world.event(
            at,
            "process.participant_added",
            actor=facilitator,
            object_type="process",
            object_id=process_id,
            organisation=organisation_id,
            payload={"organisation": organisation_id},
        )

    ctx = _ProcessContext(world, plan, process_id, facilitator, people, organisations, rule, start)
    ctx.latest = start
    ctx.rule_settings = decision_rules.RuleSettings(
        rule=decision_rules.Rule(rule.value), quorum=quorum, share_percent=share
    )
    at = start + timedelta(days=1)
    sequence = 0
    # A drafting round that took place before the first version.
    sequence += 1
    ctx.round(sequence, RoundType.DRAFTING, at, at + timedelta(days=7), "closed", version=None)
    at += timedelta(days=1)
    world.event(at, "process.activated", actor=facilitator, object_type="process",
                object_id=process_id)  # fmt: skip
    at += timedelta(days=7)

    versions_by_position = [ctx.position(n, count, at) for n, count in enumerate(plan.versions)]
    main = versions_by_position[0]  # [(version id, number, created_at, paragraphs)]
    # Consultation on version 1 of the main position (open now when in consultation).
    consult_version = main[-1] if plan.stage == "consultation" else main[0]
    if plan.stage != "drafting":
        sequence += 1
        opens = consult_version.created_at + timedelta(hours=2)
        if plan.stage == "consultation":
            round_id = ctx.round(
                sequence, RoundType.CONSULTATION, opens, anchor + timedelta(days=365), "open",
                version=consult_version.id,
            )  # fmt: skip
        else:
            round_id = ctx.round(
                sequence, RoundType.CONSULTATION, opens, opens + timedelta(days=14), "closed",
                version=consult_version.id,
            )  # fmt: skip
        ctx.consultation = (round_id, consult_version.id)
    ctx.comments_and_amendments(versions_by_position)

    last = main[-1]
    for k in range(plan.endorsement_rounds):
        sequence += 1
        open_now = plan.stage == "endorsement"
        version = main[-2] if (plan.endorsement_rounds == 2 and k == 0 and len(main) > 1) else last
        if open_now:
            opens = anchor - timedelta(days=7)
            closes = anchor + timedelta(days=365)
        else:
            opens = version.created_at + timedelta(days=1 + k)
            closes = opens + timedelta(days=10)
        round_id = ctx.round(
            sequence,
            RoundType.ENDORSEMENT,
            opens,
            closes,
            "open" if open_now else "closed",
            version=version.id,
        )
        ctx.stances(round_id, version.id, opens, closes, open_now, change_rate)
        if not open_now:
            ctx.outcome(round_id, version.id, closes)
        ctx.latest = max(ctx.latest, closes)
    if finished:
        concluded = ctx.latest + timedelta(days=rng.randint(1, 20))
        process_row["concluded_at"] = concluded
        world.event(concluded, "process.concluded", actor=facilitator, object_type="process",
                    object_id=process_id)  # fmt: skip
        if plan.stage == "published":
            process_row["visibility"] = Visibility.PUBLISHED
            process_row["published_at"] = concluded + timedelta(hours=1)
            world.event(
                concluded + timedelta(hours=1),
                "process.published",
                actor=facilitator,
                object_type="process",
                object_id=process_id,
                payload={"at": None},
            )


@dataclass
class _VersionInfo:
    id: int
    number: int
    created_at: datetime
    paragraphs: list[tuple[str, str]]  # (anchor, text)
    position_id: int


@dataclass
class _ProcessContext:
    world: _World
    plan: _Plan
    process_id: int
    facilitator: int
    people: _People
    organisations: dict[int, dict[str, Any]]
    rule: DecisionRule
    started: datetime
    rule_settings: decision_rules.RuleSettings | None = None
    current_stances: dict[int, dict[str, Any]] = field(default_factory=dict)
    latest: datetime = DEFAULT_ANCHOR
    consultation: tuple[int, int] | None = None  # (round id, version id)
    amendment_numbers: dict[int, int] = field(default_factory=dict)

    def round(
        self,
        sequence: int,
        type_: RoundType,
        opens: datetime,
        closes: datetime,
        state: str,
        *,
        version: int | None,
    ) -> int:
        world = self.world
        round_id = world.ids.take("round")
        opened = opens
        closed = closes if state == "closed" else None
        world.add(
            "round",
            {
                "id": round_id,
                "process_id": self.process_id,
                "sequence": sequence,
                "type": type_,
                "title": f"Ronde {sequence}: {type_.value}",
                "instructions": _sentence(world.rng, 12),
                "opens_at": opens,
                "closes_at": closes,
                "state": RoundState(state),
                "version_id": version,
                "opened_at": opened,
                "closed_at": closed,
            },
        )
        created = max(self.started + timedelta(minutes=1), opens - timedelta(days=2))
        world.event(
            created,
            "round.created",
            actor=self.facilitator,
            object_type="round",
            object_id=round_id,
            payload={"process": self.process_id, "type": type_.value, "sequence": sequence},
        )
        world.event(opened, "round.opened", actor=None, object_type="round", object_id=round_id,
                    payload={"version": version})  # fmt: skip
        if closed is not None:
            world.event(closed, "round.closed", actor=None, object_type="round",
                        object_id=round_id)  # fmt: skip
        return round_id

    def position(self, n: int, versions: int, at: datetime) -> list[_VersionInfo]:
        world, rng = self.world, self.world.rng
        position_id = world.ids.take("position")
        title = f"Standpunt {n + 1}: {_sentence(rng, 5)[:-1].lower()}"
        world.add(
            "position",
            {
                "id": position_id,
                "process_id": self.process_id,
                "title": title,
                "subject": _sentence(rng, 6)[:-1],
                "addressee": "Aan de minister van Binnenlandse Zaken en Koninkrijksrelaties",
                "place": "Den Haag",
                "letter_date": None,
                "reference": f"SCH-{self.process_id}-{n + 1}",
                "created_by_id": self.facilitator,
                "created_at": at,
            },
        )
        world.event(
            at,
            "position.created",
            actor=self.facilitator,
            object_type="position",
            object_id=position_id,
            payload={"process": self.process_id, "title": title},
        )
        blocks = ["Geachte minister,"]
        for _ in range(rng.randint(5, 10)):
            if rng.random() < 0.25:
                blocks.append("## " + _sentence(rng, rng.randint(2, 4))[:-1])
            blocks.append(_paragraph(rng))
        blocks.append("Hoogachtend,")
        paragraphs: list[tuple[str, str]] = []
        taken: set[str] = set()
        for block in blocks:
            anchor = new_anchor(block, taken)
            taken.add(anchor)
            paragraphs.append((anchor, block))
        made: list[_VersionInfo] = []
        previous: int | None = None
        for number in range(1, versions + 1):
            if number > 1:
                paragraphs = list(paragraphs)
                for _ in range(rng.randint(1, 2)):
                    i = rng.randrange(1, len(paragraphs) - 1)
                    anchor, old = paragraphs[i]
                    if old.startswith("## "):
                        continue
                    paragraphs[i] = (anchor, _paragraph(rng))
                if rng.random() < 0.2:
                    block = _paragraph(rng)
                    anchor = new_anchor(block, {a for a, _ in paragraphs})
                    paragraphs.insert(rng.randrange(1, len(paragraphs)), (anchor, block))
            at += timedelta(days=rng.randint(2, 5), minutes=rng.randint(0, 600))
            previous = self._version(position_id, number, paragraphs, previous, at)
            made.append(_VersionInfo(previous, number, at, paragraphs, position_id))
        return made

    def _version(
        self,
        position_id: int,
        number: int,
        paragraphs: list[tuple[str, str]],
        based_on: int | None,
        at: datetime,
    ) -> int:
        world = self.world
        version_id = world.ids.take("position_version")
        body = join_blocks([t for _, t in paragraphs])
        digest = sha256_hex(body)
        summary = "Eerste versie" if number == 1 else "Wijzigingsvoorstellen verwerkt"
        world.add(
            "position_version",
            {
                "id": version_id,
                "position_id": position_id,
                "number": number,
                "body": body,
                "sha256": digest,
                "change_summary": summary,
                "based_on_id": based_on,
                "created_by_id": self.facilitator,
                "created_at": at,
            },
        )
        for ordinal, (anchor, block) in enumerate(paragraphs, start=1):
            world.add(
                "version_paragraph",
                {
                    "id": world.ids.take("version_paragraph"),
                    "version_id": version_id,
                    "ordinal": ordinal,
                    "anchor": anchor,
                    "text": block,
                },
            )
        world.event(
            at,
            "version.created",
            actor=self.facilitator,
            object_type="version",
            object_id=version_id,
            payload={
                "position": position_id,
                "number": number,
                "sha256": digest,
                "based_on": based_on,
                "change_summary": summary,
                "amendments": [],
            },
        )
        return version_id

    def _voice(self) -> tuple[int, int]:
        """A random official of a participating organisation: (user, organisation)."""
        rng = self.world.rng
        organisation = rng.choice(self.plan.participants)
        return rng.choice(self.people.officials[organisation]), organisation

    def comments_and_amendments(self, positions: list[list[_VersionInfo]]) -> None:
        world, rng = self.world, self.world.rng
        versions = [v for position in positions for v in position]
        consult_round, consult_version = self.consultation or (None, None)
        targets: list[_VersionInfo] = []
        for _ in range(self.plan.comments):
            if self.plan.index == 0 or (consult_version is not None and rng.random() < 0.5):
                target = next(v for v in versions if v.id == consult_version)
            else:
                target = rng.choice(versions)
            targets.append(target)
        threads: dict[int, list[tuple[int, str | None, datetime]]] = {}
        for target in targets:
            existing = threads.setdefault(target.id, [])
            at = target.created_at + timedelta(hours=1, minutes=rng.randint(0, 60 * 24 * 3))
            round_id = consult_round if target.id == consult_version else None
            if existing and rng.random() < 0.3:
                parent_id, anchor, parent_at = rng.choice(existing)
                at = max(at, parent_at + timedelta(minutes=5))
                if rng.random() < 0.3:
                    author, organisation, role = self.facilitator, None, "facilitator"
                else:
                    author, organisation = self._voice()
                    role = "official"
            else:
                parent_id = None
                anchor = rng.choice(target.paragraphs)[0] if rng.random() < 0.8 else None
                author, organisation = self._voice()
                role = "official"
            comment_id = world.ids.take("comment")
            body = " ".join(_sentence(rng, rng.randint(6, 20)) for _ in range(rng.randint(1, 3)))
            world.add(
                "comment",
                {
                    "id": comment_id,
                    "version_id": target.id,
                    "paragraph_anchor": anchor,
                    "parent_id": parent_id,
                    "round_id": round_id,
                    "author_id": author,
                    "organisation_id": organisation,
                    "author_role": role,
                    "body": body,
                    "created_at": at,
                },
            )
            if parent_id is None:
                existing.append((comment_id, anchor, at))
            world.event(
                at,
                "comment.created",
                actor=author,
                object_type="comment",
                object_id=comment_id,
                organisation=organisation,
                payload={
                    "version": target.id,
                    "paragraph": anchor,
                    "parent": parent_id,
                    "body": body,
                },
            )
        for _ in range(self.plan.amendments):
            position = rng.choice(positions)
            version = rng.choice(position)
            self._amendment(version, position)

    def _amendment(self, version: _VersionInfo, position: list[_VersionInfo]) -> None:
        world, rng = self.world, self.world.rng
        amendment_id = world.ids.take("amendment")
        number = self.amendment_numbers.get(version.position_id, 0) + 1
        self.amendment_numbers[version.position_id] = number
        author, organisation = self._voice()
        insert = rng.random() < 0.15
        anchor, original = rng.choice(version.paragraphs[1:-1] or version.paragraphs)
        proposed = _paragraph(rng)
        rationale = _sentence(rng, rng.randint(8, 20))
        at = version.created_at + timedelta(hours=2, minutes=rng.randint(0, 60 * 24 * 2))
        later = [v for v in position if v.number == version.number + 1]
        state = AmendmentState.PENDING
        decided = None
        if later:
            state = rng.choices(
                [AmendmentState.ACCEPTED, AmendmentState.ACCEPTED_IN_PART,
                 AmendmentState.REJECTED, AmendmentState.WITHDRAWN],
                weights=[45, 10, 35, 10],
            )[0]  # fmt: skip
        round_id = (
            self.consultation[0]
            if self.consultation and self.consultation[1] == version.id
            else None
        )
        row: dict[str, Any] = {
            "id": amendment_id,
            "position_id": version.position_id,
            "number": number,
            "version_id": version.id,
            "round_id": round_id,
            "organisation_id": organisation,
            "author_id": author,
            "paragraph_anchor": None if insert else anchor,
            "end_anchor": None,
            "insert_after_anchor": anchor if insert else None,
            "original_text": "" if insert else original,
            "proposed_text": proposed,
            "rationale": rationale,
            "state": state,
            "adopted_text": None,
            "decision_reason": None,
            "decided_by_id": None,
            "decided_at": None,
            "withdrawn_at": None,
            "rebased_on_version_id": None,
            "applied_in_version_id": None,
            "created_at": at,
        }
        world.event(
            at,
            "amendment.proposed",
            actor=author,
            object_type="amendment",
            object_id=amendment_id,
            organisation=organisation,
            payload={
                "position": version.position_id,
                "number": number,
                "version": version.id,
                "paragraph": row["paragraph_anchor"],
                "end": None,
                "insert_after": row["insert_after_anchor"],
                "proposed_text": proposed,
                "rationale": rationale,
            },
        )
        if later and state == AmendmentState.WITHDRAWN:
            row["withdrawn_at"] = at + timedelta(hours=3)
            world.event(row["withdrawn_at"], "amendment.withdrawn", actor=author,
                        object_type="amendment", object_id=amendment_id,
                        organisation=organisation, payload={"number": number})  # fmt: skip
        elif later:
            decided = min(later[0].created_at - timedelta(minutes=30), at + timedelta(days=1))
            decided = max(decided, at + timedelta(minutes=1))
            row["decided_by_id"] = self.facilitator
            row["decided_at"] = decided
            row["decision_reason"] = _sentence(rng, rng.randint(6, 14))
            if state != AmendmentState.REJECTED:
                row["adopted_text"] = proposed
                row["applied_in_version_id"] = later[0].id
            world.event(
                decided,
                "amendment.decided",
                actor=self.facilitator,
                object_type="amendment",
                object_id=amendment_id,
                organisation=organisation,
                payload={
                    "number": number,
                    "from": AmendmentState.PENDING.value,
                    "decision": state.value,
                    "reason": row["decision_reason"],
                    "adopted_text": row["adopted_text"],
                },
            )
        world.add("amendment", row)

    def stances(
        self,
        round_id: int,
        version_id: int,
        opens: datetime,
        closes: datetime,
        open_now: bool,
        change_rate: float,
    ) -> None:
        world, rng = self.world, self.world.rng
        respond = OPEN_RESPONSE if open_now else CLOSED_RESPONSE
        span = (min(closes, world.anchor) - opens).total_seconds()
        current: dict[int, dict[str, Any]] = {}
        casts: list[tuple[datetime, int]] = []
        for organisation in self.plan.participants:
            if rng.random() >= respond:
                continue
            times = 1
            extra = change_rate
            while extra > 0 and rng.random() < min(extra, 0.95):
                times += 1
                extra -= 1
            for _ in range(times):
                moment = opens + timedelta(seconds=rng.uniform(60, max(120, span)))
                casts.append((moment, organisation))
        casts.sort()
        kinds = [StanceKind.ENDORSE, StanceKind.ENDORSE_WITH_RESERVATIONS, StanceKind.ABSTAIN,
                 StanceKind.OBJECT]  # fmt: skip
        weights = [70, 15, 10, 5] if self.plan.index != 0 else [80, 12, 8, 0]
        for at, organisation in casts:
            stance_id = world.ids.take("stance")
            kind = rng.choices(kinds, weights=weights)[0]
            note = ""
            if kind in (StanceKind.ENDORSE_WITH_RESERVATIONS, StanceKind.OBJECT):
                note = _sentence(rng, rng.randint(8, 20))
            user, name, title = self.people.representative[organisation]
            superseded: list[int] = []
            if organisation in current:
                previous = current[organisation]
                previous["superseded_at"] = at
                superseded = [previous["id"]]
            row = {
                "id": stance_id,
                "round_id": round_id,
                "organisation_id": organisation,
                "version_id": version_id,
                "kind": kind,
                "text": note,
                "cast_by_id": user,
                "cast_by_name": name,
                "cast_by_title": title,
                "delegation_id": None,
                "substitute_for_name": None,
                "cast_at": at,
                "superseded_at": None,
            }
            current[organisation] = row
            world.add("stance", row)
            world.event(
                at,
                "stance.cast",
                actor=user,
                object_type="stance",
                object_id=stance_id,
                organisation=organisation,
                payload={
                    "round": round_id,
                    "version": version_id,
                    "kind": kind.value,
                    "text": note,
                    "delegation": None,
                    "supersedes": superseded,
                },
            )
        self.current_stances = current

    def outcome(self, round_id: int, version_id: int, closed: datetime) -> None:
        world = self.world
        assert self.rule_settings is not None
        stances = {o: decision_rules.Kind(r["kind"].value) for o, r in self.current_stances.items()}
        result = decision_rules.evaluate(self.rule_settings, self.plan.participants, stances)
        counts = result.tally
        outcome_id = world.ids.take("outcome")
        world.add(
            "outcome",
            {
                "id": outcome_id,
                "process_id": self.process_id,
                "round_id": round_id,
                "version_id": version_id,
                "decision_rule": self.rule.value,
                "quorum": self.rule_settings.quorum,
                "qualified_share_percent": self.rule_settings.share_percent,
                "participants": counts.participants,
                "endorsed": counts.endorsed,
                "with_reservations": counts.with_reservations,
                "abstained": counts.abstained,
                "objected": counts.objected,
                "no_response": counts.no_response,
                "adopted": result.adopted,
                "reasons": ",".join(r.value for r in result.reasons),
                "fixed_at": closed,
                "statement": "Het resultaat is vastgesteld." if result.adopted else "",
            },
        )
        world.event(
            closed,
            "outcome.fixed",
            actor=None,
            object_type="outcome",
            object_id=outcome_id,
            payload={
                "process": self.process_id,
                "round": round_id,
                "version": version_id,
                "rule": self.rule.value,
                "quorum": self.rule_settings.quorum,
                "share": self.rule_settings.share_percent,
                "adopted": result.adopted,
                "tally": {
                    "participants": counts.participants,
                    "endorsed": counts.endorsed,
                    "with_reservations": counts.with_reservations,
                    "abstained": counts.abstained,
                    "objected": counts.objected,
                    "no_response": counts.no_response,
                },
                "stances": sorted(r["id"] for r in self.current_stances.values()),
            },
        )


# --- Writing ----------------------------------------------------------------------------------

# In dependency order (parents first); the key is the table name.
_TABLES: dict[str, Table] = {
    model.__table__.name: model.__table__  # type: ignore[attr-defined]
    for model in (
        Organisation,
        User,
        Membership,
        Process,
        ProcessTheme,
        ProcessFacilitator,
        Participation,
        Position,
        Version,
        VersionParagraph,
        Round,
        Comment,
        Amendment,
        Stance,
        Outcome,
    )
}
_NO_SERIAL = {"process_facilitator"}


def _next_id(conn: Connection, table: Table) -> int:
    if table.name in _NO_SERIAL:
        return 0
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


def _batches(rows: Sequence[dict[str, Any]], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _insert_rows(
    conn: Connection, rows_by_table: dict[str, list[dict[str, Any]]], written: dict[str, int]
) -> None:
    for name, table in _TABLES.items():
        rows = rows_by_table.get(name, [])
        if not rows:
            continue
        if name == "position_version":
            # based_on_id points at the previous version of the same position: fine in one
            # statement, but keep batches in id order so every referent exists first.
            rows.sort(key=lambda r: r["id"])
        # Uniform keys per statement (executemany needs the same columns in every row).
        columns = sorted({key for row in rows for key in row})
        for batch in _batches(rows):
            conn.execute(table.insert(), [{c: row.get(c) for c in columns} for row in batch])
        written[name] = written.get(name, 0) + len(rows)


def _append_audit_events(conn: Connection, events: Iterable[_Event]) -> int:
    """Append the events (in time order), exactly as audit.record would have, one by one:
    the same entry writer and tree edge (audit.entry), in batches of plain rows."""
    head = conn.execute(
        select(AuditLogHead.size, AuditLogHead.frontier).where(AuditLogHead.id == 1)
    ).first()
    edge = Edge(head.size, bytes(head.frontier)) if head else Edge(0, b"")
    event_rows: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    event_table = AuditEvent.__table__
    node_table = MerkleNode.__table__
    appended = 0
    for micros, _, actor, organisation, action, object_type, object_id, payload in events:
        values = {
            "seq": edge.size + 1,
            "created_at": EPOCH + timedelta(microseconds=micros),
            "actor_id": actor,
            "organisation_id": organisation,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "result": "success",
            "origin": ORIGIN,
            "payload": payload,
        }
        leaf = merkle.leaf_hash(canonical_entry(**values))
        event_rows.append({**values, "leaf_hash": leaf})
        nodes.extend(node_rows(edge.append(leaf)))
        appended += 1
        if len(event_rows) >= BATCH * 4:
            conn.execute(event_table.insert(), event_rows)  # type: ignore[attr-defined]
            conn.execute(node_table.insert(), nodes)  # type: ignore[attr-defined]
            event_rows, nodes = [], []
    if event_rows:
        conn.execute(event_table.insert(), event_rows)  # type: ignore[attr-defined]
        conn.execute(node_table.insert(), nodes)  # type: ignore[attr-defined]
    head_table = AuditLogHead.__table__
    if head is None:
        conn.execute(  # type: ignore[attr-defined]
            head_table.insert(), {"id": 1, "size": edge.size, "frontier": edge.frontier()}
        )
    else:
        conn.execute(
            head_table.update().where(head_table.c.id == 1),  # type: ignore[attr-defined]
            {"size": edge.size, "frontier": edge.frontier()},
        )
    return appended


def _reset_sequences(conn: Connection) -> None:
    """PostgreSQL: explicit keys do not move the serial sequences; move them past the rows."""
    if conn.dialect.name != "postgresql":
        return
    for name in _TABLES:
        if name in _NO_SERIAL:
            continue
        # The table name is a bound parameter for the sequence lookup; the max() comes from
        # the expression API on the model's own table. No SQL text is built from strings.
        table = Base.metadata.tables[name]
        highest = conn.execute(select(func.coalesce(func.max(table.c.id), 1))).scalar_one()
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :value)"),
            {"table": f'"{name}"', "value": highest},
        )


def counts_by_table(names: Iterable[str] = ()) -> dict[str, int]:
    """Rows per table of the scale world's kinds (for the command's summary)."""
    conn = db.session.connection()
    wanted = list(names) or [*_TABLES, "audit_event"]
    tables = Base.metadata.tables
    result = {}
    for name in wanted:
        # The expression API, on the known table: no SQL text built from strings.
        result[name] = int(
            conn.execute(select(func.count()).select_from(tables[name])).scalar_one()
        )
    return result
