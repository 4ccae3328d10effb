"""Word diffs and version diffs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consensus.domain.canonical import diff_blocks, tokenize, word_diff

words = st.lists(
    st.sampled_from(["de", "het", "gemeente", "provincie", ",", ".", " ", "  ", "\n", "é"]),
    max_size=30,
).map("".join)


@given(words, words)
def test_a_word_diff_rebuilds_both_texts(old, new):
    segments = word_diff(old, new)
    assert "".join(s.text for s in segments if s.op != "insert") == old
    assert "".join(s.text for s in segments if s.op != "delete") == new
    assert all(a.op != b.op for a, b in zip(segments, segments[1:], strict=False))


def test_word_level_changes():
    segments = word_diff(
        "De minister moet snel handelen.", "De staatssecretaris moet snel handelen!"
    )
    assert [(s.op, s.text) for s in segments] == [
        ("equal", "De "),
        ("delete", "minister"),
        ("insert", "staatssecretaris"),
        ("equal", " moet snel handelen"),
        ("delete", "."),
        ("insert", "!"),
    ]


def test_tokens_keep_every_character():
    text = "Eén, twee;  drie\n- vier"
    assert "".join(tokenize(text)) == text


def test_blocks_are_aligned_by_anchor():
    old = [("a", "Een."), ("b", "Twee."), ("c", "Drie.")]
    new = [
        ("a", "Een."),
        ("b", "Twee, aangepast."),
        ("d", "Nieuw."),
    ]
    changes = diff_blocks(old, new)
    assert [(c.kind, c.old_anchor, c.new_anchor) for c in changes] == [
        ("equal", "a", "a"),
        ("changed", "b", "b"),
        ("removed", "c", None),
        ("added", None, "d"),
    ]
    changed = changes[1]
    assert changed.old_ordinal == 2 and changed.new_ordinal == 2
    assert any(s.op == "insert" and "aangepast" in s.text for s in changed.segments)
