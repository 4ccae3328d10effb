"""In-process service time per page: the median of warm requests through the test client.

    .venv/bin/python benchmarks/service_time.py [--repeat 8] [--only name…] [--profile name]
        [--batches 5 --batch-size 50]

Uses the world that bench.py built (SQLite, scale 1 by default) and the same pages. With
--profile it prints a pyinstrument profile of that page (pip install pyinstrument); with
--profile and --cprofile N, cProfile's own and cumulative times over N requests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--batches", type=int, default=0, help="batches of CPU-timed requests")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--profile", default=None, help="page name to profile")
    parser.add_argument(
        "--cprofile", type=int, default=0, help="with --profile: N requests under cProfile"
    )
    args = parser.parse_args()
    env = bench.world_env(args)
    bench.ensure_world(env, args.scale, False)
    with bench.app_context(env) as app:
        with app.app_context():
            pages, people = bench.discover(app)
        if args.only:
            pages = [p for p in pages if any(o in p.name for o in args.only)]
        app.config["WTF_CSRF_ENABLED"] = False
        import gc

        gc.freeze()  # as consensus.wsgi does under gunicorn
        client = app.test_client(use_cookies=True)
        email = people["voters"][0][1]
        answer = client.post("/login", data={"email": email, "password": bench.PASSWORD})
        assert answer.status_code == 302, answer.status_code
        anonymous = app.test_client()
        for page in pages:
            http = anonymous if page.anonymous else client

            def once(page: bench.Page = page, http: object = http) -> int:
                if page.method == "POST":
                    form = {**page.form, "organisation_id": str(people["voters"][0][0])}
                    # As wrk does: the same cookie every time (the answer's flash message
                    # would otherwise pile up in the session cookie).
                    cookie = http.get_cookie("session")  # type: ignore[attr-defined]
                    status = http.post(page.path, data=form).status_code  # type: ignore[attr-defined]
                    http.set_cookie("session", cookie.value)  # type: ignore[attr-defined]
                    return status  # type: ignore[no-any-return]
                response = http.get(page.path, headers=bench.request_headers(page, people))  # type: ignore[attr-defined]
                response.get_data()
                return response.status_code

            status = once()
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                once()
                times.append((time.perf_counter() - started) * 1000)
            batches = []
            for _ in range(args.batches):  # CPU time of whole batches: steadier on a busy machine
                started = time.process_time()
                for _ in range(args.batch_size):
                    once()
                batches.append((time.process_time() - started) * 1000 / args.batch_size)
            print(
                f"{page.name:<26} {status} median {statistics.median(times):7.1f} ms  "
                f"min {min(times):7.1f} ms"
                + (f"  cpu/request (best batch) {min(batches):6.2f} ms" if batches else "")
            )
            if args.profile and args.profile in page.name and args.cprofile:
                import cProfile
                import pstats

                profile = cProfile.Profile()
                profile.enable()
                for _ in range(args.cprofile):
                    once()
                profile.disable()
                lines = int(os.environ.get("PROF_LINES", "50"))
                stats = pstats.Stats(profile).sort_stats("tottime")
                stats.print_stats(lines)
                stats.sort_stats("cumulative").print_stats(lines)
                if os.environ.get("PROF_CALLERS"):  # e.g. PROF_CALLERS=_get_user
                    stats.print_callers(os.environ["PROF_CALLERS"])
            elif args.profile and args.profile in page.name:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005)
                profiler.start()
                for _ in range(int(os.environ.get("PROF_REQUESTS", "4"))):
                    once()
                profiler.stop()
                print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
