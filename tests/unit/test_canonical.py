"""Canonical form and hashing of position texts (property-based where it matters)."""

from __future__ import annotations

import hashlib
import unicodedata

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from consensus.domain.canonical import (
    ANCHOR_MAX,
    assign_anchors,
    canonicalise,
    join_blocks,
    sha256_hex,
    split_blocks,
)

# Text made of the characters that matter here: letters with and without accents (in both
# composed and decomposed form), spaces, tabs, punctuation and every kind of line break.
ALPHABET = st.sampled_from(
    list("abcdefgh XYZ.,;:-#*")
    + ["\u00e9", "e\u0301", "\u00eb", "e\u0308", "\t", "\n", "\r\n", "\r", "  "]
)
texts = st.lists(ALPHABET, max_size=80).map("".join)


def _variant(text: str, newline: str, form: str, trailing: str) -> str:
    """The same text with other line endings, another normal form and trailing blanks."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return newline.join(unicodedata.normalize(form, line) + trailing for line in lines)


@given(texts)
def test_canonicalise_is_idempotent(text):
    once = canonicalise(text)
    assert canonicalise(once) == once


@given(texts)
def test_canonical_text_has_the_promised_shape(text):
    canonical = canonicalise(text)
    assert "\r" not in canonical
    assert unicodedata.is_normalized("NFC", canonical)
    assert all(line == line.rstrip() for line in canonical.split("\n"))
    assert "\n\n\n" not in canonical
    if canonical:
        assert canonical.endswith("\n") and not canonical.endswith("\n\n")
        assert not canonical.startswith("\n")


@given(
    texts,
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from(["NFC", "NFD"]),
    st.sampled_from(["", " ", "\t", "  \t"]),
)
def test_line_endings_normal_form_and_trailing_blanks_do_not_change_the_hash(
    text, newline, form, trailing
):
    assert sha256_hex(_variant(text, newline, form, trailing)) == sha256_hex(text)


@settings(max_examples=200)
@given(texts, st.integers(min_value=0), st.sampled_from(list("abcxyz.,!?éß0123")))
def test_any_real_change_changes_the_hash(text, position, char):
    canonical = canonicalise(text)
    assume(canonical.strip())
    index = position % len(canonical.rstrip("\n"))
    changed = canonical[:index] + char + canonical[index:]
    assert canonicalise(changed) != canonical
    assert sha256_hex(changed) != sha256_hex(canonical)


def test_the_hash_is_sha256_of_the_utf8_bytes():
    text = "Geachte staatssecretaris,\r\n\r\nWij zijn het eens.   \r\n\r\n\r\n"
    canonical = "Geachte staatssecretaris,\n\nWij zijn het eens.\n"
    assert canonicalise(text) == canonical
    assert sha256_hex(text) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_bom_and_control_characters_are_dropped_but_tabs_kept():
    assert canonicalise("\ufeffa\x00b\x07c\td\n") == "abc\td\n"
    assert canonicalise(b"caf\xc3\xa9") == "caf\u00e9\n"


def test_empty_text_stays_empty():
    assert canonicalise("") == "" and canonicalise(" \n\r\n\t") == ""


def test_blocks_are_markdown_blocks():
    text = (
        "# Kop\nEerste alinea\nloopt door.\n\n- een\n- twee\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n> citaat\n"
    )
    assert split_blocks(text) == [
        "# Kop",
        "Eerste alinea\nloopt door.",
        "- een\n- twee",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "> citaat",
    ]


@given(
    st.lists(
        st.sampled_from(["Alinea een.", "Twee **vet**.", "# Kop", "- lijst\n- punt", "Drie."]),
        max_size=8,
    )
)
def test_joining_blocks_gives_them_back(blocks):
    # Two lists in a row are one (loose) list in Markdown; the services re-anchor that case.
    assume(not any(a.startswith("- ") and b.startswith("- ") for a, b in zip(blocks, blocks[1:])))
    assert split_blocks(join_blocks(blocks)) == [b for b in blocks if b]


def test_nothing_is_lost_between_blocks():
    text = "Zie [bron].\n\n[bron]: https://example.org\n\nSlot.\n"
    assert join_blocks(split_blocks(text)) == canonicalise(text)


@given(st.integers(min_value=0, max_value=5), st.text(alphabet="klmnop ", min_size=1, max_size=20))
def test_anchors_survive_unrelated_edits(index, addition):
    blocks = [f"Alinea nummer {i} met zijn eigen woorden." for i in range(6)]
    anchors = assign_anchors(blocks)
    assert len(set(anchors)) == 6
    edited = list(blocks)
    edited[index] = blocks[index] + " " + addition.strip() + "."
    new = assign_anchors(edited, list(zip(anchors, blocks, strict=True)))
    assert new == anchors  # the edited one resembles itself, the rest is untouched


def test_inserted_and_removed_blocks_leave_the_other_anchors_alone():
    blocks = ["Een.", "Twee.", "Drie.", "Vier."]
    anchors = assign_anchors(blocks)
    previous = list(zip(anchors, blocks, strict=True))
    new = assign_anchors(["Een.", "Nieuw, heel anders.", "Twee.", "Vier."], previous)
    assert new[0] == anchors[0] and new[2] == anchors[1] and new[3] == anchors[3]
    assert new[1] not in anchors


def test_identical_blocks_get_distinct_anchors():
    anchors = assign_anchors(["Zelfde.", "Zelfde.", "Zelfde."])
    assert len(set(anchors)) == 3


@given(st.lists(st.sampled_from(["0", "Tekst.", "Zie hierboven.", "0 "]), min_size=1, max_size=40))
def test_anchors_are_unique_and_fit_their_column_however_often_a_block_repeats(blocks):
    """Equal paragraphs get distinct anchors, each short enough for the database column
    (PostgreSQL refuses a longer one: a fifth equal paragraph once got a 66-character one)."""
    anchors = assign_anchors(blocks)
    assert len(set(anchors)) == len(anchors)
    assert all(len(anchor) <= ANCHOR_MAX for anchor in anchors)
