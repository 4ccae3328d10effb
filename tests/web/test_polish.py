"""Small things new users stumbled on (issue 24): excerpts without Markdown syntax, heading
order, captions, one organisation without a "on behalf of" choice, and the like."""

from __future__ import annotations

import re

from consensus.extensions import db
from consensus.services import processes
from consensus.text import excerpt, plain_text
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
        "Doel Wij sturen breed, gelijkwaardig en gezamenlijk op de digitale overheid; zie de "
        "strategie. één twee" in page
    )
    item = page[page.index("Wij sturen") - 200 : page.index("Wij sturen") + 300]
    assert not re.search(r"\*\*|_digitale_|\]\(|^#", item)
    assert "<strong>" not in item  # plain text: the excerpt is no place for layout


def test_excerpts_cut_at_a_word():
    text = "Wij sturen **breed** " + "en gezamenlijk " * 30
    short = excerpt(text, 60)
    assert short.endswith("…") and len(short) <= 60 and "**" not in short
    assert plain_text("a &amp; b <script>x</script>") == "a & b <script>x</script>"
