"""Co-signing: statements, re-authentication, signatures, withdrawal, the round hooks.

An organisation co-signs by signing a small JSON *statement* (exact bytes, SSHSIG,
namespace `cosign@consensus`) that names the version's text hash and the unsigned
letter's hash. The platform then adds the organisation's PAdES signature to the joint
letter. Statements are what anyone can check with `ssh-keygen`; the PDF is what anyone
can check with a PDF reader, `pdfsig` or `pyhanko`.

Custody, chosen per organisation by an administrator:
- signer-held: representatives enrol their own SSH key and upload a `.sig` made
  locally; the platform verifies it and can never forge one;
- platform-held: the platform generates an Ed25519 key, keeps it sealed with the KEK and
  uses it only right after the representative re-authenticates.

Every use case flushes and never commits, records an audit event, and the ones that
change a signature also make a signed checkpoint of the audit log.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from consensus import audit, events, permissions
from consensus.crypto import sshsig
from consensus.crypto.keystore import KeystoreError
from consensus.extensions import db
from consensus.models import (
    CoSignature,
    JointLetter,
    KeyCustody,
    Organisation,
    Process,
    Round,
    RoundState,
    RoundType,
    SigningKey,
    User,
    Version,
    utcnow,
)
from consensus.permissions import Action
from consensus.permissions.signing import may_sign
from consensus.services import processes
from consensus.services.errors import Conflict, DomainError, Forbidden
from consensus.signing import remote
from consensus.signing.eligibility import eligible_organisations
from consensus.signing.keys import _platform_private_key, custody_of, platform_key
from consensus.signing.letter import (
    _add_pdf_signature,
    _letter_to_sign,
    _lock_letter,
    _write_signed_pdf,
    current_signatures,
    ensure_letter,
    letter_is_final,
    letter_of,
    seal_letter,
)

log = logging.getLogger(__name__)

NAMESPACE = "cosign@consensus"
STATEMENT_FORMAT = "consensus-cosign/1"
STATEMENT_MAX_BYTES = 8 * 1024
SIGNATURE_MAX_BYTES = 8 * 1024
STATEMENT_MAX_AGE = timedelta(days=2)
CLOCK_SKEW = timedelta(minutes=5)


def iso(moment: datetime) -> str:
    """The one textual form of a signing time: UTC, whole seconds, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def statement_dict(
    *,
    process: Process,
    version: Version,
    letter: JointLetter,
    organisation: Organisation,
    signer_name: str,
    signer_title: str,
    key: SigningKey,
    signed_at: datetime,
) -> dict[str, object]:
    return {
        "format": STATEMENT_FORMAT,
        "type": "cosign",
        "namespace": NAMESPACE,
        "process": {"slug": process.slug, "title": process.title},
        "position": {"id": version.position_id, "title": version.position.title},
        "version": {"number": version.number, "sha256": version.sha256},
        "letter": {"unsigned_sha256": letter.unsigned_sha256},
        "organisation": {"slug": organisation.slug, "name": organisation.name},
        "signer": {"name": signer_name, "title": signer_title},
        "key_fingerprint": key.fingerprint,
        "signed_at": iso(signed_at),
    }


def canonical_json(value: object) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8, one final newline: the same
    statement always has the same bytes."""
    return (
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    ).encode("utf-8")


def _signer_snapshot(actor: User, organisation: Organisation) -> tuple[str, str]:
    mandate = permissions.mandate_for(actor, organisation)
    title = mandate.membership.title if mandate is not None else ""
    return actor.display_name, title


def _statement_bytes(
    process: Process,
    letter: JointLetter,
    organisation: Organisation,
    *,
    actor: User,
    key: SigningKey,
    signed_at: datetime,
) -> bytes:
    """The exact statement this person signs for this organisation with this key at this
    moment: one construction for issuing, platform signing and checking an upload."""
    name, title = _signer_snapshot(actor, organisation)
    return canonical_json(
        statement_dict(
            process=process,
            version=letter.version,
            letter=letter,
            organisation=organisation,
            signer_name=name,
            signer_title=title,
            key=key,
            signed_at=signed_at,
        )
    )


def prepare_statement(
    process: Process,
    round_: Round,
    organisation: Organisation,
    *,
    actor: User,
    key: SigningKey,
    at: datetime | None = None,
) -> bytes:
    """The exact bytes to sign now: what a signer-held representative downloads."""
    decision = may_sign(actor, process, round_, organisation)
    if not decision:
        raise Forbidden(decision.reason)
    _check_key_for(key, organisation, actor)
    letter = letter_of(round_)  # laid out when the round opened; a download only reads
    if letter is None:
        raise DomainError(str(_l("The letter exists once the signing round has opened.")))
    return _statement_bytes(
        process,
        letter,
        organisation,
        actor=actor,
        key=key,
        signed_at=(at or utcnow()).replace(microsecond=0),
    )


def _check_key_for(key: SigningKey, organisation: Organisation, actor: User) -> None:
    if key.organisation_id != organisation.id:
        raise Forbidden(str(_l("This key belongs to another organisation.")))
    if key.revoked_at is not None:
        raise DomainError(str(_l("This key has been revoked.")))
    if key.retired_at is not None:
        raise DomainError(str(_l("This key has been replaced; use the current one.")))
    if key.custody == KeyCustody.SIGNER_HELD and key.holder_id != actor.id:
        raise Forbidden(str(_l("Sign with a key you enrolled yourself.")))
    if key.custody != custody_of(organisation):
        raise DomainError(str(_l("This organisation's custody does not allow this key.")))


@dataclass(frozen=True)
class PasswordChecked:
    """A password found right for this user and this stored hash, moments ago."""

    user_id: int
    password_hash: str


@dataclass(frozen=True)
class ReAuthentication:
    """What a representative gives at the moment of a platform-held signature.

    `checked`: the result of `check_password_first` in the same request, if any.
    """

    password: str
    code: str = ""
    checked: PasswordChecked | None = None
    # Set only by consensus.identity.passkeys.sign_after_passkey, after it verified one of
    # this user's passkeys (with user verification) in the same transaction.
    passkey_user_id: int | None = None


def check_password_first(actor: User, password: str) -> PasswordChecked | None:
    """The password's argon2 check (a tenth of a second and more of CPU, by design) made
    before the request takes the database's write lock, so other writers do not wait for
    it. Inside the lock `_reauthenticate` accepts it only while the stored hash is still
    the one checked; otherwise it checks the password again in full."""
    from consensus.services import accounts

    if accounts.password_matches(actor, password):
        return PasswordChecked(actor.id, actor.password_hash or "")
    return None


def _still_checked(actor: User, checked: PasswordChecked | None) -> bool:
    """True when the password was found right moments ago against the hash still stored
    for this active user (read now, inside the transaction that signs)."""
    if checked is None or checked.user_id != actor.id:
        return False
    current = db.session.execute(
        select(User.password_hash, User.active).where(User.id == actor.id)
    ).one_or_none()
    return bool(
        current is not None and current.active and current.password_hash == checked.password_hash
    )


def _reauthenticate(actor: User, proof: ReAuthentication) -> None:
    """Password, and the second factor when enrolled: a stolen session alone cannot sign.
    Or one of the signer's passkeys, which is both factors (issue 19)."""
    from consensus.services import accounts

    if proof.passkey_user_id is not None and proof.passkey_user_id == actor.id:
        return

    if not _still_checked(actor, proof.checked):
        user = accounts.authenticate(actor.email, proof.password)
        if user is None or user.id != actor.id:
            raise Forbidden(str(_l("The password is not correct.")))
    if actor.totp_enabled and accounts.verify_second_factor(actor, proof.code) is None:
        raise Forbidden(str(_l("That code is not correct. Try the current code.")))


def sign_with_platform_key(
    process: Process,
    round_: Round,
    organisation: Organisation,
    *,
    actor: User,
    proof: ReAuthentication,
    remote_authorisation: remote.SignerAuthorisation | None = None,
) -> CoSignature:
    """Co-sign with the organisation's platform-held key, right after re-authentication.
    `remote_authorisation`: the signer's PIN/code for the organisation's CSC provider."""
    return _platform_sign(
        process,
        round_,
        organisation,
        actor=actor,
        proof=proof,
        remote_authorisation=remote_authorisation,
    )


def _platform_sign(
    process: Process,
    round_: Round,
    organisation: Organisation,
    *,
    actor: User,
    proof: ReAuthentication | None,
    remote_authorisation: remote.SignerAuthorisation | None = None,
) -> CoSignature:
    """The platform-held signature itself. `proof=None` skips re-authentication: only the
    demo builder (a command-line tool without a person at the keyboard) passes None."""
    decision = may_sign(actor, process, round_, organisation)
    if not decision:
        raise Forbidden(decision.reason)
    if custody_of(organisation) != KeyCustody.PLATFORM_HELD:
        raise DomainError(str(_l("This organisation signs with its representatives' own keys.")))
    letter = _lock_letter(_letter_to_sign(process, round_, actor=actor))
    if proof is not None:
        _reauthenticate(actor, proof)
    key = platform_key(organisation)
    if key is None:
        raise DomainError(str(_l("This organisation has no platform-held key yet.")))
    signed_at = utcnow().replace(microsecond=0)
    statement = _statement_bytes(
        process, letter, organisation, actor=actor, key=key, signed_at=signed_at
    )
    try:
        private = _platform_private_key(key)
    except KeystoreError as error:
        raise DomainError(str(_l("The platform cannot open this key."))) from error
    armoured = sshsig.sign(private, statement, NAMESPACE)
    return _record_signature(
        process,
        round_,
        organisation,
        letter,
        actor,
        key,
        statement,
        armoured,
        signed_at,
        remote_authorisation,
    )


def parse_statement(data: bytes) -> dict[str, object]:
    if not data or len(data) > STATEMENT_MAX_BYTES:
        raise DomainError(str(_l("Upload the statement file (at most 8 kB).")), field="statement")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise DomainError(str(_l("The statement is not JSON.")), field="statement") from error
    if not isinstance(value, dict):
        raise DomainError(str(_l("The statement is not JSON.")), field="statement")
    return value


def accept_uploaded_signature(
    process: Process,
    round_: Round,
    organisation: Organisation,
    *,
    actor: User,
    statement: bytes,
    signature: bytes,
    remote_authorisation: remote.SignerAuthorisation | None = None,
) -> CoSignature:
    """Accept a statement signed locally with `ssh-keygen -Y sign`, after checking that
    it is byte for byte the statement we would issue (same version, same letter, this
    organisation, this signer, one of their keys in use) and that the signature verifies."""
    decision = may_sign(actor, process, round_, organisation)
    if not decision:
        raise Forbidden(decision.reason)
    if custody_of(organisation) != KeyCustody.SIGNER_HELD:
        raise DomainError(str(_l("This organisation's key is held by the platform.")))
    if not signature or len(signature) > SIGNATURE_MAX_BYTES:
        raise DomainError(str(_l("Upload the .sig file (at most 8 kB).")), field="signature")
    try:
        armoured = signature.decode("ascii")
    except UnicodeDecodeError as error:
        raise DomainError(
            str(_l("This is not an SSH signature file.")), field="signature"
        ) from error
    claimed = parse_statement(statement)
    letter = _lock_letter(_letter_to_sign(process, round_, actor=actor))
    fingerprint = claimed.get("key_fingerprint")
    key = (
        db.session.execute(select(SigningKey).where(SigningKey.fingerprint == str(fingerprint)))
        .scalars()
        .first()
    )
    if key is None:
        raise DomainError(
            str(_l("The statement names a key that is not enrolled.")), field="statement"
        )
    _check_key_for(key, organisation, actor)
    try:
        signed_at = datetime.strptime(str(claimed.get("signed_at")), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC
        )
    except ValueError as error:
        raise DomainError(
            str(_l("The statement has no valid signing time.")), field="statement"
        ) from error
    now = utcnow()
    if signed_at > now + CLOCK_SKEW or signed_at < now - STATEMENT_MAX_AGE:
        raise DomainError(
            str(_l("The statement is too old or in the future. Download a fresh one.")),
            field="statement",
        )
    expected = _statement_bytes(
        process, letter, organisation, actor=actor, key=key, signed_at=signed_at
    )
    if expected != statement:
        raise DomainError(
            str(
                _l(
                    "The statement is not the one for this round, version, organisation and "
                    "signer. Download it again and sign it unchanged."
                )
            ),
            field="statement",
        )
    try:
        sshsig.verify(armoured, statement, NAMESPACE, [key.public_key])
    except sshsig.SignatureError as error:
        raise DomainError(
            str(_l("The signature does not verify: %(why)s", why=str(error))), field="signature"
        ) from error
    return _record_signature(
        process,
        round_,
        organisation,
        letter,
        actor,
        key,
        statement,
        armoured,
        signed_at,
        remote_authorisation,
    )


def _record_signature(
    process: Process,
    round_: Round,
    organisation: Organisation,
    letter: JointLetter,
    actor: User,
    key: SigningKey,
    statement: bytes,
    armoured: str,
    signed_at: datetime,
    remote_authorisation: remote.SignerAuthorisation | None = None,
) -> CoSignature:
    already = db.session.execute(
        select(CoSignature.id).where(
            CoSignature.round_id == round_.id,
            CoSignature.organisation_id == organisation.id,
            CoSignature.withdrawn_at.is_(None),
        )
    ).first()
    if already is not None:  # checked under the letter lock, so no race
        raise Conflict(
            str(
                _l(
                    "%(org)s has already signed. Withdraw that signature first.",
                    org=organisation.name,
                )
            )
        )
    name, title = _signer_snapshot(actor, organisation)
    cosignature = CoSignature(
        process_id=process.id,
        round_id=round_.id,
        organisation_id=organisation.id,
        version_id=letter.version_id,
        letter_id=letter.id,
        key_id=key.id,
        signer_id=actor.id,
        signer_name=name,
        signer_title=title,
        custody=key.custody,
        statement=statement,
        signature=armoured,
        signed_at=signed_at,
        recorded_at=utcnow(),
    )
    db.session.add(cosignature)
    try:
        db.session.flush()
    except IntegrityError as error:
        raise Conflict(
            str(
                _l(
                    "%(org)s has already signed. Withdraw that signature first.",
                    org=organisation.name,
                )
            )
        ) from error
    _write_signed_pdf(
        letter,
        _add_pdf_signature(
            letter,
            letter.signed_pdf or letter.unsigned_pdf,
            cosignature,
            remote_authorisation,
        ),
    )
    if letter_is_final(process, round_):
        # The last signature: validation data and a document timestamp (B-LTA). Should
        # that fail, the signature fails with it (nothing half-done); it can be repeated.
        seal_letter(letter, actor=actor)
    _audit_and_checkpoint(
        "cosignature.signed",
        cosignature,
        actor,
        statement_sha256=hashlib.sha256(statement).hexdigest(),
        key=key.fingerprint,
        custody=key.custody.value,
        letter_revision=letter.revision,
        letter_sha256=hashlib.sha256(letter.signed_pdf or b"").hexdigest(),
    )
    events.record(
        events.CoSigned(round_id=round_.id, process_id=process.id, organisation_id=organisation.id)
    )
    return cosignature


def _audit_and_checkpoint(
    action: str, cosignature: CoSignature, actor: User | None, **payload: object
) -> None:
    audit.record(
        action,
        actor=actor,
        object_type="co_signature",
        object_id=cosignature.id,
        organisation_id=cosignature.organisation_id,
        payload={
            "process": cosignature.process_id,
            "round": cosignature.round_id,
            "version": cosignature.version_id,
            **payload,
        },
    )
    from consensus.audit import checkpoints

    checkpoints.make_checkpoint(actor)


def withdraw(cosignature: CoSignature, *, actor: User) -> list[str]:
    """Withdraw an organisation's signature while the round is open. The statement stays
    on record (flagged withdrawn); the letter is signed again without it. A remaining
    signature whose CSC provider wants its signer's own PIN or code cannot be made again
    without that signer: it comes off too, and the names of those organisations are
    returned (they can sign again)."""
    round_ = db.session.get_one(Round, cosignature.round_id)
    process = round_.process
    decision = permissions.gate(
        actor, Action.SIGN, process, cosignature.organisation, round_=round_
    )
    if not decision:
        raise Forbidden(decision.reason)
    letter = _lock_letter(db.session.get_one(JointLetter, cosignature.letter_id))
    db.session.refresh(cosignature)
    if cosignature.withdrawn_at is not None:
        raise DomainError(str(_l("This signature was already withdrawn.")))
    cosignature.withdrawn_at = utcnow()
    cosignature.withdrawn_by_id = actor.id
    db.session.flush()
    pdf: bytes | None = None
    taken_off: list[CoSignature] = []
    for remaining in current_signatures(round_):
        try:
            pdf = _add_pdf_signature(letter, pdf or letter.unsigned_pdf, remaining)
        except remote.SignerMustAuthorise:
            # Its provider wants the signer's own PIN or code for a new signature, and the
            # signer is not here: the signature comes off the letter with this withdrawal
            # (audited, reason below) and its organisation can sign again.
            remaining.withdrawn_at = cosignature.withdrawn_at
            remaining.withdrawn_by_id = actor.id
            taken_off.append(remaining)
    db.session.flush()
    _write_signed_pdf(letter, pdf)
    _audit_and_checkpoint(
        "cosignature.withdrawn",
        cosignature,
        actor,
        letter_revision=letter.revision,
        letter_sha256=hashlib.sha256(pdf).hexdigest() if pdf else None,
    )
    for other in taken_off:
        _audit_and_checkpoint(
            "cosignature.withdrawn",
            other,
            actor,
            reason="signer_must_authorise_again",
            because_of=cosignature.id,
            letter_revision=letter.revision,
        )
    return [other.organisation.name for other in taken_off]


def _signing_status(
    round_ids: list[int], organisation_ids: list[int] | None = None
) -> dict[tuple[int, int], tuple[datetime, str]]:
    statement = select(
        CoSignature.round_id,
        CoSignature.organisation_id,
        CoSignature.signed_at,
        CoSignature.signer_name,
    ).where(CoSignature.round_id.in_(round_ids), CoSignature.withdrawn_at.is_(None))
    if organisation_ids is not None:
        statement = statement.where(CoSignature.organisation_id.in_(organisation_ids))
    rows = db.session.execute(statement).all()
    return {(round_id, org_id): (at, name) for round_id, org_id, at, name in rows}


def _on_round_closed(round_: Round, actor: User | None) -> None:
    """A closing signing round fixes the letter as it stands: audited and checkpointed."""
    if round_.type != RoundType.SIGNING:
        return
    letter = letter_of(round_)
    if letter is None:
        return
    if letter.signed_pdf is not None and letter.sealed_at is None:
        try:
            with db.session.begin_nested():
                seal_letter(_lock_letter(letter), actor=actor)
        except DomainError as error:
            # The round closes anyway; `flask rounds tick` tries the seal again.
            log.warning("letter %s not sealed at closing: %s", letter.id, error)
    audit.record(
        "letter.finalised",
        actor=actor,
        object_type="joint_letter",
        object_id=letter.id,
        payload={
            "round": round_.id,
            "signatures": [s.id for s in current_signatures(round_)],
            "signed_sha256": hashlib.sha256(letter.signed_pdf).hexdigest()
            if letter.signed_pdf
            else None,
        },
        origin=None if actor else "clock",
    )
    from consensus.audit import checkpoints

    checkpoints.make_checkpoint(actor)


def _on_round_opened(round_: Round, actor: User | None) -> None:
    """A signing round lays its letter out as it opens (the facilitator's request or the
    clock), so that the signing page and the statement download only read it. Nothing to
    sign (no adopted version, nobody eligible): no letter, and the page says so."""
    if round_.type != RoundType.SIGNING:
        return
    process = round_.process
    if letter_of(round_) is not None or not eligible_organisations(process, round_):
        return
    try:
        with db.session.begin_nested():
            ensure_letter(process, round_, actor=actor)
    except DomainError:
        return


def seal_letters_of_closed_rounds() -> int:
    """Seal (B-LTA) the letters of closed signing rounds that are not sealed yet (the
    timestamping service was down when the round closed): run by `flask rounds tick`."""
    sealed = 0
    for letter in db.session.execute(
        select(JointLetter)
        .join(Round, Round.id == JointLetter.round_id)
        .where(
            Round.state == RoundState.CLOSED,
            JointLetter.signed_pdf.is_not(None),
            JointLetter.sealed_at.is_(None),
        )
    ).scalars():
        try:
            with db.session.begin_nested():
                sealed += seal_letter(_lock_letter(letter), actor=None)
        except DomainError as error:
            log.warning("letter %s not sealed: %s", letter.id, error)
    return sealed


def ensure_letters_of_open_rounds() -> int:
    """Lay out the letter of every open signing round that has none yet (a round opened
    before letters were laid out at opening, or whose letter could not be laid out then):
    run by `flask rounds tick`. Returns how many were laid out."""
    laid_out = 0
    for round_ in db.session.execute(
        select(Round).where(Round.type == RoundType.SIGNING, Round.state == RoundState.OPEN)
    ).scalars():
        if letter_of(round_) is None:
            _on_round_opened(round_, None)
            laid_out += letter_of(round_) is not None
    return laid_out


def record_failed_reauthentication(
    round_: Round, organisation: Organisation, *, actor: User, reason: str
) -> None:
    """A platform signature refused at re-authentication (wrong password or code, or
    another rule): a security event in the audit trail, in its own transaction (the
    refused signature's was rolled back)."""
    audit.record(
        "cosignature.reauthentication_failed",
        actor=db.session.get(User, actor.id),
        object_type="round",
        object_id=round_.id,
        organisation_id=organisation.id,
        result="failure",
        payload={"reason": reason},
    )


def register() -> None:
    """Hook into processes (status table, round closing). Called once by
    consensus.hooks.register (create_app); idempotent."""
    processes.STATUS_PROVIDERS[RoundType.SIGNING] = _signing_status
    if _on_round_closed not in processes.ROUND_CLOSED_HOOKS:
        processes.ROUND_CLOSED_HOOKS.append(_on_round_closed)
    if _on_round_opened not in processes.ROUND_OPENED_HOOKS:
        processes.ROUND_OPENED_HOOKS.append(_on_round_opened)
