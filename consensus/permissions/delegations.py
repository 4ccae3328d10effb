"""Rules about lending the mandate: who may delegate it and who may take a delegation
back. Whether a delegation gives the mandate is core.mandate_for / acting.who_can_act."""

from __future__ import annotations

from datetime import datetime

from consensus.models import Delegation, MembershipRole, Organisation, User
from consensus.permissions.core import AnyUser, mandate_for, valid_memberships


def represented_organisations(
    user: AnyUser | None, at: datetime | None = None
) -> list[Organisation]:
    """Organisations this person represents in their own right (a valid representative
    membership, not a delegation)."""
    return [
        m.organisation
        for m in valid_memberships(user, at)
        if m.role == MembershipRole.REPRESENTATIVE
    ]


def may_delegate(
    user: AnyUser | None, organisation: Organisation, at: datetime | None = None
) -> bool:
    """Only a representative in their own right lends the mandate: no chains of
    substitutes (a substitute cannot pass the mandate on)."""
    mandate = mandate_for(user, organisation, at)
    return mandate is not None and not mandate.is_substitute


def can_revoke(user: AnyUser | None, delegation: Delegation) -> bool:
    """The delegator, the substitute (declining), or any representative of the organisation
    in their own right may take a delegation back while it stands."""
    if delegation.revoked_at is not None or not isinstance(user, User):
        return False
    if user.id in {delegation.delegator_id, delegation.delegate_id}:
        return True
    return may_delegate(user, delegation.organisation)
