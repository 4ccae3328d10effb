"""User-authored text: restricted Markdown rendered by markdown-it-py, sanitised by nh3.

Raw HTML is disabled in the parser and anything that still looks like markup is
removed by nh3 with an allow-list, so no script, style, event handler or `javascript:`
link can survive.

What you see is what you sign: nothing of the text may vanish from what is shown. So
character references (`&#x202E;`, `&shy;`) are shown as typed instead of being decoded
into characters the text itself could not hold, and link reference definitions
(`[x]: https://…`, which Markdown would drop) are shown as the text they are. The
template environment passes every value it outputs through `visible()`, which shows any
hidden character (stored before the input rule) as a marker ⟨U+202E⟩ — in pages, mails
and the PDFs alike.
"""

from __future__ import annotations

import html as html_module
import re

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markupsafe import Markup

from consensus.domain.canonical import mark_hidden
from consensus.formats.memo import bounded_memo

_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable("table")
    .disable(["image", "entity", "reference"])
)


def _link_close(self, tokens, idx, options, env):  # type: ignore[no-untyped-def]
    """After a link whose text is not its address, show the address: a link target is
    part of the signed text, so it must be readable on paper too."""
    depth, start = 0, idx
    while start > 0:
        start -= 1
        kind = tokens[start].type
        if kind == "link_close":
            depth += 1
        elif kind == "link_open":
            if depth == 0:
                break
            depth -= 1
    opening = tokens[start]
    html = self.renderToken(tokens, idx, options, env)
    if opening.markup == "autolink":
        return html
    target = _md.normalizeLinkText(str(opening.attrGet("href") or ""))
    shown = "".join(t.content for t in tokens[start + 1 : idx] if t.type in {"text", "code_inline"})
    if not target or shown == target:
        return html
    return f"{html} ({escapeHtml(target)})"


_md.add_render_rule("link_close", _link_close)

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "strong",
    "em",
    "a",
    "blockquote",
    "code",
    "pre",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
}


def render_markdown(source: str, top: int | None = None) -> Markup:
    """Render restricted Markdown to safe HTML (a pure function of the text, so memoised:
    a long thread or text is rendered once per worker, not once per page view).

    `top`: the level the text's highest heading gets, so a text placed under an <h3> starts
    at <h4> and the page's heading order never skips a level (WCAG 1.3.1)."""
    html = _render(source or "")
    return html if top is None else _shift_headings(html, top)


_HEADING = re.compile(r"<(/?)h([1-6])>")


@bounded_memo(1024 * 1024)
def _shift_headings(html: Markup, top: int) -> Markup:
    levels = [int(m.group(2)) for m in _HEADING.finditer(html)]
    if not levels:
        return html
    shift = top - min(levels)
    shifted = _HEADING.sub(lambda m: f"<{m.group(1)}h{min(6, int(m.group(2)) + shift)}>", html)
    # Only the heading tags of HTML that nh3 sanitised (and marked) are renumbered.
    return Shown(shifted) if type(html) is Shown else Markup(shifted)  # noqa: S704  # nosec B704  # nosemgrep: consensus-markup-on-dynamic-text


@bounded_memo(2 * 1024 * 1024)
def _render(source: str) -> Markup:
    html = _md.render(source)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "ol": {"start"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    # Sanitised by nh3 just above; hidden characters marked once here, not on every page
    # that shows the (memoised) text.
    return Shown(mark_hidden(clean))


_BLOCK_END = re.compile(r"</(?:p|h[1-6]|li|blockquote|pre|tr|td|th)>|<br\s*/?>|<hr\s*/?>")


@bounded_memo(1024 * 1024)
def plain_text(source: str) -> str:
    """What the rendered Markdown says, without markup: for excerpts and other places that
    show text, not layout ("**breed**" reads as "breed", never with its asterisks)."""
    html = _BLOCK_END.sub(" ", _md.render(source or ""))
    text = html_module.unescape(nh3.clean(html, tags=set()))
    return " ".join(text.split())


def excerpt(source: str, length: int = 220) -> str:
    """The start of a Markdown text as plain text, cut at a word with an ellipsis."""
    text = plain_text(source)
    if len(text) <= length:
        return text
    cut = text[: length - 1].rsplit(" ", 1)[0].rstrip(" ,;:.")
    return f"{cut}…"


class Shown(Markup):
    """HTML whose hidden characters are already shown as markers: a template's output (every
    value in it went through `visible`) or a text that went through mark_hidden. `visible`
    passes it as it is, so a cached part of a few hundred kilobytes is not scanned again on
    every request that includes it (on the round page that scan was a fifth of the time).

    Whatever is made from it — concatenation, %, join, replace, format, slices — is plain
    Markup (its `__class__` answers Markup, which markupsafe's methods build their results
    with), so text added to it is scanned as usual when it is shown."""

    __slots__ = ()

    @property  # type: ignore[misc]
    def __class__(self) -> type[Markup]:  # noqa: D105
        return Markup


def visible(value: object) -> object:
    """The template environment's `finalize`: every output value with its hidden characters
    (canonical.HIDDEN_RANGES) shown as markers. Markup stays Markup (a marker holds no
    character that HTML treats specially); everything else is escaped after this as usual.
    Shown passes unchanged: it was marked when it was made."""
    if type(value) is Shown:
        return value
    if isinstance(value, str):
        marked = mark_hidden(value)
        if marked is not value:
            return Markup(marked) if isinstance(value, Markup) else marked  # noqa: S704  # nosec B704
    return value
