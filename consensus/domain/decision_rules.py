"""Decision rules: how the stances of organisations become an outcome.

Pure functions over plain values (no database, no Flask), so the rules can be read,
tested and re-implemented outside the platform (see tools/retally.py and
docs/endorsements.md). Every rule counts *organisations*, never people: the input is at
most one counted stance per participating organisation, and an organisation without a
counted stance is a non-responder, which never counts as endorsing.

Counts
    participants  organisations taking part (the denominator of every share)
    endorsed      endorse + endorse with reservations
    abstained, objected
    no_response   participants without a counted stance
    responded     endorsed + abstained + objected

The rules (quorum q, share s in percent, n participants)
    consensus           no objection, no non-responder (everyone endorsed or abstained),
                        and endorsed >= max(q, 1): a text nobody endorsed is not adopted,
                        even when everyone abstained.
    consent             no objection and responded >= q. With q = 0 silence is consent.
    unanimity           endorsed == n (the quorum is implied: everyone).
    qualified_majority  endorsed * 100 >= s * n (integer arithmetic, no rounding) and
                        responded >= q. Objections do not block by themselves.
    With no participants nothing is adopted.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class Rule(enum.StrEnum):
    CONSENSUS = "consensus"
    CONSENT = "consent"
    UNANIMITY = "unanimity"
    QUALIFIED_MAJORITY = "qualified_majority"


class Kind(enum.StrEnum):
    """The four stances (the same values as models.StanceKind)."""

    ENDORSE = "endorse"
    ENDORSE_WITH_RESERVATIONS = "endorse_with_reservations"
    ABSTAIN = "abstain"
    OBJECT = "object"


class Reason(enum.StrEnum):
    """Why a rule is not met (empty when adopted). Order is the order of explanation."""

    NO_PARTICIPANTS = "no_participants"
    OBJECTION = "objection"
    NOT_ALL_RESPONDED = "not_all_responded"
    NOT_ALL_ENDORSED = "not_all_endorsed"
    ENDORSEMENT_QUORUM_NOT_MET = "endorsement_quorum_not_met"
    RESPONSE_QUORUM_NOT_MET = "response_quorum_not_met"
    SHARE_NOT_MET = "share_not_met"


@dataclass(frozen=True)
class RuleSettings:
    rule: Rule
    quorum: int = 0
    share_percent: int | None = None

    def __post_init__(self) -> None:
        if self.quorum < 0:
            raise ValueError("quorum must not be negative")
        if self.rule == Rule.QUALIFIED_MAJORITY and not (
            self.share_percent is not None and 0 < self.share_percent <= 100
        ):
            raise ValueError("a qualified majority needs a share between 1 and 100")


@dataclass(frozen=True)
class Tally:
    participants: int
    endorsed: int
    with_reservations: int
    abstained: int
    objected: int
    no_response: int

    @property
    def responded(self) -> int:
        return self.endorsed + self.abstained + self.objected


@dataclass(frozen=True)
class Result:
    adopted: bool
    tally: Tally
    reasons: tuple[Reason, ...]


def tally(participants: Iterable[object], stances: Mapping[object, Kind | str]) -> Tally:
    """Count organisations. `stances` maps an organisation key to its counted stance;
    keys that are not participants are ignored (an outsider has no voice)."""
    members = set(participants)
    kinds = [Kind(kind) for key, kind in stances.items() if key in members]
    endorsed = sum(k in (Kind.ENDORSE, Kind.ENDORSE_WITH_RESERVATIONS) for k in kinds)
    return Tally(
        participants=len(members),
        endorsed=endorsed,
        with_reservations=sum(k == Kind.ENDORSE_WITH_RESERVATIONS for k in kinds),
        abstained=sum(k == Kind.ABSTAIN for k in kinds),
        objected=sum(k == Kind.OBJECT for k in kinds),
        no_response=len(members) - len(kinds),
    )


def decide(settings: RuleSettings, counts: Tally) -> Result:
    """Apply one rule to a tally. Returns every reason the rule is not met."""
    reasons: list[Reason] = []
    n, q = counts.participants, settings.quorum
    if n == 0:
        return Result(False, counts, (Reason.NO_PARTICIPANTS,))
    if settings.rule == Rule.CONSENSUS:
        if counts.objected:
            reasons.append(Reason.OBJECTION)
        if counts.no_response:
            reasons.append(Reason.NOT_ALL_RESPONDED)
        if counts.endorsed < max(q, 1):
            reasons.append(Reason.ENDORSEMENT_QUORUM_NOT_MET)
    elif settings.rule == Rule.CONSENT:
        if counts.objected:
            reasons.append(Reason.OBJECTION)
        if counts.responded < q:
            reasons.append(Reason.RESPONSE_QUORUM_NOT_MET)
    elif settings.rule == Rule.UNANIMITY:
        if counts.endorsed < n:
            reasons.append(Reason.NOT_ALL_ENDORSED)
    elif settings.rule == Rule.QUALIFIED_MAJORITY:
        share = settings.share_percent or 100
        if counts.endorsed * 100 < share * n:
            reasons.append(Reason.SHARE_NOT_MET)
        if counts.responded < q:
            reasons.append(Reason.RESPONSE_QUORUM_NOT_MET)
    else:  # pragma: no cover - Rule is closed
        raise ValueError(settings.rule)
    return Result(not reasons, counts, tuple(reasons))


def evaluate(
    settings: RuleSettings, participants: Iterable[object], stances: Mapping[object, Kind | str]
) -> Result:
    """Tally and decide in one call."""
    return decide(settings, tally(participants, stances))


def minimum_endorsements(settings: RuleSettings, participants: int) -> int:
    """How many endorsing organisations the rule needs at least (for "still needed")."""
    if settings.rule == Rule.CONSENSUS:
        return max(settings.quorum, 1)
    if settings.rule == Rule.UNANIMITY:
        return participants
    if settings.rule == Rule.QUALIFIED_MAJORITY:
        share = settings.share_percent or 100
        return -(-share * participants // 100)  # ceiling without floats
    return 0
