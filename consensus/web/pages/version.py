"""The version page (positions.version) and the position outline every version and diff
page starts from: a head the same for everyone, the threads (the longest part of any page,
kept as bytes) per what the viewer may do in them, and an aside per whether they manage the
process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Self

from sqlalchemy import bindparam, select

from consensus.extensions import db
from consensus.models import Comment, User
from consensus.web.pages import CachedPart, CachedValue, declare_key

if TYPE_CHECKING:
    from consensus.web.positions import PositionOutline


@declare_key
@dataclass(frozen=True)
class OutlineKey:
    process_id: int
    position_id: int


@declare_key
@dataclass(frozen=True)
class OwnCommentsKey:
    version_id: int
    author_id: int


@declare_key
@dataclass(frozen=True)
class VersionKey:
    """Data only: the same for every viewer."""

    version_id: int


@declare_key
@dataclass(frozen=True)
class CommentViewer:
    """What a thread shows differently per viewer, besides its forms: Edit buttons on their
    own comments while the edit window lasts, Remove buttons on their own comments and, for
    facilitators, on everyone's.

    `editable` None: decide by the edit window per comment (the htmx responses, not cached);
    the cached page passes the ids editable now (the window is applied to the current time on
    every request). `user_id` None: the viewer wrote none of these comments.
    """

    user_id: int | None
    moderates: bool
    editable: frozenset[int] | None = None
    edit_until: datetime | None = None  # comments created since then are editable

    @classmethod
    def of(cls, user: object, *, moderates: bool, now: datetime, edit_window: timedelta) -> Self:
        """For a response rendered per request (not cached)."""
        user_id = user.id if isinstance(user, User) else None
        return cls(user_id, moderates, None, now - edit_window)

    def may_edit(self, comment: Comment) -> bool:
        if self.user_id is None or comment.is_deleted or comment.author_id != self.user_id:
            return False
        if self.editable is not None:
            return comment.id in self.editable
        return self.edit_until is not None and comment.created_at >= self.edit_until

    def may_remove(self, comment: Comment) -> bool:
        if comment.is_deleted:
            return False
        return self.moderates or (self.user_id is not None and comment.author_id == self.user_id)


@declare_key
@dataclass(frozen=True)
class VersionBodyKey:
    """The threads: the viewer's facts that change what they show."""

    version_id: int
    can_start: bool  # may open new threads
    can_propose: bool  # may propose amendments
    can_comment: bool  # has a comment form (reply links)
    comments: CommentViewer  # their Edit and Remove buttons
    open_anchor: str  # the paragraph opened by the address (?open=)


@declare_key
@dataclass(frozen=True)
class VersionAsideKey:
    version_id: int
    can_manage: bool
    has_pin_form: bool


OUTLINE: CachedValue[OutlineKey] = CachedValue("position-outline", OutlineKey)
OWN_COMMENTS = CachedValue("own-comments", OwnCommentsKey)
BODY = CachedPart("version-body", "positions/_version_body.html", VersionBodyKey)
# The same threads with the text as numbered lines (?lines=1, consensus.domain.lines): its
# own part, so the choice is in the cache's key without another field in VersionBodyKey.
BODY_LINES = CachedPart("version-body-lines", "positions/_version_body.html", VersionBodyKey)
ASIDE = CachedPart("version-aside", "positions/_version_aside.html", VersionAsideKey)
HEAD = CachedPart("version-head", "positions/_version_head.html", VersionKey)


def outline(
    process_id: int, position_id: int, compute: Callable[[], PositionOutline | None]
) -> PositionOutline | None:
    """Kept by the audit head like the parts it goes with (a new version or title is an
    audited change)."""
    return OUTLINE.get(OutlineKey(process_id, position_id), compute=compute)


_OWN_COMMENTS = select(Comment.id, Comment.created_at).where(
    Comment.version_id == bindparam("version_id"),
    Comment.author_id == bindparam("author_id"),
    Comment.deleted_at.is_(None),
)


def comment_viewer(
    user: object, version_id: int, *, moderates: bool, now: datetime, edit_window: timedelta
) -> CommentViewer:
    """The cached page's CommentViewer: the viewer's own comments on this version (kept for
    this state of the data, like the page's parts), the edit window applied now."""
    if not isinstance(user, User):
        return CommentViewer(None, moderates, frozenset())
    author_id = user.id
    own: tuple[tuple[int, datetime], ...] = OWN_COMMENTS.get(
        OwnCommentsKey(version_id, author_id),
        compute=lambda: tuple(
            (comment_id, created_at)
            for comment_id, created_at in db.session.execute(
                _OWN_COMMENTS, {"version_id": version_id, "author_id": author_id}
            )
        ),
    )
    if not own:
        return CommentViewer(None, moderates, frozenset())
    return CommentViewer(
        author_id, moderates, frozenset(i for i, at in own if now - at <= edit_window)
    )
