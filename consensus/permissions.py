"""Who may do what. Every view asks here; nothing else decides.

Predicates are named can_* and take the acting user first. `require()` turns a refusal
into a 403 so a view never forgets to stop.
"""

from __future__ import annotations

from datetime import datetime

from flask import abort
from flask_login import AnonymousUserMixin

from consensus.models import Membership, MembershipRole, Organisation, User, utcnow

AnyUser = User | AnonymousUserMixin


def require(allowed: bool) -> None:
    """Stop the request with 403 unless the predicate allowed it."""
    if not allowed:
        abort(403)


def _is_user(user: AnyUser | None) -> bool:
    return isinstance(user, User) and user.is_authenticated and user.active


def can_administer(user: AnyUser | None) -> bool:
    """Only platform administrators manage organisations, people and memberships."""
    return _is_user(user) and bool(user.is_admin)  # type: ignore[union-attr]


def valid_memberships(user: AnyUser | None, at: datetime | None = None) -> list[Membership]:
    """The memberships that count at a moment (default: now)."""
    if not _is_user(user):
        return []
    moment = at or utcnow()
    return [m for m in user.memberships if m.is_valid_at(moment)]  # type: ignore[union-attr]


def membership_in(
    user: AnyUser | None, organisation: Organisation, at: datetime | None = None
) -> Membership | None:
    for membership in valid_memberships(user, at):
        if membership.organisation_id == organisation.id:
            return membership
    return None


def holds_mandate(
    user: AnyUser | None, organisation: Organisation, at: datetime | None = None
) -> bool:
    """A representative membership valid at the moment of acting holds the mandate."""
    membership = membership_in(user, organisation, at)
    return membership is not None and membership.role == MembershipRole.REPRESENTATIVE


def can_view_organisation(user: AnyUser | None, organisation: Organisation) -> bool:
    """Members see their own organisation; administrators see every organisation."""
    return can_administer(user) or membership_in(user, organisation) is not None
