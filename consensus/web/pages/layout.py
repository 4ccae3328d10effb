"""The layout's header (brand, who is signed in, language switch, main navigation) and
footer: the same for every page a person opens, so rendered once per viewer and kept.

They are about two thirds of the template work of a simple page (some 2,000 Python calls
a request: thirty translated texts, a dozen addresses, the navigation's conditions).
base.html asks for them with the viewer's facts; the part never reads the viewer itself.
What differs per request stays out of the kept HTML: the CSRF token (put back by
consensus.web.fragments) and the address the language switch returns to (a slot).
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

from consensus.formats.markdown import visible
from consensus.web import fragments
from consensus.web.pages import CachedPart, declare_key


@declare_key
@dataclass(frozen=True)
class HeaderKey:
    signed_in: bool
    name: str  # what "Signed in as" shows
    is_admin: bool
    unread: int  # the Messages link's count
    section: str  # the navigation item marked as the current page
    shared: bool  # a page for a shared cache: no session, a language switch by GET


@declare_key
@dataclass(frozen=True)
class FooterKey:
    """The footer depends on nothing but the language (in every key)."""


HEADER = CachedPart("layout-header", "layout/header.html", HeaderKey)
FOOTER = CachedPart("layout-footer", "layout/footer.html", FooterKey)

# Signed in: the navigation item of the endpoint (exact name, or a blueprint's prefix).
_SIGNED_IN_SECTIONS = (
    ("main.index", "dashboard"),
    ("processes.", "processes"),
    ("bodies.", "bodies"),
    ("admin.", "admin"),
    ("notifications.inbox", "inbox"),
    ("auth.account", "account"),
)
_SIGNED_OUT_SECTIONS = (("main.index", "home"), ("auth.login", "login"))


def section(endpoint: str, signed_in: bool) -> str:
    for prefix, name in _SIGNED_IN_SECTIONS if signed_in else _SIGNED_OUT_SECTIONS:
        if endpoint == prefix or (prefix.endswith(".") and endpoint.startswith(prefix)):
            return name
    return ""


def header(
    *,
    signed_in: bool,
    name: str,
    is_admin: bool,
    unread: int,
    endpoint: str,
    shared: bool,
    token: str,
    next_path: str,
) -> Markup:
    key = HeaderKey(
        signed_in=signed_in,
        name=name if signed_in else "",
        is_admin=is_admin and signed_in,
        unread=unread if signed_in else 0,
        section=section(endpoint, signed_in),
        shared=shared,
    )
    return HEADER.html(
        key,
        lambda: {"key": key, "token": token, "next_value": fragments.slot("next")},
        # As `{{ request.full_path }}` would show it: hidden characters marked, escaped.
        slots={"next": lambda: str(escape(visible(next_path)))},
    )


def footer() -> Markup:
    return FOOTER.html(FooterKey(), dict)
