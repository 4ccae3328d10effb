"""User-authored text: restricted Markdown rendered by markdown-it-py, sanitised by nh3.

Raw HTML is disabled in the parser and anything that still looks like markup is
removed by nh3 with an allow-list, so no script, style, event handler or `javascript:`
link can survive.
"""

from __future__ import annotations

import html as html_module
import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable("table")
    .disable(["image"])
)

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


@lru_cache(maxsize=4096)
def _shift_headings(html: Markup, top: int) -> Markup:
    levels = [int(m.group(2)) for m in _HEADING.finditer(html)]
    if not levels:
        return html
    shift = top - min(levels)
    shifted = _HEADING.sub(lambda m: f"<{m.group(1)}h{min(6, int(m.group(2)) + shift)}>", html)
    # Only the heading tags of HTML that nh3 sanitised are renumbered.
    return Markup(shifted)  # noqa: S704  # nosec B704  # nosemgrep: consensus-markup-on-dynamic-text


@lru_cache(maxsize=8192)
def _render(source: str) -> Markup:
    html = _md.render(source)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "ol": {"start"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)  # noqa: S704 - sanitised by nh3 just above  # nosec B704


_BLOCK_END = re.compile(r"</(?:p|h[1-6]|li|blockquote|pre|tr|td|th)>|<br\s*/?>|<hr\s*/?>")


@lru_cache(maxsize=4096)
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
