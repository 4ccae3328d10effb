"""Translations in templates without Flask-Babel's per-call lookups.

Flask-Babel installs template callables that resolve the request's locale and catalog on
every `_()` (four `g` look-ups and a locale-to-string conversion each), and Jinja's
new-style gettext adds two `Context.call` layers on top. A page with a table says `_()`
hundreds of times. These callables keep the exact semantics (the request's catalog,
Markup escaping of the variables under autoescape, `%` formatting even without
variables) but look the catalog up once per request and locale (`remembered_for_locale`:
next to Flask-Babel's own cached locale, so `flask_babel.refresh()`, a changed language
mid-request, still switches it).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, g
from flask_babel import get_translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

T = TypeVar("T")


def remembered_for_locale(name: str, compute: Callable[[], T]) -> T:
    """`compute()` once per request and language/time zone: kept next to Flask-Babel's own
    cached locale and zone, so `flask_babel.refresh()` (a changed language mid-request)
    makes it compute again."""
    babel_context = getattr(g, "_flask_babel", None) if g else None
    if babel_context is None:
        return compute()
    known = babel_context.__dict__
    remembered = known.get(name)
    if (
        remembered is not None
        and remembered[0] is known.get("babel_locale")
        and remembered[1] is known.get("babel_tzinfo")
    ):
        return remembered[2]  # type: ignore[no-any-return]
    value = compute()  # resolves (and caches) what it needs of the locale and zone
    setattr(babel_context, name, (known.get("babel_locale"), known.get("babel_tzinfo"), value))
    return value


def _catalog() -> Any:
    return remembered_for_locale("consensus_catalog", get_translations)


def _finish(context: Context, text: str, variables: dict[str, Any]) -> str:
    if context.eval_ctx.autoescape:
        # The message comes from our own catalog (as in Jinja's gettext); the variables are
        # escaped by Markup's %.
        text = Markup(text)  # noqa: S704  # nosec B704  # nosemgrep: consensus-markup-on-dynamic-text
    return text % variables  # as Jinja's own new-style gettext: always formatted


@pass_context
def gettext(__context: Context, __string: str, **variables: Any) -> str:
    if not variables and __context.eval_ctx.autoescape:
        # Most calls: a fixed text in an HTML template, the same for every request in a
        # language: translated and formatted once per catalog.
        return _plain(__string)
    return _finish(__context, _catalog().ugettext(__string), variables)


# Per catalog (one per language, loaded once by Flask-Babel and kept; weakly held, so a
# reloaded catalog takes its texts with it): the template texts without variables.
_PLAIN: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def _plain(string: str) -> str:
    catalog = _catalog()
    done = _PLAIN.setdefault(catalog, {})
    found = done.get(string)
    if found is None:
        # The message comes from our own catalog; `%` as Jinja's gettext: always formatted.
        text = Markup(catalog.ugettext(string))  # noqa: S704  # nosec B704  # nosemgrep: consensus-markup-on-dynamic-text
        found = done[string] = text % {}
    return found


@pass_context
def ngettext(
    __context: Context, __singular: str, __plural: str, __num: int, **variables: Any
) -> str:
    variables.setdefault("num", __num)
    return _finish(__context, _catalog().ungettext(__singular, __plural, __num), variables)


@pass_context
def pgettext(__context: Context, __string_ctx: str, __string: str, **variables: Any) -> str:
    return _finish(__context, _catalog().upgettext(__string_ctx, __string), variables)


@pass_context
def npgettext(
    __context: Context,
    __string_ctx: str,
    __singular: str,
    __plural: str,
    __num: int,
    **variables: Any,
) -> str:
    variables.setdefault("num", __num)
    text = _catalog().unpgettext(__string_ctx, __singular, __plural, __num)
    return _finish(__context, text, variables)


def init_app(app: Flask) -> None:
    """Replace Flask-Babel's template callables (after `babel.init_app`)."""
    app.jinja_env.globals.update(
        gettext=gettext, _=gettext, ngettext=ngettext, pgettext=pgettext, npgettext=npgettext
    )
