"""Public pages that a shared cache (nginx's proxy_cache, a CDN) may keep (issue 23).

A public page (the published outcomes, their boards and rules) is the same for every reader
who is not logged in, for one language and one state of the data. For such a reader the
page is answered

- without a session: no session cookie is set (the page has no form that needs a CSRF
  token: its language switch is a GET to `main.choose_locale`, which keeps the choice in a
  cookie of its own, `LOCALE_COOKIE`, and changes nothing on the server);
- with `Cache-Control: public, max-age=PUBLIC_CACHE_SECONDS` (configurable; a new stance or
  signature shows on a public page within that many seconds behind a shared cache);
- with validators derived from the audit log's head, which names exactly one state of
  everything a page can show (see consensus.web.fragments): a weak `ETag` (the head, the
  language and time zone, the address) and `Last-Modified` (the time of the last audit
  event). A conditional GET whose validator still holds is answered 304 before the page is
  rendered or even read.

`Vary: Cookie` stays: the language comes from a cookie. A shared cache in front keys its
entries by the language cookie and passes requests with a session cookie through (see
docs/operations.md, "A shared cache in front").

Logged-in readers (their name is in the page's header) and readers with a message waiting
get the page as before, with `Cache-Control: private, no-cache` or the logged-in pages'
`no-store` (consensus.web.security).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask, Response, current_app, g, make_response, request, session
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from consensus.extensions import db
from consensus.web import fragments

LOCALE_COOKIE = "consensus_locale"
LOCALES = ("nl", "en")


def init_app(app: Flask) -> None:
    @app.context_processor
    def shared_page() -> dict[str, bool]:
        # base.html: no CSRF token (it would start a session) and a GET language switch.
        return {"shared_cache_page": bool(g.get("shared_cache_page"))}

    @app.teardown_request
    def forget_shared_page(_error: BaseException | None) -> None:
        # When a request runs inside an outer app context (tests, CLI helpers), `g` outlives
        # it: the next request, perhaps a logged-in one, must not count as a shared page
        # (its cached parts would keep a token of their own instead of the placeholder).
        g.pop("shared_cache_page", None)


def cookie_locale() -> str | None:
    """The language an anonymous reader chose with the GET switch, if any."""
    chosen = request.cookies.get(LOCALE_COOKIE)
    return chosen if chosen in LOCALES else None


def remember_locale(response: Response, locale: str) -> None:
    """Keep the reader's language in its own cookie (a preference, not a session)."""
    response.set_cookie(
        LOCALE_COOKIE,
        locale,
        max_age=365 * 24 * 3600,
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
        samesite="Lax",
    )


# What a public page shows besides the audit log's state, and when that last changed.
Extra = Callable[[], tuple[bytes, datetime | None]]


def public(view: Callable[..., ResponseReturnValue]) -> Callable[..., Response]:
    """Make a public view's answers to readers who are not logged in cacheable by anyone."""
    return _shared(view, None)


def public_depending_on(
    extra: Extra,
) -> Callable[[Callable[..., ResponseReturnValue]], Callable[..., Response]]:
    """`public` for a page that also shows something recorded without an audit event (the
    transparency page's latest checkpoint: it signs the log, an event would change what it
    signs). `extra` names that thing and when it changed; both validators carry it, so a
    new checkpoint is never answered 304."""
    return lambda view: _shared(view, extra)


def _shared(
    view: Callable[..., ResponseReturnValue], extra: Extra | None
) -> Callable[..., Response]:
    @functools.wraps(view)
    def wrapper(*args: object, **kwargs: object) -> Response:
        from flask_login import current_user

        if current_user.is_authenticated or session.get("_flashes"):
            response = make_response(view(*args, **kwargs))
            response.headers.setdefault("Cache-Control", "private, no-cache")
            return response
        g.shared_cache_page = True
        etag, modified = _validators(*(extra() if extra is not None else (b"", None)))
        if _still_valid(etag, modified):
            response = current_app.response_class(status=304)
        else:
            response = make_response(view(*args, **kwargs))
        if response.status_code in (200, 304):
            response.set_etag(etag, weak=True)
            response.last_modified = modified
            seconds = int(current_app.config.get("PUBLIC_CACHE_SECONDS", 60))
            response.headers["Cache-Control"] = f"public, max-age={seconds}"
        return response

    return wrapper


def _still_valid(etag: str, modified: datetime | None) -> bool:
    """A conditional GET (RFC 9110 13.2.2): If-None-Match first; If-Modified-Since only
    without it."""
    if request.method not in ("GET", "HEAD"):
        return False
    if request.if_none_match:
        return request.if_none_match.contains_weak(etag)
    since = request.if_modified_since
    return since is not None and modified is not None and modified <= since


def validators(reader: bytes = b"") -> tuple[str, datetime | None]:
    """A weak ETag and Last-Modified for this request's answer in this state of the data
    (`reader`: whatever else the answer depends on, e.g. the API token asking). Read before
    the answer's data, so the validators are never newer than the answer."""
    return _validators(reader)


def still_valid(etag: str, modified: datetime | None) -> bool:
    return _still_valid(etag, modified)


def _validators(
    reader: bytes = b"", changed: datetime | None = None
) -> tuple[str, datetime | None]:
    size, frontier = _head()
    locale, zone = fragments.presentation()
    digest = hashlib.sha256(
        b"\x00".join(
            [
                str(size).encode(),
                frontier,
                locale.encode(),
                zone.encode(),
                request.path.encode(),
                request.query_string,
                *([reader] if reader else []),
            ]
        )
    ).hexdigest()[:32]
    modified = fragments.value(
        "audit-last-modified", compute=lambda: _last_event_time(size), size=64
    )
    if changed is not None:
        changed = _http_moment(changed)
        modified = changed if modified is None else max(modified, changed)
    return digest, modified


def _http_moment(when: datetime) -> datetime:
    """A stored moment as an HTTP date takes it: UTC, to the second (SQLite gives it back
    without a time zone)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0)


def _head() -> tuple[int, bytes]:
    """The audit log's head: the fragment cache's reading of it when that is on."""
    found = fragments.state()
    if found is not None:
        return found
    from consensus.models import AuditLogHead

    row = db.session.execute(
        select(AuditLogHead.size, AuditLogHead.frontier).where(AuditLogHead.id == 1)
    ).first()
    return (int(row[0]), bytes(row[1])) if row is not None else (0, b"")


def _last_event_time(size: int) -> datetime | None:
    """When the last event of the log was recorded, to the second (HTTP dates have no
    fractions), in UTC."""
    from consensus.models import AuditEvent

    if size == 0:
        return None
    when = db.session.execute(
        select(AuditEvent.created_at).order_by(AuditEvent.seq.desc()).limit(1)
    ).scalar_one_or_none()
    return None if when is None else _http_moment(when)
