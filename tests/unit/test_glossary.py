"""The Dutch catalogue uses the terms docs/glossary.md fixes, and the title fields say
"Titel" (a person's job title, "Functie", only where a membership's job title is meant)."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
GLOSSARY = ROOT / "docs" / "glossary.md"
CATALOG = ROOT / "consensus" / "translations" / "nl" / "LC_MESSAGES" / "messages.po"


def _rows() -> list[tuple[str, str, list[str]]]:
    text = GLOSSARY.read_text(encoding="utf-8").split("## Fixed terms", 1)[1]
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("English", "") or set(cells[0]) <= {"-"}:
            continue
        english, dutch, avoid = cells
        rows.append((english, dutch, [w.strip() for w in avoid.split(",") if w.strip()]))
    return rows


def _messages() -> list[tuple[str, str]]:
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle, locale="nl")
    found = []
    for m in catalog:
        if not m.id:
            continue
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        found.append((" ".join(ids), " ".join(s for s in strings if s)))
    return found


def _word(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.IGNORECASE)


def test_the_glossary_fixes_the_terms_the_issue_names():
    rows = {english: dutch for english, dutch, _avoid in _rows()}
    assert rows["title (of a process, round or position)"] == "titel"
    assert rows["job title (of a membership)"] == "functie"
    for term in (
        "traject",
        "ronde",
        "wijzigingsvoorstel",
        "besluitregel",
        "verwerkingsnota",
        "procesbegeleider",
        "bestuurder",
        "ambtenaar",
        "ambtelijk akkoord",
    ):
        assert any(term in dutch for dutch in rows.values()), term


def test_no_dutch_text_uses_a_word_the_glossary_rules_out():
    rows = _rows()
    # A Dutch word that is the fixed term of some row is right where that row's English is meant.
    fixed_for: dict[str, list[str]] = {}
    for english, dutch, _avoid in rows:
        for word in re.split(r"[,/]", dutch):
            head = re.sub(r"\(.*?\)", "", english).strip().split(",")[0].strip()
            fixed_for.setdefault(word.strip().lower(), []).append(head.lower())
    forbidden = {word: english for english, _dutch, avoid in rows for word in avoid}
    forbidden.update({"functie": "title", "je": "you", "jij": "you", "jouw": "your"})
    wrong = []
    for msgid, msgstr in _messages():
        for word, _english in forbidden.items():
            if _word(word).search(msgstr):
                allowed = fixed_for.get(word.lower(), [])
                if not any(a in msgid.lower() for a in allowed):
                    wrong.append((word, msgid[:60], msgstr[:60]))
    assert not wrong, wrong


def test_title_fields_say_titel_and_job_titles_say_functie(client, login_as):
    from consensus.models import MembershipRole, RoundType
    from tests.endorsement_support import make_world
    from tests.factories import make_membership, make_user

    world = make_world(2, round_types=(RoundType.CONSULTATION,))
    login_as(world.facilitator)
    slug = world.process.slug
    for url in (
        "/processes/new",
        f"/processes/{slug}/rounds/new",
        f"/processes/{slug}/positions/new",
        f"/processes/{slug}/rounds/{world.round.id}/edit",
    ):
        page = client.get(url).get_data(as_text=True)
        assert re.search(r"<label[^>]*>\s*Titel", page), url
        assert "Functie" not in page, url
    admin = make_user(is_admin=True)
    make_membership(make_user(), world.orgs[0], MembershipRole.OFFICIAL, title="Beleidsadviseur")
    login_as(admin)
    page = client.get(f"/admin/organisations/{world.orgs[0].id}").get_data(as_text=True)
    assert '<th scope="col">Functie</th>' in page
    rep = world.reps[world.orgs[0].id]
    login_as(rep)
    page = client.get("/").get_data(as_text=True)
    assert '<th scope="col">Functie</th>' in page and "Titel" not in page
