"""The disposition report (positions.disposition): its body is the same for every viewer
who may see it.

The body lists every amendment and comment of a round per organisation with its decision,
reason and the organisations' feedback (361 KB and 13 statements at scale 1, the slowest
page of the benchmark while it was rendered per request, issue 23). Everything in it is
data that changes only through audited use cases (a new head); who may see it (a
facilitator while the organisations give feedback, everyone with access afterwards) is
decided by the view before the part is asked for, and the viewer's own links and forms
stay outside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.web.pages import CachedPart, declare_key


@declare_key
@dataclass(frozen=True)
class DispositionKey:
    round_id: int


BODY = CachedPart("disposition-body", "positions/_disposition_body.html", DispositionKey)
