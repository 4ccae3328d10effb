"""Paragraph and line numbers of a version: a pure function of its canonical text.

Legislative drafts are discussed by line ("p. 3, lines 12-14"), so every place that shows a
version — the page (with line numbers switched on), the diff, the amendments, the
disposition report and the line-numbered draft PDF — must count lines the same way. They
all ask this module. The rule, so anyone can re-implement it:

1. Take the version's paragraphs (its top-level Markdown blocks, `canonical.split_blocks`),
   numbered 1, 2, 3 … in order: these are the paragraph numbers.
2. Each paragraph consists of its canonical source lines (the text as stored, Markdown
   marks included: what is hashed and signed is what is numbered). Every source line is
   wrapped at `LINE_WIDTH` (72) characters — Unicode code points of the NFC text — by words:
   a line is filled with whole words (a word with the spaces after it) as long as its text
   without trailing spaces stays within the width; a word longer than the width is cut
   into pieces of exactly the width. Leading spaces stay with the first word.
3. Lines are numbered 1, 2, 3 … continuously through the whole version. The blank lines
   between paragraphs are not counted.

Joining a paragraph's lines (source lines end-to-end, LF between source lines) gives the
paragraph back exactly (`paragraph_text`), so nothing is lost or added by numbering.

References in a newer version map back to an older one (`map_lines`): paragraphs are
aligned by their anchor (anchors survive edits, see canonical.assign_anchors); inside an
aligned paragraph, character offsets are carried over through a word-level alignment, and
a line range maps to the older lines that hold the same stretch of text.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

LINE_WIDTH = 72

_PIECE = re.compile(r"\s*\S+\s*|\s+")


def wrap_line(line: str, width: int = LINE_WIDTH) -> list[str]:
    """One source line cut into display lines (see the module docstring, rule 2). The
    pieces joined give the line back; each piece without trailing spaces is at most
    `width` characters long; an empty line is one empty display line."""
    if width < 1:
        raise ValueError("width must be positive")
    if not line:
        return [""]
    pieces: list[str] = []
    current = ""
    for word in _PIECE.findall(line):
        if len((current + word).rstrip()) <= width:
            current += word
            continue
        if current:
            pieces.append(current)
            current = ""
        while len(word.rstrip()) > width:
            pieces.append(word[:width])
            word = word[width:]
        current = word
    if current or not pieces:
        pieces.append(current)
    return pieces


@dataclass(frozen=True)
class Line:
    """One numbered line: its number in the version, its paragraph and where in the
    paragraph's text it starts (a character offset)."""

    number: int
    paragraph: int  # ordinal, from 1
    offset: int
    text: str


@dataclass(frozen=True)
class NumberedParagraph:
    ordinal: int
    anchor: str
    text: str
    lines: tuple[Line, ...]

    @property
    def first_line(self) -> int:
        return self.lines[0].number

    @property
    def last_line(self) -> int:
        return self.lines[-1].number

    def lines_of(self, start: int, end: int) -> tuple[int, int]:
        """The first and last line holding the characters [start, end) of the paragraph's
        text (an empty stretch: the line where it sits)."""
        offsets = [line.offset for line in self.lines]
        first = bisect.bisect_right(offsets, max(start, 0)) - 1
        last = bisect.bisect_right(offsets, max(end - 1, start, 0)) - 1
        return self.lines[max(first, 0)].number, self.lines[max(last, first, 0)].number


def _paragraph_lines(text: str, ordinal: int, first: int, width: int) -> tuple[Line, ...]:
    lines: list[Line] = []
    offset = 0
    for source in text.split("\n"):
        for piece in wrap_line(source, width):
            lines.append(Line(first + len(lines), ordinal, offset, piece))
            offset += len(piece)
        offset += 1  # the LF
    return tuple(lines)


def number_paragraphs(
    paragraphs: Sequence[tuple[str, str]], width: int = LINE_WIDTH
) -> list[NumberedParagraph]:
    """[(anchor, text), …] of a version, in order → its numbered paragraphs and lines."""
    numbered: list[NumberedParagraph] = []
    next_line = 1
    for ordinal, (anchor, text) in enumerate(paragraphs, start=1):
        lines = _paragraph_lines(text, ordinal, next_line, width)
        numbered.append(NumberedParagraph(ordinal, anchor, text, lines))
        next_line += len(lines)
    return numbered


def paragraph_text(paragraph: NumberedParagraph) -> str:
    """The paragraph's text rebuilt from its lines (equals `paragraph.text`)."""
    out: list[str] = []
    position = 0
    for line in paragraph.lines:
        if line.offset > position:
            out.append("\n" * (line.offset - position))
        out.append(line.text)
        position = line.offset + len(line.text)
    return "".join(out)


# --- References ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """ "p. 3, lines 12–14": a stretch of paragraphs and lines of one version."""

    first_paragraph: int
    last_paragraph: int
    first_line: int
    last_line: int

    @property
    def paragraphs(self) -> str:
        if self.first_paragraph == self.last_paragraph:
            return str(self.first_paragraph)
        return f"{self.first_paragraph}\u2013{self.last_paragraph}"

    @property
    def lines(self) -> str:
        if self.first_line == self.last_line:
            return str(self.first_line)
        return f"{self.first_line}\u2013{self.last_line}"

    @property
    def single_line(self) -> bool:
        return self.first_line == self.last_line


def _by_anchor(numbered: Sequence[NumberedParagraph]) -> dict[str, NumberedParagraph]:
    return {p.anchor: p for p in numbered}


def reference(
    numbered: Sequence[NumberedParagraph],
    start_anchor: str,
    end_anchor: str | None = None,
    changed: tuple[int, int] | None = None,
) -> Reference | None:
    """The reference of paragraphs `start_anchor` … `end_anchor` (None: the same one).

    `changed` narrows it to the characters [start, end) of the paragraphs' text joined
    with a blank line (as an amendment's original text is): the lines actually changed.
    None when an anchor is not in this version."""
    index = {p.anchor: i for i, p in enumerate(numbered)}
    if start_anchor not in index or (end_anchor or start_anchor) not in index:
        return None
    first, last = index[start_anchor], index[end_anchor or start_anchor]
    if last < first:
        return None
    span = numbered[first : last + 1]
    if changed is None:
        return Reference(span[0].ordinal, span[-1].ordinal, span[0].first_line, span[-1].last_line)
    start, end = changed
    lines: list[int] = []
    base = 0
    for paragraph in span:
        length = len(paragraph.text)
        lo, hi = max(start - base, 0), min(end - base, length)
        if lo < hi or (start == end and base <= start <= base + length):
            lines.extend(paragraph.lines_of(lo, max(hi, lo)))
        base += length + 2  # the blank line between paragraphs
    if not lines:
        return Reference(span[0].ordinal, span[-1].ordinal, span[0].first_line, span[-1].last_line)
    first_line, last_line = min(lines), max(lines)
    paragraphs = [
        p.ordinal for p in span if p.first_line <= last_line and p.last_line >= first_line
    ]
    return Reference(paragraphs[0], paragraphs[-1], first_line, last_line)


def changed_span(old: str, new: str) -> tuple[int, int]:
    """The stretch [start, end) of `old` that differs from `new` (common beginning and
    end left out): which characters an amendment touches."""
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    return start, end_old


def insertion_reference(
    numbered: Sequence[NumberedParagraph], after_anchor: str
) -> Reference | None:
    """Where new paragraphs go: after the last line of the paragraph `after_anchor`."""
    paragraph = _by_anchor(numbered).get(after_anchor)
    if paragraph is None:
        return None
    return Reference(paragraph.ordinal, paragraph.ordinal, paragraph.last_line, paragraph.last_line)


# --- Mapping lines between versions ---------------------------------------------------------------

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


def _offset_map(old: str, new: str) -> list[tuple[int, int, int, int, bool]]:
    """Word-level alignment of two texts as (new_start, new_end, old_start, old_end,
    equal) stretches covering `new` entirely, in order."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    a_pos = [0]
    for token in a:
        a_pos.append(a_pos[-1] + len(token))
    b_pos = [0]
    for token in b:
        b_pos.append(b_pos[-1] + len(token))
    stretches = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        stretches.append((b_pos[j1], b_pos[j2], a_pos[i1], a_pos[i2], tag == "equal"))
    return stretches


def _to_old_offset(stretches: list[tuple[int, int, int, int, bool]], offset: int, end: bool) -> int:
    for new_start, new_end, old_start, old_end, equal in stretches:
        if new_start <= offset < new_end or (end and offset == new_end):
            if equal:
                return old_start + (offset - new_start)
            return old_end if end else old_start
    return stretches[-1][3] if stretches else 0


def map_lines(
    new: Sequence[NumberedParagraph],
    old: Sequence[NumberedParagraph],
    first_line: int,
    last_line: int | None = None,
) -> Reference | None:
    """Lines `first_line`…`last_line` of the newer version `new`, as lines of the older
    version `old`: the older lines holding the same stretch of text. None when the lines
    are all in paragraphs that the older version does not have (new paragraphs), or out
    of range. Paragraphs are matched by anchor; the mapping of a paragraph that did not
    change is exact (line for line)."""
    last_line = first_line if last_line is None else last_line
    if last_line < first_line:
        return None
    old_by_anchor = _by_anchor(old)
    found: list[tuple[int, int, int]] = []  # (paragraph, first, last) in the old version
    for paragraph in new:
        if paragraph.last_line < first_line or paragraph.first_line > last_line:
            continue
        before = old_by_anchor.get(paragraph.anchor)
        if before is None:
            continue
        lines = [line for line in paragraph.lines if first_line <= line.number <= last_line]
        start = lines[0].offset
        end = lines[-1].offset + len(lines[-1].text)
        if before.text == paragraph.text:
            old_start, old_end = start, end
        else:
            stretches = _offset_map(before.text, paragraph.text)
            old_start = _to_old_offset(stretches, start, end=False)
            old_end = _to_old_offset(stretches, end, end=True)
        lo, hi = before.lines_of(old_start, max(old_end, old_start))
        found.append((before.ordinal, lo, hi))
    if not found:
        return None
    return Reference(
        min(p for p, _, _ in found),
        max(p for p, _, _ in found),
        min(lo for _, lo, _ in found),
        max(hi for _, _, hi in found),
    )
