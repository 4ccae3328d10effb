"""A world in which a version was adopted and a signing round is open."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consensus import signing
from consensus.crypto import sshsig
from consensus.extensions import db
from consensus.models import (
    KeyCustody,
    MembershipRole,
    Organisation,
    Process,
    Round,
    RoundType,
    SigningKey,
    StanceKind,
    User,
    utcnow,
)
from consensus.services import endorsements, positions, processes
from tests.factories import make_membership, make_organisation, make_process, make_user

BODY = """Geachte minister,

De gezamenlijke overheden steunen de **nationale digitaliseringsstrategie**.

- Wij vragen structurele financiering.
- Wij vragen één gezamenlijke architectuur.

Wij zien uit naar het bestuurlijk overleg.
"""


@dataclass
class SigningWorld:
    facilitator: User
    process: Process
    endorsement: Round
    signing: Round
    orgs: list[Organisation]
    reps: dict[int, User]
    private_keys: dict[int, Ed25519PrivateKey] = field(default_factory=dict)
    keys: dict[int, SigningKey] = field(default_factory=dict)


def make_signing_world(
    *,
    custody: tuple[KeyCustody, ...] = (
        KeyCustody.PLATFORM_HELD,
        KeyCustody.PLATFORM_HELD,
        KeyCustody.SIGNER_HELD,
        KeyCustody.SIGNER_HELD,
    ),
    stances: tuple[StanceKind, ...] = (
        StanceKind.ENDORSE,
        StanceKind.ENDORSE,
        StanceKind.ENDORSE_WITH_RESERVATIONS,
        StanceKind.ENDORSE,
    ),
    open_signing: bool = True,
    body: str = BODY,
) -> SigningWorld:
    admin = make_user(is_admin=True)
    facilitator = make_user(is_facilitator=True, name="Fien Facilitator")
    names = [
        ("vng", "Vereniging van Nederlandse Gemeenten"),
        ("ipo", "Interprovinciaal Overleg"),
        ("uvw", "Unie van Waterschappen"),
        ("bzk", "Ministerie van Binnenlandse Zaken en Koninkrijksrelaties"),
    ][: len(custody)]
    orgs = [make_organisation(f"{slug}-{make_user().id}", name=name) for slug, name in names]
    reps = {}
    for n, org in enumerate(orgs):
        rep = make_user(name=f"Bestuurder {n + 1}")
        make_membership(rep, org, MembershipRole.REPRESENTATIVE, title="Voorzitter")
        reps[org.id] = rep
    now = utcnow()
    process = make_process(
        facilitator,
        orgs,
        title="Gezamenlijke inbreng digitaliseringsstrategie",
        rounds=[
            (RoundType.ENDORSEMENT, now + timedelta(hours=1), now + timedelta(days=1)),
            (RoundType.SIGNING, now + timedelta(days=2), now + timedelta(days=4)),
        ],
    )
    positions.create_position(
        process,
        actor=facilitator,
        title="Brief aan de minister",
        body=body,
        subject="Gezamenlijke inbreng op de digitaliseringsstrategie",
        addressee="De minister van Binnenlandse Zaken\nPostbus 20011\n2500 EA Den Haag",
        place="Den Haag",
        reference="BOD-2026-017",
    )
    endorsement, signing_round = process.rounds
    processes.open_round(endorsement, actor=facilitator)
    db.session.commit()
    for org, kind in zip(orgs, stances, strict=True):
        endorsements.cast_stance(
            endorsement,
            actor=reps[org.id],
            organisation=org,
            kind=kind,
            text="Mits de financiering structureel is." if kind.value.endswith("s") else "",
        )
    db.session.commit()
    processes.close_round(endorsement, actor=facilitator)
    db.session.commit()
    world = SigningWorld(facilitator, process, endorsement, signing_round, orgs, reps)
    for org, mode in zip(orgs, custody, strict=True):
        signing.set_custody(org, mode, actor=admin)
        if mode == KeyCustody.SIGNER_HELD:
            private = Ed25519PrivateKey.generate()
            world.private_keys[org.id] = private
            world.keys[org.id] = signing.enrol_key(
                org,
                actor=reps[org.id],
                public_key_line=sshsig.openssh_public_key_line(private.public_key(), "laptop"),
            )
        else:
            key = signing.platform_key(org)
            assert key is not None
            world.keys[org.id] = key
    db.session.commit()
    if open_signing:
        processes.open_round(signing_round, actor=facilitator)
        db.session.commit()
    return world


def sign_as(world: SigningWorld, org: Organisation, *, password: str | None = None):
    """Sign for `org` the way its custody requires (platform: password; signer: local key)."""
    from tests.factories import PASSWORD

    rep = world.reps[org.id]
    if signing.custody_of(org) == KeyCustody.PLATFORM_HELD:
        return signing.sign_with_platform_key(
            world.process,
            world.signing,
            org,
            actor=rep,
            proof=signing.ReAuthentication(password or PASSWORD),
        )
    statement = signing.prepare_statement(
        world.process, world.signing, org, actor=rep, key=world.keys[org.id]
    )
    armoured = sshsig.sign(world.private_keys[org.id], statement, signing.NAMESPACE)
    return signing.accept_uploaded_signature(
        world.process,
        world.signing,
        org,
        actor=rep,
        statement=statement,
        signature=armoured.encode(),
    )
