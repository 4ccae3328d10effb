"""Every string the UI can show has a Dutch translation, and the compiled catalog is current."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "consensus" / "translations" / "nl" / "LC_MESSAGES"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}


def _msgid(message_id: str | tuple[str, ...]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def _text(string: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (string,) if isinstance(string, str) else tuple(string)


def _extracted() -> set[str]:
    found: set[str] = set()
    sources = [
        (ROOT / "consensus", "**.py", "python"),
        (ROOT / "templates", "**.html", "jinja2"),
        (ROOT / "templates", "**.txt", "jinja2"),
    ]
    for directory, pattern, method in sources:
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(directory),
            method_map=[(pattern, method)],
            keywords=KEYWORDS,
        ):
            found.add(_msgid(message))
    return found


def test_every_ui_string_has_a_dutch_translation():
    with (CATALOG / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="nl")
    translated = {
        _msgid(m.id)
        for m in catalog
        if m.id and not m.fuzzy and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }
    missing = sorted(_extracted() - translated)
    assert not missing, f"untranslated (run scripts/update-translations): {missing[:20]}"


def test_compiled_catalog_matches_the_po_file():
    with (CATALOG / "messages.po").open("rb") as handle:
        po = {
            _msgid(m.id): _text(m.string)
            for m in read_po(handle, locale="nl")
            if m.id and not m.fuzzy and all(_text(m.string))
        }
    with (CATALOG / "messages.mo").open("rb") as handle:
        mo = {_msgid(m.id): _text(m.string) for m in read_mo(handle) if m.id}
    mo = {key: value for key, value in mo.items() if key in po}
    assert po == mo, "messages.mo is stale: run scripts/update-translations"
