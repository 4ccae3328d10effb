"""The REST API's main reads (issue 23): their JSON bodies, kept as the bytes sent.

A process, the list of processes, a round's stances and a disposition report were dumped
through marshmallow and encoded per request (15 to 60 ms at scale 1). Here the encoded body
is kept in the fragment cache for the state of the data (the audit log's head), the
language and the time zone (consensus.web.fragments adds those), and the viewer facts in
its key: a hit builds the response from the bytes, with no schema dump at all.

The views (consensus/api/) decide first whether the reader may see the resource at all
(404 otherwise: never cached) and compute the facts of the reader the body depends on:

- a process, a disposition report: whether people's names are shown (the reader sees the
  process in the pages: `present.load_readable_process`); anonymous readers of a published
  process and logged-in readers who do not see it in the pages share one entry;
- a round's stances: whether the reader sees every stance (a published process, or
  `permissions.can_see_tally`), and if not the organisations they hold a valid membership
  of (their own stances);
- the list of processes: which processes the reader sees (everything for an
  administrator, the published ones for everyone else, and for a logged-in person also
  those they facilitate, by their id, or take part in through a membership valid now),
  and the page asked for.

What a view computes inside `compute` runs without a viewer (current_user raises
ViewerInCachedPart there), so a fact that is not in the key cannot slip in. Only a 200 is
kept: the views raise for everything else before they ask.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app
from marshmallow import Schema

from consensus.permissions.processes import Sight
from consensus.web import fragments
from consensus.web.pages import CachedValue, declare_key


@declare_key
@dataclass(frozen=True)
class ProcessKey:
    """GET /processes/{slug}: the facilitators' names are shown or not."""

    process_id: int
    names_visible: bool


@declare_key
@dataclass(frozen=True)
class StancesKey:
    """GET /processes/{slug}/rounds/{id}/stances: every stance and the tally, or only the
    stances of the reader's own organisations."""

    round_id: int
    complete: bool
    own_organisation_ids: frozenset[int] | None  # None when `complete`


@declare_key
@dataclass(frozen=True)
class DispositionKey:
    """GET /processes/{slug}/rounds/{id}/disposition: authors' and deciders' names shown or
    not."""

    round_id: int
    names_visible: bool


@declare_key
@dataclass(frozen=True)
class ProcessListKey:
    """GET /processes: which processes the reader sees (the rule book's `Sight`, all that
    `visible_clause` asks of them), and the page."""

    sight: Sight
    page: int
    page_size: int


@dataclass(frozen=True)
class Body:
    """An encoded answer: the JSON bytes and the headers it carries (a page's Link)."""

    data: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _size(body: Body) -> int:
    return fragments.memory_size(body.data) + sum(
        fragments.memory_size(name) + fragments.memory_size(value) for name, value in body.headers
    )


PROCESS = CachedValue("api-process", ProcessKey, size=_size)
STANCES = CachedValue("api-stances", StancesKey, size=_size)
DISPOSITION = CachedValue("api-disposition", DispositionKey, size=_size)
PROCESS_LIST = CachedValue("api-processes", ProcessListKey, size=_size)


def encode(schema: Schema, data: Any, headers: Mapping[str, str] | None = None) -> Body:
    """What flask-smorest's `@bp.response(200, schema)` sends for `data`: the schema's dump
    encoded by the application's JSON provider (flask.jsonify)."""
    dumped = schema.dump(data)
    # The presented data is not needed once dumped: let it go before the JSON text and its
    # bytes are made (the largest answers' first request, a worker's peak memory).
    del data
    return Body(current_app.json.response(dumped).get_data(), tuple((headers or {}).items()))


def respond(body: Body) -> Response:
    """The answer for a kept (or just encoded) body: byte for byte what flask-smorest
    builds for a 200 (its Content-Type; Content-Length from the bytes)."""
    response = current_app.response_class(body.data, mimetype=current_app.json.mimetype)
    for name, value in body.headers:
        response.headers[name] = value
    return response


def answer(cached: CachedValue[Any], key: Hashable, compute: Callable[[], Body]) -> Response:
    """The JSON answer for `key`: from the cache, or computed (without a viewer) and kept."""
    return respond(cached.get(key, compute))
