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


def new_anchor(block: str, taken: set[str]) -> str:
    """A short anchor derived from the block's text, unique within `taken`."""
    digest = hashlib.sha256(block.encode("utf-8")).hexdigest()
    for length in (8, 12, 16, 64):
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
