"""Small things new users stumbled on (issue 24): excerpts without Markdown syntax, heading
order, captions, one organisation without a "on behalf of" choice, and the like."""

from __future__ import annotations

import re

from sqlalchemy import select

from consensus.extensions import db
from consensus.formats.markdown import excerpt, plain_text
from consensus.models import Position
from consensus.services import processes
from tests.endorsement_support import make_world


def _published(purpose: str):
    w = make_world(2, purpose=purpose)
    processes.close_round(w.round, actor=w.facilitator)
    processes.schedule_publication(w.process, actor=w.facilitator, at=None)
    db.session.commit()
    return w


def test_the_public_index_shows_the_purpose_as_plain_text(app, client):
    purpose = (
        "# Doel\n\nWij sturen **breed, gelijkwaardig en gezamenlijk** op de _digitale_ "
        "overheid; zie [de strategie](https://example.org/strategie).\n\n- één\n- twee\n"
    )
    _published(purpose)
    page = client.get("/public/").get_data(as_text=True)
    assert (
        # A link's address follows its text, as on every page (docs/signing.md, "What you
        # see is what you sign").
        "Doel Wij sturen breed, gelijkwaardig en gezamenlijk op de digitale overheid; zie de "
        "strategie (https://example.org/strategie). één twee" in page
    )
    item = page[page.index("Wij sturen") - 200 : page.index("Wij sturen") + 300]
    assert not re.search(r"\*\*|_digitale_|\]\(|^#", item)
    assert "<strong>" not in item  # plain text: the excerpt is no place for layout


def test_excerpts_cut_at_a_word():
    text = "Wij sturen **breed** " + "en gezamenlijk " * 30
    short = excerpt(text, 60)
    assert short.endswith("…") and len(short) <= 60 and "**" not in short
    # Character references are shown as typed (docs/signing.md), tags as text.
    assert plain_text("a &amp; b <script>x</script>") == "a &amp; b <script>x</script>"


def _heading_levels(page: str) -> list[int]:
    return [int(level) for level in re.findall(r"<h([1-6])[\s>]", page)]


def _assert_no_skipped_level(levels: list[int]) -> None:
    assert levels and levels[0] == 1, levels
    for before, after in zip(levels, levels[1:], strict=False):
        assert after <= before + 1, levels


def test_the_public_process_page_never_skips_a_heading_level(app, client):
    from consensus.models import StanceKind
    from consensus.services import endorsements, positions
    from tests.endorsement_support import open_now

    w = make_world(2, open_first=False, purpose="# Doel\n\nSamen.\n\n## Waarom\n\nOmdat.\n")
    position = db.session.scalar(select(Position).where(Position.process_id == w.process.id))
    positions.create_version(
        position,
        w.process,
        actor=w.facilitator,
        change_summary="Kopjes.",
        body="# Brief\n\nGeachte minister,\n\n## Eén overheid\n\nTekst.\n\n### Detail\n\nMeer.\n",
    )
    db.session.commit()
    open_now(w.round, w.facilitator)
    for org in w.orgs:
        endorsements.cast_stance(
            w.round,
            actor=w.reps[org.id],
            organisation=org,
            kind=StanceKind.ENDORSE_WITH_RESERVATIONS,
            text="Met voorbehoud.",
        )
    db.session.commit()
    processes.close_round(w.round, actor=w.facilitator)
    db.session.commit()
    endorsements.set_outcome_statement(
        endorsements.outcome_for(w.round),
        actor=w.facilitator,
        statement="# Verklaring\n\nVastgesteld.\n",
        review_on=None,
    )
    processes.schedule_publication(w.process, actor=w.facilitator, at=None)
    db.session.commit()
    page = client.get(f"/public/{w.process.slug}").get_data(as_text=True)
    assert "Eén overheid" in page and "Voorbehouden" in page
    _assert_no_skipped_level(_heading_levels(page))


def test_the_stance_history_table_has_a_caption(app, login_as):
    from consensus.models import StanceKind
    from consensus.services import endorsements

    w = make_world(2)
    org = w.orgs[0]
    endorsements.cast_stance(
        w.round, actor=w.reps[org.id], organisation=org, kind=StanceKind.ENDORSE
    )
    db.session.commit()
    client = login_as(w.reps[org.id])
    for url in (
        f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement",
        f"/processes/{w.process.slug}/rounds/{w.round.id}/endorsement/history",
    ):
        page = client.get(url).get_data(as_text=True)
        history = page[page.index("1 standpunt in deze ronde") :]
        table = history[history.index("<table") : history.index("</table>")]
        assert f"<caption>Standpunten in “{w.round.title}”, oudste eerst</caption>" in table


def test_one_organisation_means_no_on_behalf_of_choice(app, login_as):
    from consensus.models import MembershipRole, RoundType
    from tests.factories import make_membership

    w = make_world(2, round_types=(RoundType.CONSULTATION,))
    round_url = f"/processes/{w.process.slug}/rounds/{w.round.id}"
    select = re.compile(r'<select[^>]*name="organisation_id"')
    official = w.officials[w.orgs[0].id]
    client = login_as(official)
    for url in (round_url, f"/processes/{w.process.slug}"):
        page = client.get(url).get_data(as_text=True)
        assert "Onze inbreng is compleet" in page, url
        assert not select.search(page), url
        assert f"Namens {w.orgs[0].name}." in page, url
    response = client.post(round_url + "/complete", data={"organisation_id": w.orgs[0].id})
    assert response.status_code == 302  # the hidden field carries the one organisation
    rep = w.reps[w.orgs[0].id]
    page = login_as(rep).get("/account/delegations").get_data(as_text=True)
    assert not select.search(page) and f"Namens {w.orgs[0].name}." in page
    # Two organisations: then there is a choice to make.
    make_membership(official, w.orgs[1], MembershipRole.OFFICIAL)
    page = login_as(official).get(round_url).get_data(as_text=True)
    assert select.search(page)


def test_every_count_of_acted_rounds_names_the_round(app, login_as):
    from consensus.models import StanceKind
    from consensus.services import endorsements

    w = make_world(2)
    org = w.orgs[0]
    endorsements.cast_stance(
        w.round, actor=w.reps[org.id], organisation=org, kind=StanceKind.ENDORSE
    )
    db.session.commit()
    client = login_as(w.reps[org.id])
    dashboard = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", client.get("/").get_data(as_text=True)))
    assert f"Al gedaan, in rondes die nog open zijn: {w.round.title} — {w.process.title}" in (
        dashboard
    )
    assert "open ronde waarin" not in dashboard
    process_page = client.get(f"/processes/{w.process.slug}").get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", process_page))
    assert f"In “{w.round.title}” heeft 1 van de 2 organisaties gereageerd." in text


def _primary_buttons(page: str) -> list[tuple[str, str]]:
    return [
        (href, re.sub(r"<[^>]+>", "", label).strip())
        for href, label in re.findall(
            r'<a class="c-button c-button--primary[^"]*" href="([^"]+)">(.*?)</a>', page, re.S
        )
    ]


def test_each_role_has_one_primary_action_for_the_current_round(app, login_as):
    from consensus.models import RoundType
    from tests.endorsement_support import make_world as world_with

    w = world_with(2)
    slug, rid = w.process.slug, w.round.id
    stance_url = f"/processes/{slug}/rounds/{rid}/endorsement#your-stance"
    process_url = f"/processes/{slug}"

    rep = login_as(w.reps[w.orgs[0].id])
    page = rep.get(process_url).get_data(as_text=True)
    assert _primary_buttons(page) == [(stance_url, "Ons standpunt bepalen")]
    form_page = rep.get(stance_url.split("#")[0]).get_data(as_text=True)
    assert 'id="your-stance"' in form_page and 'name="kind"' in form_page  # one click
    dashboard = rep.get("/").get_data(as_text=True)
    assert (stance_url, f"Ons standpunt bepalen — {w.round.title}, {w.orgs[0].name}") in (
        _primary_buttons(dashboard)
    )

    official = login_as(w.officials[w.orgs[0].id])
    assert _primary_buttons(official.get(process_url).get_data(as_text=True)) == []

    facilitator = login_as(w.facilitator)
    assert _primary_buttons(facilitator.get(process_url).get_data(as_text=True)) == [
        (f"/processes/{slug}/rounds/{rid}", "Deze ronde beheren")
    ]

    consultation = world_with(2, round_types=(RoundType.CONSULTATION,))
    official = login_as(consultation.officials[consultation.orgs[0].id])
    page = official.get(f"/processes/{consultation.process.slug}").get_data(as_text=True)
    [(href, label)] = _primary_buttons(page)
    assert label == "Versie 1 lezen en reageren" and "/versions/1" in href


def test_the_accessibility_statement_is_linked_from_every_page_footer(app, client):
    for url in ("/", "/login", "/public/", "/about"):
        page = client.get(url).get_data(as_text=True)
        footer = page[page.index("<footer") :]
        assert '<a href="/accessibility">Toegankelijkheid</a>' in footer, url
    page = client.get("/accessibility").get_data(as_text=True)
    for text in (
        "Toegankelijkheidsverklaring",
        "WCAG",
        "EN 301 549",
        "Besluit digitale toegankelijkheid overheid",
        "Wat nog niet voldoet",
        "mailto:toegankelijkheid@consensus.example.org",
        "WCAG-EM",
    ):
        assert text in page, text
    client.post("/language", data={"locale": "en", "next": "/accessibility"})
    page = client.get("/accessibility").get_data(as_text=True)
    assert "Accessibility statement" in page and "What does not comply yet" in page
    app.config["ACCESSIBILITY_CONTACT"] = "mailto:a11y@gemeente.example"
    assert "mailto:a11y@gemeente.example" in client.get("/accessibility").get_data(as_text=True)


def test_in_a_signing_round_only_eligible_organisations_get_the_sign_button(app, login_as):
    from consensus.models import StanceKind
    from tests.signing_support import make_signing_world

    w = make_signing_world(
        stances=(StanceKind.ENDORSE, StanceKind.ENDORSE, StanceKind.ABSTAIN, StanceKind.ENDORSE)
    )
    url = f"/processes/{w.process.slug}"
    signer = login_as(w.reps[w.orgs[0].id]).get(url).get_data(as_text=True)
    assert _primary_buttons(signer) == [
        (f"/processes/{w.process.slug}/signing", "Onderteken namens uw organisatie")
    ]
    abstained = login_as(w.reps[w.orgs[2].id]).get(url).get_data(as_text=True)
    assert _primary_buttons(abstained) == []  # its stance did not count: nothing to sign
