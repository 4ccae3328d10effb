"""The public pages of published processes (public.process, public.board): the same for
everyone; the process page is kept whole for visitors who are not logged in."""

from __future__ import annotations

from dataclasses import dataclass

from consensus.web import fragments
from consensus.web.pages import CachedPart, declare_key


@declare_key
@dataclass(frozen=True)
class PublicProcessKey:
    process_id: int


@declare_key
@dataclass(frozen=True)
class BoardKey:
    """Only a published process's board is ever kept, so a kept one needs no lookup."""

    slug: str


BODY = CachedPart("public-process", "public/_process_body.html", PublicProcessKey)

# The whole page for visitors who are not logged in (see fragments.anonymous_page), keyed
# by the address (the index's filters and page number are in its query string).
anonymous_process_page = fragments.anonymous_page("public-process")
anonymous_index_page = fragments.anonymous_page("public-index")


class KeptBoard:
    """The board of one published process for this state of the data: its key is taken
    once (the board is streamed, and kept when it fits the cache), as the UTF-8 chunks it
    was sent in (never joined into one: no second copy of it, per miss or per request)."""

    def __init__(self, key: BoardKey) -> None:
        self._key = fragments.key("public-board", key)

    def chunks(self) -> tuple[bytes, ...] | None:
        found = fragments.get(self._key)
        return found if isinstance(found, tuple) else None

    def room(self) -> int:
        """The largest board the cache would keep (0: none is kept)."""
        return fragments.largest_entry() if self._key is not None else 0

    def keep(self, chunks: tuple[bytes, ...]) -> None:
        fragments.put(self._key, chunks)
