"""The joint letter of a signing round: laid out once, locked while a signature is added,
its current signatures and whether it is final."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from consensus import audit
from consensus.extensions import db
from consensus.models import (
    CoSignature,
    JointLetter,
    Organisation,
    Process,
    Round,
    RoundState,
    RoundType,
    StanceKind,
    User,
    Version,
    utcnow,
)
from consensus.services.errors import DomainError
from consensus.signing import documents, longterm, remote
from consensus.signing.authority import _credentials, current_certificate, issue_certificate
from consensus.signing.eligibility import adopted_outcome, counted_stances, eligible_organisations


def letter_of(round_: Round) -> JointLetter | None:
    return db.session.execute(
        select(JointLetter).where(JointLetter.round_id == round_.id)
    ).scalar_one_or_none()


def letter_content(process: Process, round_: Round, version: Version) -> documents.LetterContent:
    position = version.position
    opened = (round_.opened_at or utcnow()).astimezone(UTC)
    return documents.LetterContent(
        title=position.title,
        subject=position.subject or position.title,
        addressee=position.addressee,
        place=position.place or "Den Haag",
        letter_date=position.letter_date or _amsterdam_date(opened),
        reference=position.reference,
        body=version.body,
        version_number=version.number,
        version_sha256=version.sha256,
        process_title=process.title,
        signatories=[
            documents.Signatory(
                slug=s.organisation.slug,
                name=s.organisation.name,
                reservation=s.text if s.kind == StanceKind.ENDORSE_WITH_RESERVATIONS else "",
            )
            for s in counted_stances(process, round_)
        ],
    )


def _amsterdam_date(moment: datetime) -> date:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Europe/Amsterdam")).date()


def ensure_letter(process: Process, round_: Round, *, actor: User | None = None) -> JointLetter:
    """The unsigned letter of a signing round, laid out once and then fixed: statements
    name its hash. Two first visitors at once: the unique round_id keeps one (the caller
    rolls back and reloads on IntegrityError)."""
    existing = letter_of(round_)
    if existing is not None:
        return existing
    if round_.type != RoundType.SIGNING or round_.state == RoundState.SCHEDULED:
        raise DomainError(str(_l("The letter exists once the signing round has opened.")))
    if round_.version_id is None or adopted_outcome(process, round_.version_id) is None:
        raise DomainError(
            str(_l("This round's version was not adopted; there is nothing to sign."))
        )
    version = db.session.get_one(Version, round_.version_id)
    rendered = documents.render_letter(letter_content(process, round_, version))
    letter = JointLetter(
        process_id=process.id,
        round_id=round_.id,
        version_id=version.id,
        unsigned_pdf=rendered.pdf,
        unsigned_sha256=hashlib.sha256(rendered.pdf).hexdigest(),
        signature_boxes=rendered.boxes_json(),
        created_at=utcnow(),
    )
    db.session.add(letter)
    db.session.flush()
    audit.record(
        "letter.created",
        actor=actor,
        object_type="joint_letter",
        object_id=letter.id,
        payload={
            "process": process.id,
            "round": round_.id,
            "version": version.id,
            "version_sha256": version.sha256,
            "unsigned_sha256": letter.unsigned_sha256,
        },
    )
    return letter


def _letter_to_sign(process: Process, round_: Round, *, actor: User) -> JointLetter:
    """ensure_letter for a signer, also when another signer lays the first letter out at
    the same moment: the unique round keeps one (PostgreSQL: the later INSERT fails once
    the earlier commits) and this signer goes on with that one instead of an error."""
    try:
        with db.session.begin_nested():
            return ensure_letter(process, round_, actor=actor)
    except IntegrityError:
        letter = letter_of(round_)
        if letter is None:
            raise
        return letter


def _lock_letter(letter: JointLetter) -> JointLetter:
    """Take the letter row's write lock, then re-read it: one signer at a time.

    The UPDATE locks the row on PostgreSQL and takes SQLite's write lock, which a plain
    SELECT … FOR UPDATE would not; `populate_existing` makes the re-read win over any
    stale copy this session holds.
    """
    db.session.execute(
        update(JointLetter)
        .where(JointLetter.id == letter.id)
        .values(revision=JointLetter.revision)
        .execution_options(synchronize_session=False)
    )
    return db.session.execute(
        select(JointLetter)
        .where(JointLetter.id == letter.id)
        # Lock only the letter row: PostgreSQL refuses FOR UPDATE on the nullable side of
        # the outer join that the eager-loaded relationships would add.
        .with_for_update(of=JointLetter)
        .execution_options(populate_existing=True)
    ).scalar_one()


def current_signatures(round_: Round) -> list[CoSignature]:
    return list(
        db.session.execute(
            select(CoSignature)
            .where(CoSignature.round_id == round_.id, CoSignature.withdrawn_at.is_(None))
            .order_by(CoSignature.signed_at, CoSignature.id)
        ).scalars()
    )


def _field_name(organisation: Organisation) -> str:
    return f"Signature-{organisation.slug}"


def _add_pdf_signature(
    letter: JointLetter,
    pdf: bytes,
    signature: CoSignature,
    authorisation: remote.SignerAuthorisation | None = None,
) -> bytes:
    """One organisation's PAdES signature on top of `pdf`: with a timestamping service
    configured, validated first (a revoked certificate is refused) and timestamped (B-T).
    Any failure raises a DomainError and nothing is written (the caller's transaction
    rolls back, so the round stays as it was). `authorisation`: the signer's PIN/one-time
    code for a CSC provider that wants them (passed on, never kept)."""
    organisation = signature.organisation
    boxes = json.loads(letter.signature_boxes or "{}")
    box = boxes.get(organisation.slug)
    stamp = documents.StampText(
        signer_name=signature.signer_name,
        signer_title=signature.signer_title,
        organisation_name=organisation.name,
        signed_at=signature.signed_at,
        fingerprint=signature.key.fingerprint,
    )
    reason = f"Medeondertekening namens {organisation.name}"
    timestamper = longterm.timestamper()
    access = remote.access_for(organisation)
    if access is not None:
        try:
            with longterm.explained_failures(organisation.name):
                return remote.sign_pdf_remotely(
                    pdf,
                    access=access,
                    field_name=_field_name(organisation),
                    box=tuple(box) if box else None,  # type: ignore[arg-type]
                    stamp=stamp,
                    reason=reason,
                    location=organisation.name,
                    timestamper=timestamper,
                    validation_context=longterm.validation_context(fetching=True)
                    if timestamper
                    else None,
                    authorisation=authorisation,
                )
        except remote.RemoteSigningFailed as error:
            raise remote.explain(error, organisation.name) from error
    certificate = current_certificate(organisation) or issue_certificate(organisation, actor=None)
    if certificate.revoked_at is not None:
        raise DomainError(
            str(
                _l(
                    "The certificate of %(org)s was revoked; an administrator must issue or "
                    "upload a new one before it can sign. Nothing was signed.",
                    org=organisation.name,
                )
            )
        )
    with longterm.explained_failures(organisation.name):
        return documents.sign_pdf(
            pdf,
            credentials=_credentials(certificate),
            field_name=_field_name(organisation),
            box=tuple(box) if box else None,  # type: ignore[arg-type]
            stamp=stamp,
            reason=reason,
            location=organisation.name,
            timestamper=timestamper,
            validation_context=longterm.validation_context(fetching=True) if timestamper else None,
        )


def _write_signed_pdf(letter: JointLetter, pdf: bytes | None) -> None:
    letter.signed_pdf = pdf
    letter.sealed_at = None
    letter.revision += 1
    letter.updated_at = utcnow()
    db.session.flush()


def letter_is_final(process: Process, round_: Round) -> bool:
    """Final when every eligible organisation has signed, or the round has closed."""
    if round_.state == RoundState.CLOSED:
        return True
    signed = {s.organisation_id for s in current_signatures(round_)}
    eligible = {o.id for o in eligible_organisations(process, round_)}
    return bool(eligible) and eligible <= signed


def seal_letter(letter: JointLetter, *, actor: User | None) -> bool:
    """PAdES B-LTA for the final letter: every signature's validation data and a document
    timestamp, as one more incremental update (the caller holds the letter's lock).
    Without a timestamping service, or with nothing signed, there is nothing to seal."""
    timestamper = longterm.timestamper()
    if timestamper is None or letter.signed_pdf is None or letter.sealed_at is not None:
        return False
    with longterm.explained_failures(None):
        sealed = documents.seal_for_long_term(
            letter.signed_pdf,
            timestamper=timestamper,
            validation_context=longterm.validation_context(fetching=True),
        )
    letter.signed_pdf = sealed
    letter.revision += 1
    letter.sealed_at = utcnow()
    letter.updated_at = letter.sealed_at
    db.session.flush()
    audit.record(
        "letter.sealed",
        actor=actor,
        object_type="joint_letter",
        object_id=letter.id,
        payload={
            "round": letter.round_id,
            "signed_sha256": hashlib.sha256(sealed).hexdigest(),
            "tsa": longterm.tsa_url(),
        },
        origin=None if actor else "clock",
    )
    return True
