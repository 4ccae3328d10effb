"""All models, imported here so Alembic and the app see one metadata."""

from consensus.models.accounts import Membership, MembershipRole, RecoveryCode, User
from consensus.models.audit import AuditEvent, AuditLogHead, Checkpoint, MerkleNode, PlatformKey
from consensus.models.base import Base, utcnow
from consensus.models.organisations import Organisation, OrganisationKind
from consensus.models.positions import (
    Amendment,
    AmendmentState,
    Comment,
    CommentRevision,
    Position,
    Version,
    VersionParagraph,
)
from consensus.models.processes import (
    DeadlineExtension,
    DecisionRule,
    Notice,
    Participation,
    Process,
    ProcessFacilitator,
    ProcessState,
    ProcessTheme,
    Round,
    RoundCompletion,
    RoundState,
    RoundType,
    Visibility,
)

__all__ = [
    "Amendment",
    "AmendmentState",
    "Comment",
    "CommentRevision",
    "Position",
    "Version",
    "VersionParagraph",
    "DeadlineExtension",
    "DecisionRule",
    "Notice",
    "Participation",
    "Process",
    "ProcessFacilitator",
    "ProcessState",
    "ProcessTheme",
    "Round",
    "RoundCompletion",
    "RoundState",
    "RoundType",
    "Visibility",
    "AuditEvent",
    "AuditLogHead",
    "Base",
    "Checkpoint",
    "Membership",
    "MembershipRole",
    "MerkleNode",
    "Organisation",
    "OrganisationKind",
    "PlatformKey",
    "RecoveryCode",
    "User",
    "utcnow",
]
