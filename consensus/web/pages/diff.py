"""The comparison of two versions (positions.diff): the same for every viewer."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.web.pages import CachedPart, declare_key


@declare_key
@dataclass(frozen=True)
class DiffKey:
    """Versions never change; the position's title may (an audited change: a new head)."""

    old_version_id: int
    new_version_id: int
    view: str  # "inline" or "side"


BODY = CachedPart("version-diff", "positions/_diff_body.html", DiffKey)
