"""Counts agree with their number: 0, 1 and 2 of everything a page counts, in Dutch and in
English ("1 reactie", never "1 reacties"), and no message shows a count without
plural-aware translation."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from consensus.extensions import db
from consensus.models import MembershipRole, RoundType, utcnow
from consensus.services import positions as service
from consensus.services import processes
from tests.endorsement_support import make_world
from tests.factories import make_membership, make_organisation, make_process, make_user
from tests.web.test_positions import build_world, text_of

ROOT = Path(__file__).resolve().parents[2]

# Messages with a number that is not a count of things: an ordinal, an identifier, a
# version or amendment number, a percentage, or a fixed limit of the platform (always more
# than one). Anything else with a number must go through ngettext.
NOT_COUNTS = {
    "%(done)d of %(total)d",  # a ratio in a table cell, no noun
    "%(share)d%% had to endorse",
    "Use at least %(n)d characters.",
    "Use at least %(min)d characters.",
    "Use at most %(n)d characters.",
    "Use at most %(n)d themes.",
    "quorum %(n)d",
    "In signed audit checkpoint #%(id)d",
    "Version %(n)d of %(total)d",  # which version of how many: an ordinal
    "Give whole days between 1 and %(max)d, separated by commas.",  # a fixed limit
    # Labelled figures ("Label: 3"): no noun agrees with the number.
    "Endorsed: %(endorsed)d, with reservations: %(reservations)d, abstained: "
    "%(abstained)d, objected: %(objected)d, no response: %(none)d.",
}
COUNT_NOUNS = (
    "organisations|people|persons|events|amendments|comments|paragraphs|minutes|hours|days"
    "|rounds|stances|checkpoints|versions|signatures|keys|sessions|processes|reservations"
)
ORDINAL_NAMES = {"n", "v", "a", "b", "id", "number", "new", "old", "seq", "line", "column"}


def _words(html: str) -> str:
    return re.sub(r"\s+", " ", text_of(html))


def _get(client, url: str, locale: str) -> str:
    client.post("/language", data={"locale": locale, "next": "/"})
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return _words(response.get_data(as_text=True))


def test_no_message_shows_a_count_without_plural_forms():
    keywords = {"_": None, "gettext": None, "lazy_gettext": None, "_l": None}
    suspicious = []
    for directory, pattern, method in [
        (ROOT / "consensus", "**.py", "python"),
        (ROOT / "templates", "**.html", "jinja2"),
        (ROOT / "templates", "**.txt", "jinja2"),
    ]:
        for filename, _line, message, _c, _ctx in extract_from_dir(
            str(directory), method_map=[(pattern, method)], keywords=keywords
        ):
            if not isinstance(message, str) or message in NOT_COUNTS:
                continue
            names = re.findall(r"%\((\w+)\)d", message)
            # "%(n)d people", "%(n)d events": an ordinal name used for a count.
            plural_noun = re.search(rf"%\(\w+\)[ds] (?:\w+ )?(?:{COUNT_NOUNS})\b", message)
            if plural_noun or any(name not in ORDINAL_NAMES for name in names):
                suspicious.append((filename, message))
    assert not suspicious, suspicious


def _new_version(w, body: str) -> None:
    service.create_version(
        w.position, w.process, actor=w.facilitator, body=body, change_summary="Bijgewerkt."
    )
    db.session.commit()


P = [
    "Gemeenten willen als gelijkwaardige partners meedoen aan de strategie.",
    "Provincies vragen om een gezamenlijke aanpak van digitale vaardigheden.",
    "Waterschappen brengen hun ervaring met basisvoorzieningen graag in.",
    "Het Rijk nodigt alle overheden uit voor een vervolggesprek.",
]


def _body(paragraphs: list[str]) -> str:
    return "\n\n".join(paragraphs) + "\n"


def test_the_diff_summary_counts_paragraphs_in_both_languages(client, login_as, app):
    w = build_world(body=_body(P))
    v2 = [
        P[0],
        P[1].replace("gezamenlijke", "gedeelde"),
        P[2],
        P[3],
        "Wij zien uit naar een vervolg.",
        "Met vriendelijke groet.",
    ]
    _new_version(w, _body(v2))
    v3 = [
        v2[0].replace("strategie", "nationale strategie"),
        v2[1].replace("om", "naar"),
        v2[2],
        v2[4],
        v2[5],
    ]
    _new_version(w, _body(v3))
    login_as(w.person("vng"))
    first = w.url("/diff?from=1&to=2")
    second = w.url("/diff?from=2&to=3")
    same = w.url("/diff?from=1&to=1")
    assert "1 alinea gewijzigd, 2 toegevoegd, 0 geschrapt." in _get(client, first, "nl")
    assert "2 alinea's gewijzigd, 0 toegevoegd, 1 geschrapt." in _get(client, second, "nl")
    assert "1 paragraph changed, 2 added, 0 removed." in _get(client, first, "en")
    assert "2 paragraphs changed, 0 added, 1 removed." in _get(client, second, "en")
    if client.get(same).status_code == 200:
        assert "0 paragraphs changed, 0 added, 0 removed." in _get(client, same, "en")


def test_the_disposition_summary_counts_in_both_languages(client, login_as, app):
    w = build_world()
    url = f"/processes/{w.process.slug}/positions/rounds/{w.process.rounds[0].id}/disposition"
    login_as(w.facilitator)
    expected = {
        "nl": [
            "0 wijzigingsvoorstellen en 0 reacties van 2 organisaties.",
            "1 wijzigingsvoorstel en 1 reactie van 2 organisaties.",
            "2 wijzigingsvoorstellen en 2 reacties van 1 organisatie.",
        ],
        "en": [
            "0 amendments and 0 comments from 2 organisations.",
            "1 amendment and 1 comment from 2 organisations.",
            "2 amendments and 2 comments from 1 organisation.",
        ],
    }
    paragraphs = w.v1.paragraphs
    for count in (0, 1, 2):
        if count:
            service.propose_amendment(
                w.v1,
                w.process,
                actor=w.person("vng"),
                organisation=w.vng,
                paragraph_anchor=paragraphs[count].anchor,
                proposed_text=f"Nieuw {count}.",
                rationale="Beter.",
            )
            service.add_comment(
                w.v1,
                w.process,
                actor=w.person("vng"),
                organisation=w.vng,
                body="Eens.",
                paragraph_anchor=paragraphs[count].anchor,
            )
            if count == 2:
                processes.remove_participant(
                    w.process, actor=w.facilitator, organisation=w.ipo, reason="Trekt zich terug."
                )
            db.session.commit()
        for locale in ("nl", "en"):
            assert expected[locale][count] in _get(client, url, locale), (locale, count)


def test_the_round_status_names_the_round_and_counts_in_both_languages(client, login_as, app):
    facilitator = make_user(is_facilitator=True)
    orgs = [make_organisation(name=f"Organisatie {i}") for i in range(2)]
    officials = []
    for org in orgs:
        officials.append(make_user())
        make_membership(officials[-1], org, MembershipRole.OFFICIAL)
    now = utcnow()
    process = make_process(
        facilitator,
        orgs,
        rounds=[(RoundType.CONSULTATION, now - timedelta(minutes=5), now + timedelta(days=2))],
    )
    processes.tick()
    db.session.commit()
    round_ = process.rounds[0]
    url = f"/processes/{process.slug}/rounds/{round_.id}"
    login_as(facilitator)
    expected = {
        "nl": "In “{t}” {verb} {n} van de 2 organisaties gereageerd.",
        "en": "In “{t}”, {n} of 2 organisations {verb} acted.",
    }
    verbs = {"nl": ("hebben", "heeft", "hebben"), "en": ("have", "has", "have")}
    for count in (0, 1, 2):
        if count:
            login_as(officials[count - 1])
            client.post(url + "/complete", data={"organisation_id": orgs[count - 1].id})
            login_as(facilitator)
        for locale in ("nl", "en"):
            text = expected[locale].format(t=round_.title, n=count, verb=verbs[locale][count])
            assert text in _get(client, url, locale), (locale, count)
            assert text in _get(client, f"/processes/{process.slug}", locale), (locale, count)


@pytest.mark.parametrize("participants", [1, 2])
def test_the_chart_title_counts_participants_in_both_languages(client, login_as, app, participants):
    w = make_world(participants)
    login_as(w.facilitator)
    url = f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"
    nl = _get(client, url, "nl")
    en = _get(client, url, "en")
    if participants == 1:
        assert "Standpunt van de 1 deelnemende organisatie" in nl
        assert "Stance of the 1 participating organisation" in en
    else:
        assert "Standpunten van de 2 deelnemende organisaties" in nl
        assert "Stances of the 2 participating organisations" in en


def test_the_administration_counts_organisations_and_people(client, login_as, app):
    admin = make_user(is_admin=True)
    login_as(admin)
    expected = {
        "nl": ("{n} organisatie", "{n} organisaties", "{n} persoon", "{n} personen"),
        "en": ("{n} organisation", "{n} organisations", "{n} person", "{n} people"),
    }
    for count in (0, 1, 2):
        if count:
            make_organisation()
            make_user()
        people = count + 1  # the administrator is a person too
        for locale, (org1, orgs, person1, persons) in expected.items():
            text = _get(client, "/admin/", locale)
            assert (org1 if count == 1 else orgs).format(n=count) in text, (locale, count)
            assert (person1 if people == 1 else persons).format(n=people) in text


def test_the_stance_history_counts_stances_in_both_languages(client, login_as, app):
    from consensus.models import StanceKind
    from consensus.services import endorsements

    w = make_world(2)
    org = w.orgs[0]
    url = f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement"
    login_as(w.reps[org.id])
    assert "Nog geen standpunten." in _get(client, url, "nl")
    assert "No stances yet." in _get(client, url, "en")
    for count, kind in ((1, StanceKind.ABSTAIN), (2, StanceKind.ENDORSE)):
        endorsements.cast_stance(w.round, actor=w.reps[org.id], organisation=org, kind=kind)
        db.session.commit()
        nl = "1 standpunt in deze ronde" if count == 1 else "2 standpunten in deze ronde"
        en = "1 stance cast in this round" if count == 1 else "2 stances cast in this round"
        assert nl in _get(client, url, "nl")
        assert en in _get(client, url, "en")
