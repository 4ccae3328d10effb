"""Cached pages: every use of the fragment cache (consensus.web.fragments) lives in this package,
one module per cached page.

Each cached part declares its name, its template and the type of its key: a frozen
dataclass holding every fact of the viewer the part depends on (whether they manage the
process, the organisations they speak for, their own comments...). The audit log's head
(the state of the data), the language and the time zone are added to every key by
consensus.web.fragments. A part renders without a viewer: `current_user` and the session raise
ViewerInCachedPart while it renders, so what it needs of the viewer must come in through its
key and context. Views compute the viewer's facts and call the page module.

tests/web/test_page_cache.py renders every GET route of the authorization matrix for every
kind of user with a cold cache and again after the others have filled it: a fact missing
from a key shows as a difference there.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, is_dataclass
from typing import Generic, TypeVar

from flask import render_template
from markupsafe import Markup

from consensus.web import fragments

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

Context = Callable[[], Mapping[str, object]]
Slots = Mapping[str, Callable[[], str]]


def _checked(name: str, key_type: type, key: object) -> object:
    if type(key) is not key_type:
        raise TypeError(f"{name} is keyed by {key_type.__name__}, not {type(key).__name__}")
    return key


def declare_key(cls: type[K]) -> type[K]:
    """Check at import that a key type is a frozen dataclass (hashable, compared by value)."""
    params = getattr(cls, "__dataclass_params__", None)
    if not is_dataclass(cls) or params is None or not params.frozen:
        raise TypeError(f"{cls.__name__}: a cache key must be a frozen dataclass")
    return cls


@dataclass(frozen=True)
class CachedPart(Generic[K]):
    """A part of a page kept for the state of the data and the viewer facts in its key."""

    name: str
    template: str
    key_type: type[K]

    def __post_init__(self) -> None:
        declare_key(self.key_type)

    def _render(self, context: Context) -> Callable[[], str]:
        return lambda: render_template(self.template, **context())

    def html(self, key: K, context: Context, *, slots: Slots | None = None) -> Markup:
        """The rendered part (`slots`: per-viewer places, rendered per request, never kept)."""
        return fragments.html(
            self.name,
            _checked(self.name, self.key_type, key),
            render=self._render(context),
            slots=slots,
        )

    def part(
        self,
        key: K,
        context: Context,
        *,
        slots: Slots | None = None,
        fill: Callable[[bytes], bytes] | None = None,
    ) -> fragments.Part:
        """As html(), kept as bytes and spliced into the encoded page (fragments.Part)."""
        return fragments.part(
            self.name,
            _checked(self.name, self.key_type, key),
            render=self._render(context),
            slots=slots,
            fill=fill,
        )


@dataclass(frozen=True)
class CachedValue(Generic[K]):
    """Plain data (never ORM objects) kept for the state of the data and its key."""

    name: str
    key_type: type[K]
    size: int | Callable[[T], int] = 1024  # bytes, or a function of the value

    def __post_init__(self) -> None:
        declare_key(self.key_type)

    def get(self, key: K, compute: Callable[[], T]) -> T:
        return fragments.value(
            self.name, _checked(self.name, self.key_type, key), compute=compute, size=self.size
        )
