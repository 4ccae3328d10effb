"""A published process page behind nginx's proxy cache (issue 23, item 4).

Serves the scale world with gunicorn (as benchmarks/bench.py does) and puts nginx in front
with the shared-cache configuration of docs/operations.md ("A shared cache in front"; the
same text as tests/scaleout/test_public_cache_nginx.py, which checks revalidation and that a
logged-in reader is never served from the cache). Then wrk reads the published outcome
page as anonymous readers, first from gunicorn directly and then through nginx, and the
script reports requests per second, p50/p95 and nginx's cache status of the answers.

    .venv/bin/python benchmarks/nginx_cache.py [--scale 1] [--database-url URL]

Needs nginx and wrk (apt). Writes benchmarks/results/nginx-cache.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench  # noqa: E402 - the benchmark's world, gunicorn and wrk helpers

from tests.scaleout.test_public_cache_nginx import NGINX_CONF  # noqa: E402 - one text


def published_slug(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as connection:
        slug = connection.execute(
            text(
                "SELECT slug FROM process WHERE published_at IS NOT NULL "
                "AND slug LIKE 'schaal-%' ORDER BY id LIMIT 1"
            )
        ).scalar_one()
    engine.dispose()
    return str(slug)


def cache_statuses(url: str, n: int = 20) -> dict[str, int]:
    seen: dict[str, int] = {}
    for _ in range(n):
        answer = requests.get(url, timeout=10)
        status = answer.headers.get("X-Cache-Status", "none")
        seen[status] = seen.get(status, 0) + 1
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fresh-seconds", type=int, default=60)
    parser.add_argument("--output", type=Path, default=bench.BENCH / "results" / "nginx-cache.json")
    args = parser.parse_args()
    if shutil.which("nginx") is None:
        raise SystemExit("nginx is not installed (apt install nginx)")
    args.rebuild = False
    env = bench.world_env(args)
    bench.ensure_world(env, args.scale, rebuild=False)
    env["CONSENSUS_PUBLIC_CACHE_SECONDS"] = str(args.fresh_seconds)
    slug = published_slug(env["CONSENSUS_DATABASE_URL"])
    load = dict(duration=args.duration, connections=args.connections, threads=args.threads)
    script = bench.BENCH / "wrk" / "get.lua"
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "database": "postgresql" if args.database_url else "sqlite",
        "scale": args.scale,
        "page": f"/public/{slug}",
        "load": {**load, "workers": args.workers},
        "fresh_seconds": args.fresh_seconds,
        "load_average_before": os.getloadavg()[0],
    }
    with (
        tempfile.TemporaryDirectory(prefix="consensus-nginx-") as tmp,
        bench.gunicorn("consensus.wsgi:app", env, args.workers, bench.ROOT) as (_, base),
    ):
        port = bench.free_port()
        app_port = int(base.rsplit(":", 1)[1])
        conf = Path(tmp) / "nginx.conf"
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(user + NGINX_CONF.format(tmp=tmp, port=port, app_port=app_port))
        nginx = subprocess.Popen(  # noqa: S603 - fixed arguments
            ["nginx", "-c", str(conf), "-p", f"{tmp}/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)
            direct = f"{base}/public/{slug}"
            cached = f"http://127.0.0.1:{port}/public/{slug}"
            for url in (direct, cached):  # warm: templates, fragments, nginx's copy
                requests.get(url, timeout=30).raise_for_status()
            report["cache_status"] = cache_statuses(cached)
            for name, url in (("gunicorn", direct), ("nginx cache", cached)):
                figures = bench.wrk(url, script=script, extra_env={"BENCH_COOKIES": ""}, **load)
                seconds = figures["duration_us"] / 1e6
                report[name] = {
                    "rps": round(figures["requests"] / seconds),
                    "p50_ms": round(figures["p50"] / 1000, 2),
                    "p95_ms": round(figures["p95"] / 1000, 2),
                    "errors": figures["errors"] + figures["status_errors"],
                }
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    report["load_average_after"] = os.getloadavg()[0]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for name in ("gunicorn", "nginx cache"):
        row = report[name]
        print(
            f"{name:12} {row['rps']:>8,} req/s  p50 {row['p50_ms']:.2f} ms  "
            f"p95 {row['p95_ms']:.2f} ms  errors {row['errors']}"
        )
    print(f"nginx cache status of 20 reads: {report['cache_status']}")
    print(f"Written to {args.output.relative_to(bench.ROOT)}")


if __name__ == "__main__":
    main()
