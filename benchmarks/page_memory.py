"""Where a web worker's memory goes: per page, the peak of Python allocations while it is
served, and what the fragment cache really holds against what it counts.

    .venv/bin/python benchmarks/page_memory.py --scale 1 [--database-url URL]

In-process on the benchmark's scale world (built by bench.py), as a worker would serve it
(the allocator tuned as consensus.wsgi does): for every GET page, one request with the
fragment cache emptied (a miss: everything rendered) and one from the cache (a hit), each
with tracemalloc's peak above what was allocated before the request, plus the process's
VmRSS and VmHWM afterwards. Then the fragment cache's own count of bytes and the memory
its entries really take (tracemalloc, before and after emptying it).

`--viewers N --passes P` then serves every GET page P times over as N representatives
(logged in through the login form, each their own organisation), the administrator and an
anonymous reader, the way bench.py's load does, and reports the fragment cache's and the
Markdown memos' hits, misses and bytes: what a cache bound costs in misses
(`CONSENSUS_FRAGMENT_CACHE_MB=8 … page_memory.py --viewers 64` against the default).
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from pathlib import Path
from typing import Any

import bench


def status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--viewers", type=int, default=0, help="representatives for the hit rates")
    parser.add_argument("--passes", type=int, default=3, help="times every page is served")
    args = parser.parse_args()
    env = bench.world_env(args)
    bench.ensure_world(env, args.scale, False)
    rows: list[dict[str, Any]] = []
    with bench.app_context(env) as app:
        with app.app_context():
            pages, people = bench.discover(app)
        gets = [p for p in pages if p.method == "GET"]
        clients = bench.clients(app, people)
        cache = app.extensions.get("consensus.web.fragments")

        def client_for(page: bench.Page) -> Any:
            return clients["anonymous" if page.anonymous or page.who == "api" else page.who]

        for page in gets:  # warm: templates compiled, connections open, imports done
            client_for(page).get(page.path, headers=bench.request_headers(page, people)).get_data()
        gc.collect()
        print(f"after warming every page: VmRSS {status_mib('VmRSS')} MiB")
        tracemalloc.start()
        for page in gets:
            http = client_for(page)
            row: dict[str, Any] = {"page": page.name}
            for phase in ("miss", "hit"):
                if phase == "miss" and cache is not None:
                    cache.clear()
                gc.collect()
                before, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                body = http.get(page.path, headers=bench.request_headers(page, people)).get_data()
                _, peak = tracemalloc.get_traced_memory()
                row[f"{phase}_peak_mib"] = round((peak - before) / 2**20, 2)
            row["bytes"] = len(body)
            row["rss_mib"] = status_mib("VmRSS")
            row["hwm_mib"] = status_mib("VmHWM")
            rows.append(row)
            print(json.dumps(row))
        # Fill the cache with every page's parts, then compare its count with the memory
        # that emptying it gives back.
        for page in gets:
            client_for(page).get(page.path, headers=bench.request_headers(page, people)).get_data()
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
        counted = cache.used if cache is not None else 0
        if cache is not None:
            cache.clear()
        gc.collect()
        freed = held - tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        rates = hit_rates(app, gets, people, args.viewers, args.passes) if args.viewers else None
    summary = {
        "pages": rows,
        "cache_counted_mib": round(counted / 2**20, 2),
        "cache_really_mib": round(freed / 2**20, 2),
        "vmhwm_mib": status_mib("VmHWM"),
        **({"hit_rates": rates} if rates else {}),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "pages"}))
    if args.output:
        args.output.write_text(json.dumps(summary, indent=2) + "\n")


def hit_rates(
    app: Any, gets: list[bench.Page], people: dict[str, Any], viewers: int, passes: int
) -> dict[str, Any]:
    """Every GET page `passes` times over, as `viewers` representatives in turn (the
    administrator's and anonymous pages as those): the caches' hits, misses and bytes."""
    from consensus.formats import markdown

    cache = app.extensions.get("consensus.web.fragments")
    voters = []
    for _, email in people["voters"][:viewers]:
        client = app.test_client()
        token = bench.csrf_token(client.get("/login").get_data(as_text=True))
        client.post(
            "/login", data={"csrf_token": token, "email": email, "password": bench.PASSWORD}
        )
        voters.append(client)
    others = bench.clients(app, people)
    memos = {
        "markdown": markdown._render,
        "headings": markdown._shift_headings,
        "plain text": markdown.plain_text,
    }
    if cache is not None:
        cache.clear()
        cache.hits = cache.misses = 0
    for memo in memos.values():
        memo.cache_clear()  # type: ignore[attr-defined]
    requests = 0
    for _ in range(passes):
        for page in gets:
            if page.who == "voter" and not page.anonymous:
                # The organisation's audit trail is for its own people: the first one.
                clients = voters[:1] if page.name == "audit trail (org)" else voters
            else:
                clients = [others["anonymous" if page.anonymous or page.who == "api" else page.who]]
            for http in clients:
                http.get(page.path, headers=bench.request_headers(page, people)).get_data()
                requests += 1
    found: dict[str, Any] = {"viewers": viewers, "passes": passes, "requests": requests}
    if cache is not None:
        found["fragment_cache"] = {
            "bound_mib": round(cache.max_bytes / 2**20, 1),
            "used_mib": round(cache.used / 2**20, 2),
            "entries": len(cache),
            "hits": cache.hits,
            "misses": cache.misses,
            "hit_rate": round(cache.hits / max(1, cache.hits + cache.misses), 3),
        }
    for name, memo in memos.items():
        stats = memo.cache_stats()  # type: ignore[attr-defined]
        stats["hit_rate"] = round(stats["hits"] / max(1, stats["hits"] + stats["misses"]), 3)
        found[name] = stats
    print(json.dumps(found))
    return found


if __name__ == "__main__":
    main()
