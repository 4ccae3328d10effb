"""Resident memory of a Consensus web worker: right after start and after a short load.

    .venv/bin/python benchmarks/worker_memory.py --scale 1 --seconds 10 [--checkout DIR]

Starts gunicorn (2 workers) on the benchmark's scale world (built by bench.py), reads each
worker's VmRSS once the workers have booted, then drives the main pages (as a logged-in
representative and as an anonymous reader) with wrk and reads VmRSS and VmHWM (peak) again.
`--checkout` measures another checkout of the code (e.g. the commit before a change, unpacked
with `git archive`) on the same world, for a before/after in the same minute.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import bench


def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def settled_rss(pid: int) -> float:
    """VmRSS once the worker has booted (the application is loaded in each worker): the
    first reading that equals the one a second before (at most 60 s)."""
    last = -1.0
    for _ in range(60):
        now = round(status_mib(pid, "VmRSS"), 1)
        if now == last:
            return now
        last = now
        time.sleep(1.0)
    return last


def settled_workers(master: int, expected: int) -> tuple[list[int], list[float], int]:
    """The workers and their settled RSS; a worker that dies while booting (gunicorn starts
    another) is counted and the new one measured."""
    crashed = 0
    for _ in range(10):
        workers = bench.worker_pids(master)
        if len(workers) < expected:
            time.sleep(1.0)
            continue
        try:
            return workers, [settled_rss(pid) for pid in workers], crashed
        except FileNotFoundError:
            crashed += 1
    raise SystemExit("the workers did not settle")


def measure(args: argparse.Namespace, checkout: Path) -> dict[str, object]:
    env = bench.world_env(args)
    with bench.app_context(env) as app, app.app_context():
        pages, people = bench.discover(app)
    gets = [p for p in pages if p.method == "GET" and p.who not in {"admin", "api"}]
    with bench.gunicorn("consensus.wsgi:app", env, args.workers, checkout) as (server, base):
        workers, started, crashed = settled_workers(server.pid, args.workers)
        cookie, _ = bench.login_http(base, people["voters"][0][1])
        # The login's argon2 check takes 64 MiB for a moment (by design): its peak is
        # reported apart, and VmHWM is reset so the peak below is that of serving pages.
        with_login = [round(status_mib(pid, "VmHWM"), 1) for pid in workers]
        reset = bench.reset_peaks(workers)
        for page in gets:
            bench.wrk(
                base + page.path,
                duration=args.seconds,
                connections=args.connections,
                threads=2,
                script=bench.BENCH / "wrk" / "get.lua",
                extra_env={} if page.anonymous else {"BENCH_COOKIES": cookie},
            )
        loaded = [round(status_mib(pid, "VmRSS"), 1) for pid in workers]
        peak = [round(status_mib(pid, "VmHWM"), 1) for pid in workers]
    return {
        "checkout": str(checkout),
        "pages": [p.name for p in gets],
        "rss_after_start_mib": started,
        "workers_died_while_booting": crashed,
        "rss_after_load_mib": loaded,
        "peak_rss_mib": peak,
        "peak_reset_after_login": reset,
        "peak_with_login_mib": with_login,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10, help="seconds of load per page")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--checkout", type=Path, action="append", default=[])
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    results = [measure(args, checkout) for checkout in (args.checkout or [bench.ROOT])]
    for result in results:
        print(json.dumps(result))
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
