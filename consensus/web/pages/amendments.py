"""The amendments list of a position (positions.amendments): the tabs, the table and the
facilitator's buttons, kept per state filter and per "may manage" (issue 23: the list
numbered every version's lines and loaded every version's paragraphs on each view)."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.web.pages import CachedPart, declare_key


@declare_key
@dataclass(frozen=True)
class AmendmentsKey:
    """The position, the state shown ("" for all) and whether the viewer may consolidate
    and apply (the buttons); every amendment change is audited (a new head)."""

    position_id: int
    state: str
    can_manage: bool


BODY = CachedPart("amendments-list", "positions/_amendments_body.html", AmendmentsKey)
