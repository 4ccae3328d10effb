"""The endorsement round page (endorsements.endorsement), its history page and the tally
htmx polls: a body the same for everyone, an empty stance form per set of organisations
the viewer may speak for, and the tally and history per what the viewer may see."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.web.pages import CachedPart, CachedValue, declare_key
from consensus.web.pages.process import RoundKey  # data only, shared with the process page


@declare_key
@dataclass(frozen=True)
class SightKey:
    """The tally and the history: whether this person sees every stance, and if not, the
    organisations whose own stances they see (their valid memberships)."""

    round_id: int
    sees_all: bool
    own_organisation_ids: frozenset[int] | None


@declare_key
@dataclass(frozen=True)
class HistoryKey:
    sight: SightKey
    everything: bool  # the history page (every stance) or the round page (the latest)


@declare_key
@dataclass(frozen=True)
class StanceFormKey:
    """An empty stance form: the same for everyone who may speak for the same
    organisations (the CSRF token is put in per request)."""

    round_id: int
    organisation_ids: tuple[int, ...]
    is_open: bool
    can_manage: bool


BODY = CachedPart("endorsement-round", "endorsements/_round_body.html", RoundKey)
VERSION_NUMBER = CachedValue("round-version-number", RoundKey)
STANCE_FORM = CachedPart(
    "endorsement-stance-form", "endorsements/_stance_section.html", StanceFormKey
)
TALLY = CachedPart("endorsement-tally", "endorsements/_tally.html", SightKey)
HISTORY = CachedPart("endorsement-history", "endorsements/_history.html", HistoryKey)
