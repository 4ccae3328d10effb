"""The decision rules: explicit cases for every rule, and the invariants as properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.domain.decision_rules import (
    Kind,
    Reason,
    Rule,
    RuleSettings,
    decide,
    evaluate,
    minimum_endorsements,
    tally,
)

E, R, A, OB = Kind.ENDORSE, Kind.ENDORSE_WITH_RESERVATIONS, Kind.ABSTAIN, Kind.OBJECT
ORGS = ["vng", "ipo", "uvw", "bzk"]


def run(rule: Rule, stances: dict[str, Kind], quorum: int = 0, share: int | None = None):
    return evaluate(RuleSettings(rule, quorum, share), ORGS, stances)


# --- Explicit cases -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stances", "quorum", "adopted", "reasons"),
    [
        ({"vng": E, "ipo": R, "uvw": A, "bzk": E}, 0, True, ()),
        ({"vng": E, "ipo": E, "uvw": E, "bzk": OB}, 0, False, (Reason.OBJECTION,)),
        ({"vng": E, "ipo": E, "uvw": E}, 0, False, (Reason.NOT_ALL_RESPONDED,)),
        ({"vng": A, "ipo": A, "uvw": A, "bzk": A}, 0, False, (Reason.ENDORSEMENT_QUORUM_NOT_MET,)),
        ({"vng": E, "ipo": A, "uvw": A, "bzk": A}, 2, False, (Reason.ENDORSEMENT_QUORUM_NOT_MET,)),
        ({"vng": E, "ipo": E, "uvw": A, "bzk": A}, 2, True, ()),
    ],
)
def test_consensus(stances, quorum, adopted, reasons):
    result = run(Rule.CONSENSUS, stances, quorum)
    assert result.adopted is adopted
    assert result.reasons == reasons


@pytest.mark.parametrize(
    ("stances", "quorum", "adopted"),
    [
        ({}, 0, True),  # silence is consent without a quorum
        ({}, 1, False),
        ({"vng": A, "ipo": A}, 2, True),
        ({"vng": E, "ipo": OB}, 0, False),
        ({"vng": E}, 2, False),
    ],
)
def test_consent(stances, quorum, adopted):
    assert run(Rule.CONSENT, stances, quorum).adopted is adopted


@pytest.mark.parametrize(
    ("stances", "adopted"),
    [
        ({"vng": E, "ipo": R, "uvw": E, "bzk": E}, True),
        ({"vng": E, "ipo": E, "uvw": E, "bzk": A}, False),
        ({"vng": E, "ipo": E, "uvw": E}, False),
    ],
)
def test_unanimity(stances, adopted):
    result = run(Rule.UNANIMITY, stances, quorum=0)
    assert result.adopted is adopted
    assert result.reasons == (() if adopted else (Reason.NOT_ALL_ENDORSED,))


@pytest.mark.parametrize(
    ("stances", "share", "quorum", "adopted"),
    [
        ({"vng": E, "ipo": E, "uvw": E, "bzk": OB}, 75, 0, True),  # objections do not block
        ({"vng": E, "ipo": E, "uvw": OB, "bzk": OB}, 75, 0, False),
        ({"vng": E, "ipo": E}, 50, 0, True),  # exactly the share
        ({"vng": E, "ipo": E}, 51, 0, False),
        ({"vng": E, "ipo": E}, 50, 3, False),  # the quorum of responses
        ({"vng": E, "ipo": E, "uvw": A}, 50, 3, True),
    ],
)
def test_qualified_majority(stances, share, quorum, adopted):
    assert run(Rule.QUALIFIED_MAJORITY, stances, quorum, share).adopted is adopted


def test_no_participants_adopts_nothing():
    for rule in Rule:
        result = evaluate(RuleSettings(rule, 0, 50), [], {})
        assert not result.adopted and result.reasons == (Reason.NO_PARTICIPANTS,)


def test_outsiders_have_no_voice():
    result = evaluate(RuleSettings(Rule.UNANIMITY), ["vng"], {"vng": E, "stranger": OB})
    assert result.adopted and result.tally.objected == 0


def test_settings_are_checked():
    with pytest.raises(ValueError):
        RuleSettings(Rule.QUALIFIED_MAJORITY, 0, None)
    with pytest.raises(ValueError):
        RuleSettings(Rule.CONSENSUS, -1)


def test_minimum_endorsements():
    assert minimum_endorsements(RuleSettings(Rule.CONSENSUS, 0), 4) == 1
    assert minimum_endorsements(RuleSettings(Rule.UNANIMITY), 4) == 4
    assert minimum_endorsements(RuleSettings(Rule.QUALIFIED_MAJORITY, 0, 67), 4) == 3
    assert minimum_endorsements(RuleSettings(Rule.CONSENT), 4) == 0


# --- Properties ---------------------------------------------------------------------------

kinds = st.sampled_from(list(Kind))
settings = st.builds(
    RuleSettings,
    rule=st.sampled_from(list(Rule)),
    quorum=st.integers(0, 8),
    share_percent=st.integers(1, 100),
)
worlds = st.lists(st.text(min_size=1, max_size=6), min_size=0, max_size=8, unique=True).flatmap(
    lambda orgs: st.tuples(
        st.just(orgs),
        st.dictionaries(st.sampled_from(orgs), kinds) if orgs else st.just({}),
    )
)


@given(settings, worlds, st.randoms())
def test_renaming_and_reordering_organisations_never_changes_an_outcome(rules, world, rnd):
    orgs, stances = world
    before = evaluate(rules, orgs, stances)
    renamed = {org: f"renamed-{rnd.random()}-{i}" for i, org in enumerate(orgs)}
    shuffled = [renamed[o] for o in orgs]
    rnd.shuffle(shuffled)
    items = list(stances.items())
    rnd.shuffle(items)
    after = evaluate(rules, shuffled, {renamed[o]: k for o, k in items})
    assert (after.adopted, after.tally, after.reasons) == (
        before.adopted,
        before.tally,
        before.reasons,
    )


@given(settings, worlds, st.dictionaries(st.text(max_size=4), st.integers(1, 50)))
def test_adding_people_to_an_organisation_never_changes_an_outcome(rules, world, extra):
    """People are not an input at all: an organisation with fifty members still has one
    stance. Model it as many people of one organisation all saying the same (the last
    stance counts), which must tally exactly like one voice."""
    orgs, stances = world
    before = evaluate(rules, orgs, stances)
    people_casts: list[tuple[str, Kind]] = []
    for org, kind in stances.items():
        people_casts.extend([(org, kind)] * (1 + sum(extra.values()) % 7))
    last: dict[str, Kind] = {}
    for org, kind in people_casts:
        last[org] = kind
    after = evaluate(rules, orgs, last)
    assert after == before


@given(settings, worlds)
def test_counts_add_up_and_adopted_means_no_reasons(rules, world):
    orgs, stances = world
    result = evaluate(rules, orgs, stances)
    t = result.tally
    assert t.endorsed + t.abstained + t.objected + t.no_response == t.participants == len(orgs)
    assert result.adopted == (result.reasons == ())


@given(settings, worlds, st.sampled_from(["x1", "x2"]))
def test_a_non_responder_never_helps(rules, world, _):
    """Turning a non-responder into an endorser never turns adopted into not adopted."""
    orgs, stances = world
    silent = [o for o in orgs if o not in stances]
    if not silent:
        return
    before = evaluate(rules, orgs, stances)
    after = evaluate(rules, orgs, {**stances, silent[0]: Kind.ENDORSE})
    assert not (before.adopted and not after.adopted)


@given(settings, worlds)
def test_an_objection_blocks_consensus_and_consent(rules, world):
    orgs, stances = world
    if not orgs:
        return
    result = evaluate(rules, orgs, {**stances, orgs[0]: Kind.OBJECT})
    if rules.rule in (Rule.CONSENSUS, Rule.CONSENT):
        assert not result.adopted


@given(settings, worlds)
def test_decide_uses_only_the_tally(rules, world):
    orgs, stances = world
    assert evaluate(rules, orgs, stances) == decide(rules, tally(orgs, stances))
