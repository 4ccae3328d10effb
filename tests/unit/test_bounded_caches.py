"""Caches bounded in bytes, not only in entries (issue 23: flat memory over time)."""

from __future__ import annotations

from consensus.formats import markdown
from consensus.formats.memo import bounded_memo


def test_the_markdown_memo_stays_within_its_bytes_however_long_the_texts() -> None:
    """Rendering 400 different texts of 100 KB each keeps at most the memo's 2 MB; an
    entry-bounded lru_cache(8192) kept all 40 MB (and would keep 800 MB)."""
    markdown._render.cache_clear()  # type: ignore[attr-defined]
    for n in range(400):
        html = markdown.render_markdown(f"Tekst {n}\n\n" + "woord " * 17_000)
        assert html.startswith(f"<p>Tekst {n}</p>")
    entries, used = markdown._render.cache_info()  # type: ignore[attr-defined]
    assert used <= 2 * 1024 * 1024
    assert 0 < entries < 400
    # The most recent texts are kept, and what is kept is the same result.
    again = markdown.render_markdown("Tekst 399\n\n" + "woord " * 17_000)
    assert again.startswith("<p>Tekst 399</p>")
    assert markdown._render.cache_info() == (entries, used)  # type: ignore[attr-defined]


def test_a_bounded_memo_drops_the_least_recently_used_and_never_keeps_a_giant() -> None:
    calls: list[str] = []

    @bounded_memo(4000)
    def shout(text: str) -> str:
        calls.append(text)
        return text.upper()

    assert shout("a" * 100) == "A" * 100
    assert shout("b" * 100) == "B" * 100
    assert shout("a" * 100) == "A" * 100  # kept: no second call
    assert calls == ["a" * 100, "b" * 100]
    for n in range(10):  # fills the memo: "b", the least recently used, goes first
        shout(str(n) * 100)
    entries, used = shout.cache_info()  # type: ignore[attr-defined]
    assert used <= 4000 and entries >= 1
    shout("b" * 100)
    assert calls.count("b" * 100) == 2
    # Larger than a quarter of the bound: answered, never kept.
    shout("g" * 1000)
    shout("g" * 1000)
    assert calls.count("g" * 1000) == 2


def test_a_bounded_memo_counts_its_hits_and_misses() -> None:
    """What benchmarks/page_memory.py reports to weigh a memo's bound against its use."""

    @bounded_memo(4000)
    def double(text: str) -> str:
        return text * 2

    for text in ("a", "b", "a", "a"):
        double(text)
    assert double.cache_stats() == {  # type: ignore[attr-defined]
        "entries": 2,
        "bytes": double.cache_info()[1],  # type: ignore[attr-defined]
        "hits": 2,
        "misses": 2,
    }
    double.cache_clear()  # type: ignore[attr-defined]
    assert double.cache_stats()["hits"] == 0  # type: ignore[attr-defined]
