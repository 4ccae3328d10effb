"""Rules about the text: who writes a new version, edits or removes a comment, withdraws an
amendment. Commenting and proposing themselves go through the phase gate (core.gate)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from flask import current_app, has_app_context

from consensus.models import (
    Amendment,
    AmendmentState,
    Comment,
    MembershipRole,
    Organisation,
    Process,
    User,
    utcnow,
)
from consensus.permissions.core import (
    Action,
    AnyUser,
    can_manage_process,
    gate,
    membership_in,
)

DEFAULT_EDIT_MINUTES = 15


def comment_edit_window() -> timedelta:
    """How long an author may still edit a comment (CONSENSUS_COMMENT_EDIT_MINUTES)."""
    minutes: object = None
    if has_app_context():
        minutes = current_app.config.get("COMMENT_EDIT_MINUTES")
    if minutes is None:
        minutes = os.environ.get("CONSENSUS_COMMENT_EDIT_MINUTES", DEFAULT_EDIT_MINUTES)
    return timedelta(minutes=int(minutes))  # type: ignore[call-overload]


def may_write_version(
    user: AnyUser | None, process: Process, organisation: Organisation | None = None
) -> bool:
    """Facilitators write new versions; officials only while a drafting round is open
    (the gate's EDIT_DRAFT)."""
    if can_manage_process(user, process):
        return True
    return organisation is not None and bool(gate(user, Action.EDIT_DRAFT, process, organisation))


def can_edit_comment(user: AnyUser | None, comment: Comment, at: datetime | None = None) -> bool:
    """Authors may correct their comment for a short while; after that it stands (others
    have read and answered it)."""
    moment = at or utcnow()
    return (
        isinstance(user, User)
        and comment.author_id == user.id
        and not comment.is_deleted
        and moment - comment.created_at <= comment_edit_window()
    )


def can_remove_comment(
    user: AnyUser | None, comment: Comment, process: Process, *, manages: bool | None = None
) -> bool:
    """The author, or a facilitator moderating; the removal leaves a tombstone.

    `manages`: can_manage_process(user, process) when the caller already knows it (a
    thread asks once, not once per comment)."""
    if comment.is_deleted or not isinstance(user, User):
        return False
    if comment.author_id == user.id:
        return True
    return can_manage_process(user, process) if manages is None else manages


def may_withdraw(user: AnyUser | None, amendment: Amendment) -> bool:
    """A pending amendment: its proposer, or a colleague who may propose for the same
    organisation (an official or representative there), since it speaks for the
    organisation, not for the person."""
    if amendment.state != AmendmentState.PENDING or not isinstance(user, User):
        return False
    if amendment.author_id == user.id:
        return True
    membership = membership_in(user, amendment.organisation)
    return membership is not None and membership.role in {
        MembershipRole.OFFICIAL,
        MembershipRole.REPRESENTATIVE,
    }
