"""Line numbers of a version (consensus.domain.lines): the counting rule and the mapping of
references between versions, with examples and hypothesis properties."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from consensus.domain.canonical import assign_anchors, join_blocks, split_blocks
from consensus.domain.lines import (
    LINE_WIDTH,
    changed_span,
    map_lines,
    number_paragraphs,
    paragraph_text,
    reference,
    wrap_line,
)


def numbered(text: str, previous=()):
    blocks = split_blocks(text)
    anchors = assign_anchors(blocks, previous)
    pairs = list(zip(anchors, blocks, strict=True))
    return pairs, number_paragraphs(pairs)


WORDS = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzé€,.", min_size=1, max_size=14),
    min_size=1,
    max_size=40,
)
PARAGRAPH = WORDS.map(" ".join)
TEXT = st.lists(PARAGRAPH, min_size=1, max_size=8)


def test_a_long_paragraph_wraps_at_the_width_by_words():
    text = " ".join(["woord"] * 40)  # 239 characters
    lines = wrap_line(text)
    assert [len(line.rstrip()) for line in lines] == [71, 71, 71, 23]
    assert "".join(lines) == text
    assert all(not line.startswith(" ") for line in lines)


def test_a_word_longer_than_the_line_is_cut():
    assert wrap_line("x" * 150) == ["x" * 72, "x" * 72, "x" * 6]
    assert wrap_line("") == [""]


def test_lines_are_numbered_through_the_version_without_blank_lines():
    text = "# Kop\n\n" + " ".join(["woord"] * 40) + "\n\n- een\n- twee\n"
    _, paragraphs = numbered(text)
    assert [(p.ordinal, p.first_line, p.last_line) for p in paragraphs] == [
        (1, 1, 1),
        (2, 2, 5),
        (3, 6, 7),
    ]
    assert [line.text for line in paragraphs[2].lines] == ["- een", "- twee"]


def test_an_amendment_reference_names_the_changed_lines_only():
    words = [f"w{n:02d}" for n in range(60)]  # "w00 ": 18 words fill a line of 72
    text = "Intro.\n\n" + " ".join(words) + "\n"
    _, paragraphs = numbered(text)
    original = paragraphs[1].text
    proposed = original.replace("w30", "WIJZIGING")
    span = changed_span(original, proposed)
    ref = reference(paragraphs, paragraphs[1].anchor, None, span)
    # w30 is the 31st word: on the second line of paragraph 2, which is line 3.
    assert (ref.paragraphs, ref.lines) == ("2", "3")
    whole = reference(paragraphs, paragraphs[1].anchor)
    assert (whole.first_line, whole.last_line) == (2, 5)


def test_lines_map_back_across_an_insertion_above():
    old_text = "Eerste alinea.\n\nTweede alinea.\n\nDerde alinea.\n"
    old_pairs, old = numbered(old_text)
    new_text = (
        "Eerste alinea.\n\nNieuw ingevoegd,\nover twee regels.\n\nTweede alinea.\n\nDerde alinea.\n"
    )
    _, new = numbered(new_text, old_pairs)
    assert map_lines(new, old, 4).lines == "2"  # "Tweede alinea." was line 2
    assert map_lines(new, old, 5).lines == "3"
    assert map_lines(new, old, 2, 3) is None  # the new paragraph has no older lines


@settings(max_examples=200)
@given(line=st.text(alphabet=" ab\u00e9x", max_size=300), width=st.integers(1, 90))
def test_wrapping_loses_nothing_and_respects_the_width(line, width):
    pieces = wrap_line(line, width)
    assert "".join(pieces) == line
    assert all(len(piece.rstrip()) <= width for piece in pieces)
    assert all(piece for piece in pieces) or pieces == [""]


@settings(max_examples=200)
@given(paragraphs=TEXT)
def test_numbering_is_continuous_and_gives_the_text_back(paragraphs):
    text = join_blocks(paragraphs)
    _, result = numbered(text)
    numbers = [line.number for p in result for line in p.lines]
    assert numbers == list(range(1, len(numbers) + 1))
    for p in result:
        assert paragraph_text(p) == p.text
        assert all(len(line.text.rstrip()) <= LINE_WIDTH for line in p.lines)


@settings(max_examples=200)
@given(paragraphs=TEXT)
def test_a_version_maps_onto_itself_line_for_line(paragraphs):
    _, result = numbered(join_blocks(paragraphs))
    total = result[-1].last_line
    for n in range(1, total + 1):
        ref = map_lines(result, result, n)
        assert (ref.first_line, ref.last_line) == (n, n)


@settings(max_examples=200)
@given(paragraphs=TEXT, index=st.integers(0, 7), replacement=PARAGRAPH, inserted=PARAGRAPH)
def test_lines_of_untouched_paragraphs_map_to_the_same_text(
    paragraphs, index, replacement, inserted
):
    """One paragraph is replaced and a new one inserted before it: every line of the other
    paragraphs maps back to one older line with exactly its text; the lines of the
    replaced paragraph map back into that paragraph's older lines; the inserted paragraph
    maps to nothing; and the mapping keeps the order of lines."""
    assume(len(set(paragraphs)) == len(paragraphs))
    index = index % len(paragraphs)
    assume(replacement not in paragraphs and inserted not in paragraphs)
    assume(inserted != replacement)
    old_pairs, old = numbered(join_blocks(paragraphs))
    assume(len(old) == len(paragraphs))
    changed = list(paragraphs)
    changed[index] = replacement
    changed.insert(index, inserted)
    # The replacement keeps its anchor (as when an amendment is applied).
    blocks = split_blocks(join_blocks(changed))
    assume(len(blocks) == len(changed))
    anchors = assign_anchors(blocks, old_pairs, {index + 1: old_pairs[index][0]})
    new = number_paragraphs(list(zip(anchors, blocks, strict=True)))
    old_lines = {line.number: line for p in old for line in p.lines}
    previous_first = 0
    for p in new:
        for line in p.lines:
            ref = map_lines(new, old, line.number)
            if p.ordinal == index + 1:  # the inserted paragraph
                assert ref is None or p.anchor in {a for a, _ in old_pairs}
                continue
            assert ref is not None
            assert ref.first_line >= previous_first
            previous_first = ref.first_line
            before = next(o for o in old if o.anchor == p.anchor)
            assert before.first_line <= ref.first_line <= ref.last_line <= before.last_line
            if p.text == before.text:
                assert ref.single_line
                assert old_lines[ref.first_line].text == line.text


# --- Overlapping amendments (consensus.domain.overlap) -----------------------------------------

from consensus.domain.overlap import Claim, groups, overlaps  # noqa: E402

CLAIMS = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 3), st.booleans()), min_size=0, max_size=12
)


def test_overlap_examples():
    assert groups(
        [Claim("a", 2, 3), Claim("b", 3, 3), Claim("c", 5, 5), Claim("d", 2, 2, True)]
    ) == [["a", "b", "d"], ["c"]]
    # An insertion after paragraph 2 does not touch paragraph 2 or 3 themselves …
    assert not overlaps(Claim("x", 2, 2, True), Claim("y", 3, 3))
    # … but two insertions at the same place compete.
    assert groups([Claim("x", 2, 2, True), Claim("y", 2, 2, True)]) == [["x", "y"]]


@settings(max_examples=300)
@given(raw=CLAIMS)
def test_groups_partition_and_separate_exactly_the_overlapping(raw):
    claims = [Claim(n, first, first + length, ins) for n, (first, length, ins) in enumerate(raw)]
    result = groups(claims)
    flat = [k for g in result for k in g]
    assert sorted(flat) == list(range(len(claims)))
    where = {k: i for i, g in enumerate(result) for k in g}
    for a in claims:
        for b in claims:
            if overlaps(a, b):
                assert where[a.key] == where[b.key]
    # Every group of more than one is connected: each member overlaps another member.
    for g in result:
        if len(g) > 1:
            for k in g:
                assert any(overlaps(claims[k], claims[j]) for j in g if j != k)
