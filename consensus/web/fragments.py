"""Rendered parts of long pages, cached per worker process and keyed by the audit log's head.

Every state change writes an audit event in the same transaction (a platform rule), so the
head of the audit log — its size and its frontier of subtree hashes — names exactly one state
of everything a page can show. A fragment rendered from data read *after* the head was read
is therefore correct for every later request that reads the same head: there is no
invalidation code to forget and no time-to-live to tune. A change anywhere moves the head
and every key with it; the old entries age out of the LRU.

What stays outside a fragment, and why:

- whatever depends on the viewer (forms for their organisation, buttons on their own
  comments): the caller adds the facts the fragment depends on to its key, or renders that
  part per request;
- whatever depends on the clock without an audit event (an edit window that passes): never
  cached, or keyed by the facts it depends on;
- the CSRF token: a fragment may contain this session's token (button forms); it is stored
  as a placeholder and put back per request.

The longest parts (a version's threads, a process page's body) are kept as bytes
(`part`) and put into the encoded page after it was rendered (`splice_parts`), so the
per-request work on them is a few byte searches, not copying and encoding a long string.

The cache is used only while the request has nothing uncommitted: no pending changes in the
ORM session and no INSERT/UPDATE/DELETE since the last commit or rollback (a request that
changed something renders from its own, uncommitted view of the data, which must never be
kept under a key that names the committed state).
Cached parts render without a viewer: while a part (or a cached value) is computed,
`current_user` (the template variable and flask_login's proxy alike) and the template's
`session` are a stand-in that raises ViewerInCachedPart on any use, so a part that reaches for
the viewer fails loudly instead of showing one person's view to the next. What a part needs
of the viewer is passed to it explicitly and is part of its key (consensus/web/pages/: one
module per cached page, a typed key per part). The one exception is `anonymous_page`, whose
key says the viewer is not logged in, which is all there is to know about them.

Setting CONSENSUS_FRAGMENT_CACHE_MB=0 switches it off. After restoring a backup, restart the
application: the cache lives in the workers' memory.
"""

from __future__ import annotations

import functools
import secrets
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

from flask import Flask, Response, current_app, g, has_request_context, request, session
from flask_babel import get_locale, get_timezone
from markupsafe import Markup
from sqlalchemy import Select, event, select

from consensus.extensions import db
from consensus.formats.markdown import Shown
from consensus.web.i18n import remembered_for_locale

T = TypeVar("T")
S = TypeVar("S", str, bytes)

_TOKEN_PLACEHOLDER = "\x00csrf-token\x00"  # noqa: S105  # nosec B105 - a marker, not a secret
_TOKEN_PLACEHOLDER_BYTES = _TOKEN_PLACEHOLDER.encode()
# Statements that may change data (a WITH may end in one: counted as a write, to be safe).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "WITH")
_MISSING = object()
_SLOT = "\x00slot:%s\x00"


class ViewerInCachedPart(RuntimeError):
    """A cached part (or value) asked who is looking: pass the fact explicitly, in its key."""


class _NoViewer:
    """Stands for the viewer while a cached part renders: every use of it raises."""

    __slots__ = ("_what",)

    def __init__(self, what: str) -> None:
        object.__setattr__(self, "_what", what)

    def _refuse(self, *_: object, **__: object) -> object:
        raise ViewerInCachedPart(
            f"a cached part used {object.__getattribute__(self, '_what')}: pass what it needs "
            "explicitly and put it in the part's key (consensus/web/pages/)"
        )

    def __getattr__(self, name: str) -> object:
        return self._refuse()

    __bool__ = __call__ = __iter__ = __len__ = __contains__ = __getitem__ = _refuse  # type: ignore[assignment]
    __str__ = __html__ = __eq__ = __hash__ = _refuse  # type: ignore[assignment]


_NO_USER = _NoViewer("current_user")
_NO_SESSION = _NoViewer("the session")
# What `g` holds about the viewer: flask_login's user (behind current_user) and this login's
# session row (consensus.web.auth).
_VIEWER_IN_G = {"_login_user": _NO_USER, "user_session": _NoViewer("the login session")}


@contextmanager
def viewerless() -> Iterator[None]:
    """Run a cached part's rendering (or computation) with no viewer to reach for.

    The language and time zone are settled first (their selectors read the user; both are
    in every key). Nested parts restore what the outer one had.
    """
    if not has_request_context():
        yield
        return
    _presentation()
    before = {name: g.get(name, _MISSING) for name in _VIEWER_IN_G}
    depth = g.get("_viewerless", 0)
    for name, stand_in in _VIEWER_IN_G.items():
        setattr(g, name, stand_in)
    g._viewerless = depth + 1
    try:
        yield
    finally:
        g._viewerless = depth
        for name, value in before.items():
            if value is _MISSING:
                g.pop(name, None)
            else:
                setattr(g, name, value)


def _hide_session() -> dict[str, object]:
    """A context processor: templates rendered for a cached part see no session."""
    return {"session": _NO_SESSION} if g.get("_viewerless") else {}


def _without_viewer(render: Callable[[], T]) -> Callable[[], T]:
    def run() -> T:
        with viewerless():
            return render()

    return run


# Per worker: a worker boots at about 98 MiB and must stay under 120 (issue 23). Serving every
# page of the scale world as 64 representatives filled 5.3 MiB with 93 % hits
# (benchmarks/page_memory.py --viewers 64), so 8 MiB keeps all of that with room to spare.
DEFAULT_MB = 8
_ENTRY_BYTES = 200  # an entry's key tuple and its place in the ordered map, roughly


def memory_size(value: str | bytes) -> int:
    """What a text or bytes really takes in memory (a str with one non-ASCII character
    takes two or four bytes a character, not one), plus its entry in the cache."""
    return sys.getsizeof(value) + _ENTRY_BYTES


class LRU:
    """A least-recently-used map bounded by the memory its values take, safe for threaded
    servers."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._items: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, default: object = None) -> object:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return default
            self._items.move_to_end(key)
            self.hits += 1
            return found[0]

    @property
    def largest(self) -> int:
        """The largest entry it keeps: one page must not flush everything else."""
        return self.max_bytes // 4

    def put(self, key: Hashable, value: object, size: int) -> None:
        if size > self.largest:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.used -= old[1]
            self._items[key] = (value, size)
            self.used += size
            while self.used > self.max_bytes and self._items:
                _, (_, dropped) = self._items.popitem(last=False)
                self.used -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.used = 0

    def __len__(self) -> int:
        return len(self._items)


def init_app(app: Flask) -> None:
    mib = int(app.config.get("FRAGMENT_CACHE_MB", DEFAULT_MB))
    # Off while templates reload on change (debug): a cached part would outlive its template.
    if app.debug or app.config.get("TEMPLATES_AUTO_RELOAD"):
        mib = 0
    app.extensions["consensus.web.fragments"] = LRU(mib * 1024 * 1024) if mib > 0 else None
    app.jinja_env.globals["fragment_slot"] = slot
    app.context_processor(_hide_session)

    @app.teardown_request
    def forget_at_teardown(_error: BaseException | None) -> None:
        # `g` belongs to the app context, which may outlive the request (tests, CLI).
        forget_state()
        g.pop("_fragment_writes", None)
        g.pop("_fragment_parts", None)
        g.pop("_viewerless", None)

    app.after_request(splice_parts)

    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def note_writes(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if has_request_context() and statement[:64].lstrip()[:7].upper().startswith(_WRITES):
            g._fragment_writes = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def transaction_ended(_conn: object) -> None:
        if has_request_context():
            g.pop("_fragment_writes", None)
            forget_state()  # a commit may have moved the head


def forget_state() -> None:
    """Read the head again at the next use (after this request committed a change)."""
    g.pop("_fragment_state", None)


def _cache() -> LRU | None:
    return current_app.extensions.get("consensus.web.fragments")  # type: ignore[no-any-return]


def state() -> tuple[int, bytes] | None:
    """The audit log's head as this request sees it, or None when caching cannot be used.

    Read once per request and before the data of any fragment: a fragment is then at least as
    new as its key, on SQLite (one snapshot per transaction) and on PostgreSQL (read
    committed: a later statement never sees less than an earlier one).
    """
    if not has_request_context() or _cache() is None or g.get("_fragment_writes"):
        return None
    session = db.session
    if session.new or session.dirty or session.deleted:
        return None
    if "_fragment_state" not in g:
        # Through the session's connection (its transaction, its snapshot) without the ORM's
        # execution layer: two columns of one row, on every page.
        row = session.connection().execute(_head_statement()).first()
        g._fragment_state = (int(row[0]), bytes(row[1])) if row is not None else (0, b"")
    return g._fragment_state  # type: ignore[no-any-return]


@functools.cache
def _head_statement() -> Select[tuple[int, bytes]]:
    """Built once (models import this module): a reused statement keeps its cache key."""
    from consensus.models import AuditLogHead

    return select(AuditLogHead.size, AuditLogHead.frontier).where(AuditLogHead.id == 1)


def key(name: str, *parts: Hashable) -> Hashable | None:
    """The key of a cached part for this request (None: do not cache)."""
    head = state()
    if head is None:
        return None
    # The mount point too: a part's addresses start with it (an app behind a path prefix).
    return (name, parts, head, *_presentation(), request.script_root)


def presentation() -> tuple[str, str]:
    """Language and time zone as text, once per request (a page asks for several keys)."""
    return _presentation()


def _presentation() -> tuple[str, str]:
    """Language and time zone as text, once per request (a page asks for several keys)."""
    return remembered_for_locale(
        "consensus_presentation", lambda: (str(get_locale()), str(get_timezone()))
    )


def get(found_key: Hashable | None) -> object | None:
    cache = _cache()
    return cache.get(found_key) if found_key is not None and cache is not None else None


def put(found_key: Hashable | None, text: str | bytes | tuple[bytes, ...]) -> None:
    """Keep a text, bytes or chunks of bytes (no CSRF token in it: use html() for rendered
    HTML)."""
    cache = _cache()
    if found_key is not None and cache is not None:
        if isinstance(text, tuple):
            size = sys.getsizeof(text) + sum(memory_size(chunk) for chunk in text)
        else:
            size = memory_size(text)
        cache.put(found_key, text, size)


def largest_entry() -> int:
    """The largest value (in bytes of memory) the cache would keep; 0 when it is off."""
    cache = _cache()
    return cache.largest - _ENTRY_BYTES if cache is not None else 0


def value(
    name: str, *parts: Hashable, compute: Callable[[], T], size: int | Callable[[T], int] = 1024
) -> T:
    """A computed value (plain data, never ORM objects; None too) for this state of the
    database. `size` is its size in bytes for the cache's bound, or a function that tells it
    from the value (for values whose size depends on the data)."""
    found_key = key(name, *parts)
    cache = _cache()
    compute = _without_viewer(compute)
    if found_key is None or cache is None:
        return compute()
    found = cache.get(found_key, _MISSING)
    if found is not _MISSING:
        return found  # type: ignore[return-value]
    result = compute()
    cache.put(found_key, result, (size(result) if callable(size) else size) + _ENTRY_BYTES)
    return result


def slot(name: str) -> Markup:
    """A place in a cached fragment for a per-viewer part (see `html(slots=…)`)."""
    return rendered(_SLOT % name)


def _stored(found_key: Hashable | None, render: Callable[[], S], token: S, placeholder: S) -> S:
    """The fragment for this request (its CSRF token put back), from the cache or rendered
    and kept with the token replaced by `placeholder`; text or bytes alike."""
    cache = _cache()
    if found_key is None or cache is None:
        return render()
    found = cache.get(found_key)
    if isinstance(found, type(placeholder)):
        if token and placeholder in found:
            return found.replace(placeholder, token)
        return found
    fresh = render()
    stored = fresh.replace(token, placeholder) if token else fresh
    cache.put(found_key, stored, memory_size(stored))
    return fresh


def html(
    name: str,
    *parts: Hashable,
    render: Callable[[], str],
    slots: Mapping[str, Callable[[], str]] | None = None,
) -> Markup:
    """Rendered HTML for this state of the database, viewer facts in `parts`.

    `slots` fill the places the fragment marked with `slot(name)` for this viewer (their
    own forms, say): rendered per request and never stored.
    """
    found_key = key(name, *parts)
    token = _session_token() if found_key is not None else ""
    draw = _without_viewer(render)
    return _filled(_stored(found_key, lambda: str(draw()), token, _TOKEN_PLACEHOLDER), slots)


class Part:
    """A long rendered part of a page, kept as UTF-8 bytes until the response is written.

    A template that shows it (`{{ part }}`) writes a marker, and `splice_parts` puts the
    bytes in its place after the page around it was rendered and encoded. A page of
    several hundred kilobytes is then never copied, searched or encoded as a whole
    Python string per request: the per-request work on it is a few byte searches.
    Use it only for what a view passes to its page template, never inside another
    fragment (a marker belongs to one request).
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __html__(self) -> str:
        found: list[bytes] = g.setdefault("_fragment_parts", [])
        found.append(self.data)
        return _part_marker(len(found) - 1)

    def __str__(self) -> str:
        return self.data.decode("utf-8")


def _part_marker(index: int) -> str:
    if "_fragment_nonce" not in g:
        # Unguessable per request: user text can never spell a marker.
        g._fragment_nonce = secrets.token_hex(8)
    return f"\x00part:{g._fragment_nonce}:{index}\x00"


def part(
    name: str,
    *parts: Hashable,
    render: Callable[[], str],
    slots: Mapping[str, Callable[[], str]] | None = None,
    fill: Callable[[bytes], bytes] | None = None,
) -> Part:
    """As html(), kept as bytes (see Part); `fill` may change the bytes for this viewer."""
    found_key = key(name, *parts)
    token = _session_token().encode() if found_key is not None else b""
    draw = _without_viewer(render)
    data = _stored(found_key, lambda: str(draw()).encode("utf-8"), token, _TOKEN_PLACEHOLDER_BYTES)
    for slot_name, fill_slot in (slots or {}).items():
        marker = (_SLOT % slot_name).encode()
        if marker in data:
            data = data.replace(marker, str(fill_slot()).encode("utf-8"))
    return Part(fill(data) if fill is not None else data)


def splice_parts(response: Response) -> Response:
    """Put the parts a page showed (Part) where their markers are (an after_request hook)."""
    found: list[bytes] | None = g.pop("_fragment_parts", None)
    if not found or response.is_streamed or response.direct_passthrough:
        return response
    prefix = f"\x00part:{g._fragment_nonce}:".encode()
    data = response.get_data()
    if prefix not in data:
        return response
    pieces = data.split(prefix)
    out = [pieces[0]]
    for piece in pieces[1:]:
        index, _, rest = piece.partition(b"\x00")
        out.append(found[int(index)])
        out.append(rest)
    response.set_data(b"".join(out))
    return response


def _filled(text: str, slots: Mapping[str, Callable[[], str]] | None) -> Markup:
    for slot_name, fill in (slots or {}).items():
        marker = _SLOT % slot_name
        if marker in text:
            text = text.replace(marker, str(fill()))
    return rendered(text)


def anonymous_page(name: str) -> Callable[[Callable[..., str]], Callable[..., str | bytes]]:
    """Cache a whole page for visitors who are not logged in (the public pages).

    Everyone who is not logged in sees the same page for the same address, language and
    state of the data; only the CSRF token of the language switch is their own. Logged-in
    visitors (their name is in the header) and visitors with a message waiting (flash) get
    the page rendered as usual. A visitor who is not logged in gets the UTF-8 bytes of the
    page (the response body as it is sent).
    """

    def decorate(view: Callable[..., str]) -> Callable[..., str | bytes]:
        @functools.wraps(view)
        def wrapper(*args: object, **kwargs: object) -> str | bytes:
            from flask_login import current_user

            if current_user.is_authenticated or session.get("_flashes"):
                return view(*args, **kwargs)
            return _anonymous_html(
                "page:" + name, request.full_path, render=lambda: view(*args, **kwargs)
            )

        return wrapper

    return decorate


def _anonymous_html(name: str, path: str, render: Callable[[], str]) -> bytes:
    """A whole page for a visitor who is not logged in: the key's fact ("anonymous") is all
    there is to the viewer, so the layout may read current_user (its header says "log in").

    Kept and answered as UTF-8 bytes, encoded once per state of the data: a page with one
    character outside Latin-1 ("✓") is a str of two bytes a character, which every reader
    had encoded again (0.2 ms for the 300 kB public outcome page) and the cache held at
    twice the page's size."""
    found_key = key(name, "anonymous", path)
    token = _session_token().encode() if found_key is not None else b""
    return _stored(
        found_key, lambda: str(render()).encode("utf-8"), token, _TOKEN_PLACEHOLDER_BYTES
    )


def rendered(text: str) -> Markup:
    """Mark what render_template returned (Jinja with autoescape: every value in it escaped
    or itself sanitised) as HTML, so another template can include it as it is.

    The one place besides consensus.formats.markdown that makes Markup from a variable: only
    template output may come here, never user text (the repository's semgrep rule allows
    this module). Shown: every value in it went through the environment's `finalize`
    (consensus.formats.markdown.visible), so a page that includes it does not scan it again.
    """
    return Shown(text)


def _session_token() -> str:
    """This session's CSRF token (the one the page's forms carry), or "" outside a request."""
    from flask_wtf.csrf import generate_csrf

    if g.get("shared_cache_page"):
        # A page for a shared cache has no token (it would start a session): see
        # consensus.web.shared_cache.
        return ""
    try:
        return str(generate_csrf())
    except Exception:  # no secret key or no session: nothing to protect in the fragment
        return ""
