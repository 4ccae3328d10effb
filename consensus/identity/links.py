"""Organisations' identity providers and the links of their people to our accounts: the use
cases (flush, never commit; every link, login and refusal is an audit event).

Accounts and mandates stay ours: a provider says who someone is, never what they may do.
Memberships, roles and mandates are never read from its claims."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consensus import audit
from consensus.crypto.keystore import KeystoreError, load_kek, seal, unseal
from consensus.extensions import db
from consensus.identity.oidc import Identity, ProviderSettings, issuer_is_acceptable
from consensus.models import (
    ExternalIdentity,
    IdentityProvider,
    LinkStatus,
    Organisation,
    User,
    utcnow,
)
from consensus.services import accounts
from consensus.services.errors import DomainError

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _kek() -> bytes:
    return load_kek(current_app.config["KEY_ENCRYPTION_KEY"], current_app.instance_path)


def _secret_context(organisation_id: int) -> bytes:
    return f"consensus:oidc-client-secret:{organisation_id}".encode()


def settings(provider: IdentityProvider) -> ProviderSettings:
    """The protocol's view of a provider, with its client secret opened."""
    try:
        secret = unseal(
            _kek(), provider.sealed_client_secret, _secret_context(provider.organisation_id)
        ).decode()
    except KeystoreError:
        raise DomainError(
            str(_l("The identity provider's client secret cannot be opened. Enter it again."))
        ) from None
    return ProviderSettings(
        issuer=provider.issuer,
        client_id=provider.client_id,
        client_secret=secret,
        required_acr=provider.required_acr or None,
    )


def parse_domains(text: str) -> list[str]:
    """E-mail domains, separated by spaces, commas or new lines; each must be a domain name."""
    domains = [d.strip().lower().lstrip("@") for d in re.split(r"[\s,;]+", text) if d.strip()]
    for domain in domains:
        if not _DOMAIN.match(domain):
            raise DomainError(
                str(_l("“%(domain)s” is not a domain name such as gemeente.nl.", domain=domain)),
                field="allowed_domains",
            )
    if not domains:
        raise DomainError(
            str(_l("Enter at least one e-mail domain, such as gemeente.nl.")),
            field="allowed_domains",
        )
    return sorted(set(domains))


def configure_provider(
    organisation: Organisation,
    *,
    actor: User | None,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    allowed_domains: str,
    required_acr: str | None,
    sso_required: bool,
    enabled: bool,
) -> IdentityProvider:
    """An administrator (or the operator, `flask identity provider`: no actor) sets the
    organisation's OpenID provider. The client secret is sealed with the key-encryption key;
    left empty, the stored one is kept. Audited without it."""
    issuer = issuer.strip()
    if not issuer_is_acceptable(issuer):
        raise DomainError(
            str(
                _l(
                    "Enter the provider's issuer as an https address (http only on this "
                    "machine, 127.0.0.1 or localhost)."
                )
            ),
            field="issuer",
        )
    domains = parse_domains(allowed_domains)
    taken = db.session.scalars(
        select(IdentityProvider).where(IdentityProvider.organisation_id != organisation.id)
    ).all()
    for other in taken:
        shared = set(other.domains) & set(domains)
        if shared:
            raise DomainError(
                str(
                    _l(
                        "The domain %(domain)s already belongs to %(organisation)s's provider.",
                        domain=sorted(shared)[0],
                        organisation=other.organisation.short_name,
                    )
                ),
                field="allowed_domains",
            )
    provider = db.session.scalar(
        select(IdentityProvider).where(IdentityProvider.organisation_id == organisation.id)
    )
    secret = (client_secret or "").strip()
    if provider is None and not secret:
        raise DomainError(str(_l("Enter the client secret.")), field="client_secret")
    sealed = seal(_kek(), secret.encode(), _secret_context(organisation.id)) if secret else None
    if provider is None:
        provider = IdentityProvider(organisation_id=organisation.id)
        db.session.add(provider)
    if sealed is not None:
        provider.sealed_client_secret = sealed
    provider.issuer = issuer
    provider.client_id = client_id.strip()
    provider.allowed_domains = " ".join(domains)
    provider.required_acr = (required_acr or "").strip() or None
    provider.sso_required = sso_required
    provider.enabled = enabled
    db.session.flush()
    audit.record(
        "identity_provider.configured",
        actor=actor,
        object_type="organisation",
        object_id=organisation.id,
        organisation_id=organisation.id,
        payload={
            "issuer": issuer,
            "client_id": provider.client_id,
            "client_secret_changed": bool(secret),
            "allowed_domains": domains,
            "required_acr": provider.required_acr,
            "sso_required": sso_required,
            "enabled": enabled,
        },
    )
    return provider


def enabled_providers() -> list[IdentityProvider]:
    return list(
        db.session.scalars(
            select(IdentityProvider)
            .join(Organisation, Organisation.id == IdentityProvider.organisation_id)
            .where(IdentityProvider.enabled.is_(True), Organisation.active.is_(True))
            .order_by(Organisation.name)
        )
    )


def provider_by_slug(slug: str) -> IdentityProvider | None:
    return next((p for p in enabled_providers() if p.organisation.slug == slug), None)


def provider_for_email(email: str) -> IdentityProvider | None:
    """The enabled provider whose allowed domains include this address's domain."""
    domain = accounts.normalise_email(email).rpartition("@")[2]
    if not domain:
        return None
    return next((p for p in enabled_providers() if domain in p.domains), None)


def sso_organisation(user: User) -> Organisation | None:
    """The organisation that requires this person to log in through its provider (a valid
    membership of an organisation whose enabled provider requires SSO), or None.
    Platform administrators are exempt: an outage at one organisation's provider must not
    lock out the administration of the platform."""
    if user.is_admin:
        return None
    now = utcnow()
    member_of = {m.organisation_id for m in user.memberships if m.is_valid_at(now)}
    if not member_of:
        return None
    return db.session.scalar(
        select(Organisation)
        .join(IdentityProvider, IdentityProvider.organisation_id == Organisation.id)
        .where(
            Organisation.id.in_(member_of),
            IdentityProvider.enabled.is_(True),
            IdentityProvider.sso_required.is_(True),
        )
        .order_by(Organisation.name)
        .limit(1)
    )


def refuse_password_login(user: User, organisation: Organisation) -> None:
    """A correct password from a member of an SSO-required organisation: refused, audited."""
    audit.record(
        "user.login_refused",
        actor=None,
        object_type="user",
        object_id=user.id,
        organisation_id=organisation.id,
        result="failure",
        payload={"reason": "sso_required", "organisation": organisation.slug},
    )


def record_refusal(provider: IdentityProvider | None, reason: str) -> None:
    """The provider's answer was not accepted (wrong state, forged token, …)."""
    audit.record(
        "identity.login_refused",
        actor=None,
        object_type="identity_provider",
        object_id=provider.id if provider else "-",
        organisation_id=provider.organisation_id if provider else None,
        result="failure",
        payload={"reason": reason[:60]},
    )


@dataclass(frozen=True)
class SignIn:
    """The outcome of an accepted OpenID login: an account to start a session for, or a
    link that waits for an administrator (`user` None, `pending` True), or a refusal."""

    user: User | None
    pending: bool = False
    refused: str | None = None


def sign_in(provider: IdentityProvider, identity: Identity) -> SignIn:
    """Find (or make) the link of this provider's subject to one of our accounts.

    A known link logs its account in. A first login links automatically only to an active
    account with the same e-mail address, when the provider says the address is verified
    and its domain is one the organisation allowed; otherwise the link waits for an
    administrator. The provider's claims never grant a membership, role or mandate."""
    link = db.session.scalar(
        select(ExternalIdentity).where(
            ExternalIdentity.provider_id == provider.id,
            ExternalIdentity.subject == identity.subject,
        )
    )
    if link is not None and link.status == LinkStatus.LINKED and link.user is not None:
        if not link.user.active:
            record_refusal(provider, "account_inactive")
            return SignIn(None, refused="account_inactive")
        link.last_login_at = utcnow()
        link.email = identity.email or link.email
        return SignIn(link.user)
    if link is not None:
        link.email, link.email_verified = identity.email, identity.email_verified
        if link.status == LinkStatus.REJECTED:
            record_refusal(provider, "link_rejected")
            return SignIn(None, refused="link_rejected")
        return SignIn(None, pending=True)
    domain = identity.email.rpartition("@")[2]
    user = accounts.find_user_by_email(identity.email) if identity.email else None
    automatic = (
        identity.email_verified
        and domain in provider.domains
        and user is not None
        and user.active
        and not _linked_elsewhere(provider, user)
    )
    link = ExternalIdentity(
        provider_id=provider.id,
        subject=identity.subject,
        user_id=user.id if automatic and user is not None else None,
        status=LinkStatus.LINKED if automatic else LinkStatus.PENDING,
        email=identity.email,
        email_verified=identity.email_verified,
        name=identity.name,
        last_login_at=utcnow() if automatic else None,
    )
    db.session.add(link)
    db.session.flush()
    payload = {
        "provider": provider.organisation.slug,
        "subject": identity.subject[:255],
        "email": identity.email,
        "email_verified": identity.email_verified,
    }
    if automatic and user is not None:
        audit.record(
            "identity.linked",
            actor=user,
            object_type="user",
            object_id=user.id,
            organisation_id=provider.organisation_id,
            payload={**payload, "how": "verified_email"},
        )
        return SignIn(user)
    audit.record(
        "identity.link_requested",
        actor=None,
        object_type="external_identity",
        object_id=link.id,
        organisation_id=provider.organisation_id,
        payload=payload,
    )
    return SignIn(None, pending=True)


def _linked_elsewhere(provider: IdentityProvider, user: User) -> bool:
    """This account already has another subject at this provider (one person, one link)."""
    return (
        db.session.scalar(
            select(ExternalIdentity.id).where(
                ExternalIdentity.provider_id == provider.id,
                ExternalIdentity.user_id == user.id,
                ExternalIdentity.status == LinkStatus.LINKED,
            )
        )
        is not None
    )


def pending_links() -> list[ExternalIdentity]:
    return list(
        db.session.scalars(
            select(ExternalIdentity)
            .where(ExternalIdentity.status == LinkStatus.PENDING)
            .order_by(ExternalIdentity.created_at)
        )
    )


def approve_link(link: ExternalIdentity, *, actor: User, email: str) -> User:
    """An administrator links a waiting identity to the account with this e-mail address."""
    if link.status != LinkStatus.PENDING:
        raise DomainError(str(_l("This request has already been handled.")))
    user = accounts.find_user_by_email(email)
    if user is None or not user.active:
        raise DomainError(
            str(_l("There is no active account with this e-mail address.")), field="email"
        )
    if _linked_elsewhere(link.provider, user):
        raise DomainError(
            str(_l("This account is already linked to this identity provider.")), field="email"
        )
    link.user_id = user.id
    link.status = LinkStatus.LINKED
    db.session.flush()
    audit.record(
        "identity.linked",
        actor=actor,
        object_type="user",
        object_id=user.id,
        organisation_id=link.provider.organisation_id,
        payload={
            "provider": link.provider.organisation.slug,
            "subject": link.subject,
            "email": link.email,
            "how": "administrator",
        },
    )
    return user


def reject_link(link: ExternalIdentity, *, actor: User) -> None:
    if link.status != LinkStatus.PENDING:
        raise DomainError(str(_l("This request has already been handled.")))
    link.status = LinkStatus.REJECTED
    db.session.flush()
    audit.record(
        "identity.link_rejected",
        actor=actor,
        object_type="external_identity",
        object_id=link.id,
        organisation_id=link.provider.organisation_id,
        payload={"provider": link.provider.organisation.slug, "email": link.email},
    )
