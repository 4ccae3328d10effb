"""The canonical form of a position's text, its hash, its paragraphs and their anchors.

Everything here is a pure function of text, so anyone can re-implement it to check a
hash (docs/positions.md describes the rules) and the tests can throw random text at it.

Canonical form, applied in this order:

1. a leading byte-order mark is dropped;
2. line endings CR LF and lone CR become LF;
3. control characters other than TAB and LF are removed;
4. Unicode normalisation form C (NFC);
5. whitespace at the end of every line is removed (so Markdown's "two trailing spaces"
   hard break does not exist: use a backslash);
6. blank lines at the start and the end are removed and every run of blank lines inside
   becomes exactly one blank line (Markdown gives them no meaning);
7. a non-empty text ends with exactly one LF (a POSIX text file; `sha256sum` of the
   download equals the hash shown).

The hash is the SHA-256 of the UTF-8 bytes of the canonical form, as lowercase hex.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BLANK_RUN = re.compile(r"\n{3,}")
_parser = MarkdownIt("commonmark").enable("table")


def canonicalise(text: str | bytes) -> str:
    """The canonical form of `text` (see the module docstring). Idempotent."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    text = text.removeprefix("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines).strip("\n")
    text = _BLANK_RUN.sub("\n\n", text)
    return f"{text}\n" if text else ""


def canonical_bytes(text: str) -> bytes:
    return canonicalise(text).encode("utf-8")


def sha256_hex(text: str) -> str:
    """SHA-256 of the canonical UTF-8 bytes, lowercase hex (64 characters)."""
    return hashlib.sha256(canonical_bytes(text)).hexdigest()


# --- Paragraphs (blocks) ----------------------------------------------------------------------


def split_blocks(text: str) -> list[str]:
    """The top-level Markdown blocks of a text: headings, paragraphs, whole lists, tables,
    quotes. Each block is its exact canonical source lines (lines the parser gives no
    block, such as link definitions, form a block of their own, so nothing is lost)."""
    text = canonicalise(text)
    if not text:
        return []
    lines = text.rstrip("\n").split("\n")
    spans: list[tuple[int, int]] = []
    for token in _parser.parse(text):
        if token.level == 0 and token.map is not None and token.nesting in (1, 0):
            spans.append((token.map[0], min(token.map[1], len(lines))))
    spans.sort()
    blocks: list[str] = []
    cursor = 0

    def add(start: int, end: int) -> None:
        chunk = lines[start:end]
        # A stretch that the parser skipped may hold several blank-separated pieces.
        piece: list[str] = []
        for line in [*chunk, ""]:
            if line.strip():
                piece.append(line)
            elif piece:
                blocks.append("\n".join(piece))
                piece = []

    for start, end in spans:
        if start < cursor:
            continue
        if start > cursor:
            add(cursor, start)
        block = "\n".join(lines[start:end]).strip("\n")
        if block:
            blocks.append(block)
        cursor = end
    if cursor < len(lines):
        add(cursor, len(lines))
    return blocks


def join_blocks(blocks: Sequence[str]) -> str:
    """The canonical text made of these blocks, one blank line between them. For a text
    whose blocks are already separated by blank lines this gives the text back."""
    return canonicalise("\n\n".join(b.strip("\n") for b in blocks if b.strip()))


ANCHOR_MAX = 40  # models.VersionParagraph.anchor


def new_anchor(block: str, taken: set[str]) -> str:
    """A short anchor derived from the block's text, unique within `taken`; at most
    ANCHOR_MAX characters (the column's width: a fourth equal block once got the whole
    digest, 66 characters, which PostgreSQL refused)."""
    digest = hashlib.sha256(block.encode("utf-8")).hexdigest()
    for length in (8, 12, 16, 32):
        anchor = f"p-{digest[:length]}"
        if anchor not in taken:
            return anchor
    n = 2
    while f"p-{digest[:8]}-{n}" in taken:
        n += 1
    return f"p-{digest[:8]}-{n}"


SIMILAR_ENOUGH = 0.5


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio()


def assign_anchors(
    blocks: Sequence[str],
    previous: Sequence[tuple[str, str]] = (),
    fixed: dict[int, str] | None = None,
) -> list[str]:
    """Anchors for `blocks`, inherited from `previous` [(anchor, text), …] where possible.

    `fixed` pins anchors by block index (amendments: the replacement keeps the anchor of
    the paragraph it replaces). Other blocks are aligned with the previous ones: equal
    blocks keep their anchor, and inside a changed stretch a block keeps the anchor of the
    previous block it most resembles (in order, at least half its words in common). Only
    genuinely new blocks get a new anchor, so links to unrelated paragraphs keep working.
    """
    fixed = dict(fixed or {})
    anchors: list[str | None] = [fixed.get(i) for i in range(len(blocks))]
    used = {a for a in anchors if a}
    prev_texts = [text for _, text in previous]
    prev_anchors = [anchor for anchor, _ in previous]
    matcher = difflib.SequenceMatcher(None, prev_texts, list(blocks), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                j, anchor = j1 + offset, prev_anchors[i1 + offset]
                if anchors[j] is None and anchor not in used:
                    anchors[j] = anchor
                    used.add(anchor)
        elif tag == "replace":
            start = i1
            for j in range(j1, j2):
                if anchors[j] is not None:
                    continue
                for i in range(start, i2):
                    if prev_anchors[i] in used:
                        continue
                    if _similarity(prev_texts[i], blocks[j]) >= SIMILAR_ENOUGH:
                        anchors[j] = prev_anchors[i]
                        used.add(prev_anchors[i])
                        start = i + 1
                        break
    result: list[str] = []
    taken = set(used)
    for block, anchor in zip(blocks, anchors, strict=True):
        if anchor is None:
            anchor = new_anchor(block, taken)
            taken.add(anchor)
        result.append(anchor)
    return result


# --- Differences ------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Words, runs of whitespace and single punctuation marks: the unit of a word diff."""
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class Segment:
    """A piece of a word diff: op is "equal", "insert" or "delete"."""

    op: str
    text: str


def word_diff(old: str, new: str) -> list[Segment]:
    """A word-level diff of two texts as equal / delete / insert segments, in reading order
    (a replacement reads as the deletion followed by the insertion)."""
    a, b = tokenize(old), tokenize(new)
    segments: list[Segment] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if segments and segments[-1].op == op:
            segments[-1] = Segment(op, segments[-1].text + text)
        else:
            segments.append(Segment(op, text))

    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", "".join(a[i1:i2]))
        else:
            add("delete", "".join(a[i1:i2]))
            add("insert", "".join(b[j1:j2]))
    return segments


@dataclass(frozen=True)
class BlockChange:
    """One row of a version diff: a paragraph that is unchanged, changed, added or removed."""

    kind: str  # "equal" | "changed" | "added" | "removed"
    old_anchor: str | None
    new_anchor: str | None
    old_text: str
    new_text: str
    old_ordinal: int | None
    new_ordinal: int | None
    segments: tuple[Segment, ...]


def diff_blocks(
    old: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]
) -> list[BlockChange]:
    """Align two versions by paragraph anchor [(anchor, text), …] and diff each pair by word.

    Anchors survive edits, so a changed paragraph is compared with its own earlier text
    even across several versions; a moved paragraph shows as removed here, added there.
    """
    old_anchors = [a for a, _ in old]
    new_anchors = [a for a, _ in new]
    changes: list[BlockChange] = []
    matcher = difflib.SequenceMatcher(None, old_anchors, new_anchors, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                i, j = i1 + offset, j1 + offset
                (anchor_a, text_a), (anchor_b, text_b) = old[i], new[j]
                kind = "equal" if text_a == text_b else "changed"
                segments = (
                    (Segment("equal", text_a),)
                    if kind == "equal"
                    else tuple(word_diff(text_a, text_b))
                )
                changes.append(
                    BlockChange(kind, anchor_a, anchor_b, text_a, text_b, i + 1, j + 1, segments)
                )
            continue
        for i in range(i1, i2):
            anchor, text = old[i]
            changes.append(
                BlockChange(
                    "removed", anchor, None, text, "", i + 1, None, (Segment("delete", text),)
                )
            )
        for j in range(j1, j2):
            anchor, text = new[j]
            changes.append(
                BlockChange(
                    "added", None, anchor, "", text, None, j + 1, (Segment("insert", text),)
                )
            )
    return changes


# --- What you see is what you sign ------------------------------------------------------------
#
# A signature covers the canonical bytes, and people sign what they *see*. Characters that
# show nothing, or that change the order in which the characters around them are shown
# ("Trojan Source": abc<U+202E>fdp.exe<U+202C> reads "abcexe.pdf"), would let the visible
# text differ from the signed bytes. New text containing them is refused (see
# consensus.domain.visible); text stored before that rule shows each of them as a visible
# marker ⟨U+202E⟩ on every page, PDF and export (mark_hidden, applied by the template
# environment to every value it outputs). docs/signing.md states the rule.

# Every code point refused in new text and marked when shown, as inclusive ranges:
HIDDEN_RANGES: tuple[tuple[int, int], ...] = (
    # Control characters other than TAB, LF and CR (C0, DEL, C1: NEXT LINE is a line break
    # in some programs and none in others).
    (0x00, 0x08),
    (0x0B, 0x0C),
    (0x0E, 0x1F),
    (0x7F, 0x9F),
    # Format characters (general category Cf, Unicode 14): the bidirectional embeddings,
    # overrides, isolates and marks (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069),
    # zero-width space, non-joiner and joiner (U+200B-U+200D), word joiner and invisible
    # operators (U+2060-U+2064), soft hyphen (U+00AD), zero-width no-break space / byte-order
    # mark (U+FEFF), interlinear annotation, tag characters, and the rest of the category.
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
    # Other code points Unicode calls default-ignorable (shown as nothing): combining
    # grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian variation selectors,
    # variation selectors, and the reserved default-ignorable ranges.
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180D),
    (0x180F, 0x180F),
    (0x2065, 0x2065),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0000),
    (0xE0002, 0xE001F),
    (0xE0080, 0xE0FFF),
    # Line and paragraph separators (a line break for some programs, none for others).
    (0x2028, 0x2029),
    # Private use (its look is whatever a font makes of it) and surrogates.
    (0xD800, 0xF8FF),
    (0xF0000, 0x10FFFF),
)
# NUL is left alone: stored text cannot hold it and the page cache uses it for placeholders.
_KEPT = {0x00, 0x09, 0x0A, 0x0D}


def _class_item(start: int, end: int) -> str:
    escape = "\\U{:08X}".format
    return escape(start) if start == end else f"{escape(start)}-{escape(end)}"


def _character_class(ranges: list[tuple[int, int]]) -> str:
    return "[" + "".join(_class_item(start, end) for start, end in ranges) + "]"


# Every value a page outputs goes through mark_hidden, so it picks the cheapest pattern
# that is exact for the text: ASCII, the Basic Multilingual Plane (which the regular-
# expression engine tests with a bitmap) or, rarely, all planes (tested range by range).
_HIDDEN_BMP = re.compile(
    _character_class([(max(a, 0x01), min(b, 0xFFFF)) for a, b in HIDDEN_RANGES if a <= 0xFFFF])
)
_HIDDEN = re.compile(
    _HIDDEN_BMP.pattern
    + "|"
    + _character_class([(max(a, 0x10000), b) for a, b in HIDDEN_RANGES if b > 0xFFFF])
)
_HIDDEN_ASCII = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# General categories refused in new text besides the ranges above (a newer Unicode version
# may assign more format characters; unassigned code points have no agreed look).
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"}
# What a hidden character is shown as; typing this marker in new text is refused too, so
# a marker on a page always stands for a stored hidden character.
MARKER = "\u27e8U+{:04X}\u27e9"
_MARKER = re.compile("\u27e8U\\+[0-9A-Fa-f]{4,6}\u27e9")


@dataclass(frozen=True)
class HiddenCharacter:
    """A refused character and where it is (line and column count from 1, in characters)."""

    codepoint: int
    line: int
    column: int

    @property
    def label(self) -> str:
        """U+202E (RIGHT-TO-LEFT OVERRIDE)."""
        name = unicodedata.name(chr(self.codepoint), "") or _CONTROL_NAMES.get(self.codepoint, "")
        return f"U+{self.codepoint:04X} ({name})" if name else f"U+{self.codepoint:04X}"


_CONTROL_NAMES = {0x85: "NEXT LINE", 0x7F: "DELETE", 0x0B: "LINE TABULATION", 0x0C: "FORM FEED"}


def is_hidden(char: str) -> bool:
    """Would `char` show nothing, or change the order of what is shown around it?"""
    code = ord(char)
    if code in _KEPT:
        return False
    return bool(_HIDDEN.match(char)) or unicodedata.category(char) in _HIDDEN_CATEGORIES


def hidden_characters(text: str) -> list[HiddenCharacter]:
    """Every hidden character of `text`, in order, with its line and column."""
    suspects = {char for char in set(text) if is_hidden(char)}
    if not suspects:
        return []
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        for column, char in enumerate(line, start=1):
            if char in suspects:
                found.append(HiddenCharacter(ord(char), number, column))
    return found


def markers_in(text: str) -> list[str]:
    """The hidden-character markers (⟨U+202E⟩) typed into `text`."""
    return _MARKER.findall(text)


def _marker(match: re.Match[str]) -> str:
    return MARKER.format(ord(match.group()))


def mark_hidden(text: str) -> str:
    """`text` with every hidden character replaced by its visible marker ⟨U+202E⟩, so that
    no stored character can vanish or reorder what is shown. Text accepted under the rule
    comes back unchanged."""
    pattern = (
        _HIDDEN_ASCII if text.isascii() else (_HIDDEN if _ASTRAL.search(text) else _HIDDEN_BMP)
    )
    return pattern.sub(_marker, text) if pattern.search(text) else text
