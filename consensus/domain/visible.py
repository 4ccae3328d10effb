"""What you see is what you sign: the one rule for text people type into the platform.

Every use case that takes text somebody will read — and, for position texts and
amendments, sign — passes it through here: position texts and letter details, change
summaries, amendments and their rationale, decisions and their reasons, comments, stances'
reservations and reasons, outcome statements, clearance remarks, delegation notes, the
names, purposes, instructions and reasons of processes and rounds, the names of
organisations, people's names and titles (they are printed in the letter).

The rule: text is NFC-normalised, and text holding a character that shows nothing or
changes the order in which the characters around it are shown (bidirectional controls,
zero-width and other format characters, soft hyphens, control characters, private-use and
unassigned code points: `canonical.HIDDEN_RANGES`) is **refused**, with a message naming
each character and where it is — never silently changed, because what the author typed
must be what is stored and signed. Text stored before this rule is not touched (its hash
stays); it is shown with visible markers instead (`canonical.mark_hidden`).
"""

from __future__ import annotations

import unicodedata

from flask_babel import lazy_gettext as _l

from consensus.domain.canonical import hidden_characters, markers_in
from consensus.services.errors import DomainError

SHOWN = 5  # characters named in one message; the rest are counted


def require_visible(text: str, *, field: str | None = None) -> str:
    """`text` itself, or a DomainError (on `field`) naming every hidden character."""
    found = hidden_characters(text)
    if found:
        places = [
            str(
                _l(
                    "%(char)s at line %(line)d, column %(column)d",
                    char=h.label,
                    line=h.line,
                    column=h.column,
                )
            )
            for h in found[:SHOWN]
        ]
        if len(found) > SHOWN:
            places.append(str(_l("and %(n)d more", n=len(found) - SHOWN)))
        raise DomainError(
            str(
                _l(
                    "The text contains characters that are invisible or change the order in"
                    " which text is shown: %(places)s. Remove them: what is shown must be"
                    " exactly what is stored and signed.",
                    places="; ".join(places),
                )
            ),
            field=field,
        )
    markers = markers_in(text)
    if markers:
        raise DomainError(
            str(
                _l(
                    "The text contains %(marker)s, the mark that stands for an invisible"
                    " character. Remove it.",
                    marker=markers[0],
                )
            ),
            field=field,
        )
    return text


def visible_line(text: str | None, *, field: str | None = None) -> str:
    """A short text (a title, a name, a reason): line breaks as LF, NFC, trimmed, and
    checked by `require_visible`."""
    value = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    return require_visible(unicodedata.normalize("NFC", value).strip(), field=field)
