"""CSV files the platform writes: every cell opens as text in a spreadsheet.

A spreadsheet program treats a cell that begins with `=`, `+`, `-` or `@` (and, after
trimming, one that begins with a tab or a line break) as a formula: `=HYPERLINK(…)` leaks
data on a click, `+cmd|' /C calc'!A0` starts programs through DDE. Text in our exports is
written by participants, so per OWASP's "CSV Injection" guidance every text cell that could
start a formula gets a leading apostrophe (`'=SUM(1+1)`: shown, never run), every field is
quoted and double quotes are doubled. The full-width forms (＝ ＋ － ＠), which some programs
fold into their ASCII counterparts, are treated the same. Numbers stay numbers.

Hidden characters stored before the input rule (bidirectional controls, zero-width
characters) are written as their visible markers ⟨U+202E⟩, as on the pages.

Every CSV writer of the platform goes through `writer()` (a semgrep rule refuses
`csv.writer` and `csv.DictWriter` anywhere else).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from consensus.domain.canonical import mark_hidden

# First characters that make a spreadsheet read a cell as a formula (or hide that it is one).
FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
# Leading characters a spreadsheet may trim before it looks at the first one.
_TRIMMED = " \t\r\n\u00a0\u3000"


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


def safe_cell(value: object) -> object:
    """One cell as it is written: numbers as they are, everything else as text that
    cannot start a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = mark_hidden(str(value))
    if text and (text[0] in FORMULA_START or text.lstrip(_TRIMMED)[:1] in FORMULA_START):
        return "'" + text
    return text


class SafeWriter:
    """csv.writer with every field quoted and every cell through `safe_cell`."""

    def __init__(self, out: _Writable, **options: Any) -> None:
        options.setdefault("quoting", csv.QUOTE_ALL)
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: _Writable, **options: Any) -> SafeWriter:
    """The platform's CSV writer (use it for every export)."""
    return SafeWriter(out, **options)
