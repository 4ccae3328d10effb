"""Passkeys (WebAuthn): several per account; a second factor after the password (or the
organisation's login), a login without a password, and the re-authentication before a
platform-held signature. Yubico's `fido2` checks the ceremonies (challenge, origin, RP ID
hash, user presence and verification, signature); we keep the credentials, their names,
their use and their signature counters.

Every ceremony requires user verification (a PIN or biometric on the device), so a passkey
is two factors by itself: something one has and something one knows or is.

Use cases flush, never commit; additions, removals and uses are audit events."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from consensus import audit, events
from consensus.domain.visible import visible_line
from consensus.extensions import db
from consensus.models import Passkey, User, utcnow
from consensus.services import accounts
from consensus.services.errors import DomainError, Forbidden

if TYPE_CHECKING:
    from fido2.server import Fido2Server
    from fido2.webauthn import PublicKeyCredentialDescriptor

# fido2 (and the parts of cryptography it brings) is imported where a ceremony happens, not
# when a web worker starts: most requests never touch a passkey (worker memory, issue 23).

MAX_PASSKEYS = 20
RP_NAME = "Consensus"


def _origin() -> str:
    """This site's origin, as the browser names it (CONSENSUS_BASE_URL makes every request
    look addressed to the base URL, so a forged Host cannot change it)."""
    parts = urlsplit(request.host_url)
    return f"{parts.scheme}://{parts.netloc}"


def _server() -> Fido2Server:
    from fido2.server import Fido2Server
    from fido2.webauthn import PublicKeyCredentialRpEntity

    rp_id = current_app.config.get("WEBAUTHN_RP_ID") or urlsplit(request.host_url).hostname
    origin = _origin()
    return Fido2Server(
        PublicKeyCredentialRpEntity(id=rp_id, name=RP_NAME),
        verify_origin=lambda offered: hmac.compare_digest(offered, origin),
    )


def _user_handle(user: User) -> bytes:
    """An opaque, stable handle for the authenticator (WebAuthn: no personal data)."""
    key = (current_app.secret_key or "").encode()
    return hmac.new(key, f"consensus-user:{user.id}".encode(), hashlib.sha256).digest()


def passkeys_of(user: User) -> list[Passkey]:
    return list(
        db.session.scalars(
            select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.created_at)
        )
    )


def has_passkeys(user: User) -> bool:
    return bool(
        db.session.scalar(
            select(func.count()).select_from(Passkey).where(Passkey.user_id == user.id)
        )
    )


def _descriptors(passkeys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    from fido2.webauthn import PublicKeyCredentialDescriptor, PublicKeyCredentialType

    return [
        PublicKeyCredentialDescriptor(type=PublicKeyCredentialType.PUBLIC_KEY, id=p.credential_id)
        for p in passkeys
    ]


def registration_options(user: User) -> tuple[dict[str, Any], dict[str, Any]]:
    """Options for the browser's navigator.credentials.create(), and the state to keep in
    the session (the challenge). A discoverable credential, so it can log in alone."""
    from fido2.webauthn import (
        PublicKeyCredentialUserEntity,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    options, state = _server().register_begin(
        PublicKeyCredentialUserEntity(
            id=_user_handle(user), name=user.email, display_name=user.display_name
        ),
        credentials=_descriptors(passkeys_of(user)),
        resident_key_requirement=ResidentKeyRequirement.REQUIRED,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return dict(options), dict(state)


def add_passkey(
    user: User, state: Mapping[str, Any] | None, response: Mapping[str, Any], name: str
) -> Passkey:
    """Register the browser's new credential under a name of the person's choosing."""
    name = visible_line(name.strip(), field="name")[:80]
    if not name:
        raise DomainError(str(_l("Enter a name, such as “work laptop”.")), field="name")
    if len(passkeys_of(user)) >= MAX_PASSKEYS:
        raise DomainError(str(_l("You have the maximum number of passkeys.")))
    if state is None:
        raise DomainError(str(_l("The passkey could not be checked. Try again.")))
    try:
        auth_data = _server().register_complete(dict(state), dict(response))
    except (ValueError, KeyError, TypeError):
        raise DomainError(str(_l("The passkey could not be checked. Try again."))) from None
    credential = auth_data.credential_data
    if credential is None:
        raise DomainError(str(_l("The passkey could not be checked. Try again.")))
    if db.session.scalar(
        select(Passkey.id).where(Passkey.credential_id == credential.credential_id)
    ):
        raise DomainError(str(_l("This passkey has already been added.")))
    transports = response.get("response", {}).get("transports") or []
    passkey = Passkey(
        user_id=user.id,
        credential_id=credential.credential_id,
        public_key=bytes(credential),
        sign_count=auth_data.counter,
        name=name,
        transports=" ".join(str(t) for t in transports if isinstance(t, str))[:200],
    )
    db.session.add(passkey)
    db.session.flush()
    audit.record(
        "user.passkey_added",
        actor=user,
        object_type="user",
        object_id=user.id,
        payload={"passkey": passkey.id, "name": name},
    )
    events.record(accounts.security_changed(user, "passkey_added"))
    return passkey


def rename_passkey(user: User, passkey: Passkey, name: str) -> None:
    if passkey.user_id != user.id:
        raise Forbidden(str(_l("This is not your passkey.")))
    name = visible_line(name.strip(), field="name")[:80]
    if not name:
        raise DomainError(str(_l("Enter a name, such as “work laptop”.")), field="name")
    passkey.name = name
    db.session.flush()
    audit.record(
        "user.passkey_renamed",
        actor=user,
        object_type="user",
        object_id=user.id,
        payload={"passkey": passkey.id, "name": name},
    )


def remove_passkey(user: User, passkey: Passkey) -> None:
    if passkey.user_id != user.id:
        raise Forbidden(str(_l("This is not your passkey.")))
    audit.record(
        "user.passkey_removed",
        actor=user,
        object_type="user",
        object_id=user.id,
        payload={"passkey": passkey.id, "name": passkey.name},
    )
    db.session.delete(passkey)
    events.record(accounts.security_changed(user, "passkey_removed"))
    db.session.flush()


def remove_all_passkeys(user: User, *, actor: User) -> int:
    """An administrator's reset for someone who lost their devices: every passkey goes."""
    removed = passkeys_of(user)
    for passkey in removed:
        db.session.delete(passkey)
    if removed:
        audit.record(
            "user.passkeys_reset",
            actor=actor,
            object_type="user",
            object_id=user.id,
            payload={"passkeys": [p.name for p in removed]},
        )
        events.record(accounts.security_changed(user, "passkey_removed"))
    db.session.flush()
    return len(removed)


def authentication_options(user: User | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Options for navigator.credentials.get(): for this person's passkeys (second factor,
    signing), or for any discoverable one (a login without a password: `user` None)."""
    from fido2.webauthn import UserVerificationRequirement

    credentials = _descriptors(passkeys_of(user)) if user is not None else None
    options, state = _server().authenticate_begin(
        credentials=credentials, user_verification=UserVerificationRequirement.REQUIRED
    )
    return dict(options), dict(state)


def verify_passkey(
    state: Mapping[str, Any] | None, response: Mapping[str, Any], *, user: User | None
) -> Passkey:
    """The passkey that answered the challenge (of `user`, when given), after the library's
    checks and ours: a known credential of an active account, and a signature counter that
    moved on (a counter that did not is a cloned authenticator). Records its use."""
    from fido2.utils import websafe_decode
    from fido2.webauthn import AttestedCredentialData, AuthenticationResponse

    refused = Forbidden(str(_l("The passkey was not accepted.")))
    if state is None:
        raise refused
    try:
        raw_id = websafe_decode(str(response["rawId"]))
    except (KeyError, ValueError, TypeError):
        raise refused from None
    passkey = db.session.scalar(select(Passkey).where(Passkey.credential_id == raw_id))
    if passkey is None or (user is not None and passkey.user_id != user.id):
        raise refused
    owner = db.session.get(User, passkey.user_id)
    if owner is None or not owner.active:
        raise refused
    try:
        _server().authenticate_complete(
            dict(state), [AttestedCredentialData(passkey.public_key)], dict(response)
        )
        counter = AuthenticationResponse.from_dict(
            dict(response)
        ).response.authenticator_data.counter
    except (ValueError, KeyError, TypeError):
        raise refused from None
    if (counter or passkey.sign_count) and counter <= passkey.sign_count:
        audit.record(
            "user.passkey_refused",
            actor=None,
            object_type="user",
            object_id=owner.id,
            result="failure",
            payload={"passkey": passkey.id, "reason": "counter_did_not_increase"},
        )
        raise refused
    passkey.sign_count = counter
    passkey.last_used_at = utcnow()
    db.session.flush()
    return passkey


def record_refusal(reason: str) -> None:
    """A passkey answer that was not accepted (audited as a failed login step)."""
    audit.record(
        "user.passkey_refused",
        actor=None,
        object_type="user",
        object_id="-",
        result="failure",
        payload={"reason": reason[:80]},
    )


def sign_after_passkey(
    process: Any,
    round_: Any,
    organisation: Any,
    *,
    actor: User,
    state: Mapping[str, Any] | None,
    response: Mapping[str, Any],
) -> Any:
    """Co-sign with the organisation's platform-held key, re-authenticated by one of the
    signer's own passkeys (with user verification) in this same transaction."""
    from consensus import signing

    verify_passkey(state, response, user=actor)
    return signing.sign_with_platform_key(
        process,
        round_,
        organisation,
        actor=actor,
        # No password (positional ""): the passkey verified above is the re-authentication.
        proof=signing.ReAuthentication("", passkey_user_id=actor.id),
    )
