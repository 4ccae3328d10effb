"""The benchmark of issue 9: Consensus pages against the ceiling of this stack on this machine.

    .venv/bin/python benchmarks/bench.py --scale 1 --duration 10

1. Builds (or reuses) the scale world in benchmarks/.work/ with `flask db upgrade` and
   `flask demo --scale N` (SQLite by default; --database-url for PostgreSQL).
2. Finds the pages to measure in that world: the process with every organisation and an
   open endorsement round, the version with the largest comment thread, and so on.
3. Counts SQL statements and response bytes per page with one instrumented request each,
   in-process, logged in through the real login form.
4. Starts the bare ceiling app (benchmarks/ceiling_app.py: (a) plain text, (b) one
   primary-key SELECT plus a small template) under gunicorn with 2 workers and drives it with
   wrk; then starts Consensus the same way, logs in through the app (CSRF token from the
   login page), and drives every page and the stance POST with wrk (loopback, bounded).
   The ceiling stays up, and a shorter run of (b) before and after each page gives that
   page a local ceiling: the shared machine's speed drifts within a run, so each page is
   also compared with what the stack managed at that moment ("local" column).
5. Reads the peak memory (VmHWM) of the Consensus workers and times `flask audit verify`.
6. Prints a table and writes benchmarks/results/last.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This checkout's package first (the venv may hold another checkout's, installed editable).
sys.path.insert(0, str(ROOT))
from consensus.worlds.pages import Page  # noqa: E402 (the path first)

BENCH = ROOT / "benchmarks"
VENV_BIN = Path(sys.executable).parent
PASSWORD = "consensus-demo"  # the demo password; the world lives in a throwaway folder
USER_AGENT = "consensus-bench"
TARGET_RATIO = 0.40
TARGET_P95_MS = 50.0
TARGET_POST_P95_MS = 100.0
TARGET_WORKER_MIB = 120
TARGET_VERIFY_RATE = 200_000


def api_token(app: Any, email: str) -> str:
    """A read token of `email` for the API pages, made through the service once per world
    and kept in the instance folder (a person may hold only so many)."""
    from sqlalchemy import select

    from consensus.extensions import db
    from consensus.models import User
    from consensus.services import api_tokens

    kept = Path(app.instance_path) / "bench-api-token"
    with app.app_context():
        if kept.exists() and api_tokens.find_token(kept.read_text().strip()) is not None:
            return kept.read_text().strip()
        user = db.session.execute(select(User).where(User.email == email)).scalar_one()
        _, secret = api_tokens.create_token(user, name="benchmark", scopes="read", days=365)
        db.session.commit()
    kept.write_text(secret + "\n")
    return secret


def request_env(page: Page, people: dict[str, Any], cookies: dict[str, str]) -> dict[str, str]:
    """What get.lua needs for a page: the sessions' cookies, or the API token."""
    if page.who == "api":
        return {"BENCH_AUTH": f"Bearer {people['api_token']}"}
    if page.anonymous:
        return {}
    if page.name == "audit trail (org)":
        # An organisation's audit trail is for its own people: the first representative
        # only (the other 63 would be refused, which wrk counts as errors).
        return {"BENCH_COOKIES": cookies[page.who].split("\n")[0]}
    return {"BENCH_COOKIES": cookies[page.who]}


def request_headers(page: Page, people: dict[str, Any]) -> dict[str, str]:
    """Headers of an in-process request (the test clients carry the cookies)."""
    return {"Authorization": f"Bearer {people['api_token']}"} if page.who == "api" else {}


@dataclass
class Result:
    name: str
    path: str
    method: str
    rps: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    ratio: float | None = None
    # Ceiling (b) measured just before and just after this page (their mean), and the ratio
    # to it: the machine is shared and its speed drifts within a run.
    local_ceiling: float | None = None
    local_ratio: float | None = None
    sql: int | None = None
    bytes: int | None = None
    status: int | None = None
    requests: int = 0
    errors: int = 0
    wrk_bytes: int | None = None  # average bytes per response under load (with headers)
    miss_ms: float | None = None  # in-process service time, nothing cached
    hit_ms: float | None = None  # in-process service time, long parts from the cache
    rss_mib: float | None = None  # the largest worker's VmRSS after the page's load
    note: str = ""
    reference: bool = False  # a reference row (REFERENCE_PAGES): no target judged


# --- The world --------------------------------------------------------------------------------


def world_env(args: argparse.Namespace) -> dict[str, str]:
    kind = "postgresql" if args.database_url else "sqlite"
    instance = BENCH / ".work" / f"scale-{args.scale:g}-{kind}"
    instance.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "CONSENSUS_INSTANCE_PATH": str(instance),
            "CONSENSUS_DATABASE_URL": args.database_url or f"sqlite:///{instance / 'db.sqlite'}",
            # Logging in dozens of benchmark users from one address would trip the limiter.
            "CONSENSUS_RATELIMIT_ENABLED": "false",
            "CONSENSUS_ENV": "development",
            "CONSENSUS_REQUIRE_2FA": "false",
        }
    )
    return env


def flask(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "consensus", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"flask {' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def ensure_world(env: dict[str, str], scale: float, rebuild: bool) -> float | None:
    """Migrate and build the world when missing; returns the build time (None: reused)."""
    marker = Path(env["CONSENSUS_INSTANCE_PATH"]) / "world-built"
    if marker.exists() and not rebuild:
        return None
    if rebuild and env["CONSENSUS_DATABASE_URL"].startswith("sqlite"):
        for name in ("db.sqlite", "db.sqlite-wal", "db.sqlite-shm"):
            (Path(env["CONSENSUS_INSTANCE_PATH"]) / name).unlink(missing_ok=True)
    flask(env, "db", "upgrade")
    started = time.perf_counter()
    output = flask(env, "demo", "--password", PASSWORD, "--scale", f"{scale:g}")
    seconds = time.perf_counter() - started
    print(output.strip())
    marker.write_text(f"{seconds:.1f}\n")
    return seconds


@contextmanager
def app_context(env: dict[str, str]) -> Iterator[Any]:
    """The Consensus app in this process, pointed at the benchmark world. No app context is
    pushed: each test-client request must get its own, as under a real server (`g` lives in
    the app context, and a shared one would carry the CSRF token across logins)."""
    for key in ("CONSENSUS_INSTANCE_PATH", "CONSENSUS_DATABASE_URL", "CONSENSUS_ENV"):
        os.environ[key] = env[key]
    os.environ["CONSENSUS_RATELIMIT_ENABLED"] = "false"
    os.environ["CONSENSUS_REQUIRE_2FA"] = "false"
    sys.path.insert(0, str(ROOT))
    from consensus import create_app
    from consensus.ops import allocator

    allocator.tune()  # as consensus.wsgi does under gunicorn
    yield create_app()


def discover(app: Any) -> tuple[list[Page], dict[str, Any]]:
    """The pages to measure and the people to measure them as, found in the world
    (consensus.worlds.pages, the list the query-budget test counts too), and the first
    voter's API token."""
    from consensus.worlds.pages import NoScaleWorld, main_pages

    try:
        pages, people = main_pages()
    except NoScaleWorld as error:
        raise SystemExit(str(error)) from error
    people["api_token"] = api_token(app, people["voters"][0][1])
    return [*REFERENCE_PAGES, *pages], people


# Not Consensus's work but its floor: a static page through the whole stack (the layout,
# the session, the hooks), as a representative and as an anonymous reader. No target is
# judged on them; they show what any page costs before it does anything of its own.
REFERENCE_PAGES = [
    Page(
        "about, logged in",
        "/about",
        note="reference: a static page as a representative (session check, layout)",
        reference=True,
    ),
    Page(
        "about, anonymous",
        "/about",
        who="anonymous",
        note="reference: the same page, not logged in",
        reference=True,
    ),
]


# --- Logging in -------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    if match is None:
        raise SystemExit("no CSRF token on the page")
    return match.group(1) or match.group(2)


def login_http(base: str, email: str) -> tuple[str, str]:
    """Log in over HTTP like a browser; returns (Cookie header, a CSRF token of the session)."""
    import requests

    with requests.Session() as http:
        # Flask-Login's strong session protection binds the session to the User-Agent:
        # wrk sends the same one (see wrk/*.lua).
        http.headers["User-Agent"] = USER_AGENT
        token = csrf_token(http.get(f"{base}/login", timeout=30).text)
        answer = http.post(
            f"{base}/login",
            data={"csrf_token": token, "email": email, "password": PASSWORD},
            timeout=30,
            allow_redirects=False,
        )
        if answer.status_code != 302:
            raise SystemExit(f"login of {email} failed ({answer.status_code})")
        page = http.get(f"{base}/", timeout=30).text
        cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
        return cookie, csrf_token(page)


# --- In-process: SQL statements and sizes -----------------------------------------------------


def clients(app: Any, people: dict[str, Any]) -> dict[str, Any]:
    """Test clients logged in through the real login form: the first voter, the
    administrator, and one not logged in."""
    app.config["WTF_CSRF_ENABLED"] = True
    found = {"anonymous": app.test_client()}
    for who, email in (("voter", people["voters"][0][1]), ("admin", people["admin"])):
        client = app.test_client()
        token = csrf_token(client.get("/login").get_data(as_text=True))
        answer = client.post(
            "/login", data={"csrf_token": token, "email": email, "password": PASSWORD}
        )
        if answer.status_code != 302:
            raise SystemExit(f"in-process login of {email} failed ({answer.status_code})")
        found[who] = client
    return found


def instrument(app: Any, pages: list[Page], people: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Requests per page through the test client: SQL statements (of the cached request),
    size and the in-process service time with and without the fragment cache."""
    from sqlalchemy import event

    from consensus.extensions import db

    app.config["WTF_CSRF_ENABLED"] = True
    statements: list[str] = []

    def count(*_: Any) -> None:
        statements.append("")

    logged_in = clients(app, people)
    client, anonymous, admin = logged_in["voter"], logged_in["anonymous"], logged_in["admin"]
    found: dict[str, dict[str, Any]] = {}
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    cache = app.extensions.get("consensus.web.fragments")

    def prepare(page: Page, http: Any) -> dict[str, str] | None:
        """A POST's form with a fresh CSRF token (read outside the timed request)."""
        if page.method != "POST":
            return None
        token = csrf_token(http.get("/").get_data(as_text=True))
        return {**page.form, "csrf_token": token, "organisation_id": str(people["voters"][0][0])}

    def once(page: Page, http: Any, form: dict[str, str] | None = None) -> Any:
        if page.method == "POST":
            return http.post(page.path, data=form if form is not None else prepare(page, http))
        return http.get(page.path, headers=request_headers(page, people))

    try:
        for page in pages:
            http = (
                anonymous
                if page.anonymous or page.who == "api"
                else admin
                if page.who == "admin"
                else client
            )
            once(page, http).get_data()  # templates compiled, connections open
            # Service time in-process: with nothing cached (the first view after a change)
            # and then with the page's long parts in the fragment cache (the next views).
            timings = []
            for clear in (True, False):
                form = prepare(page, http)
                if clear and cache is not None:
                    cache.clear()
                statements.clear()
                started = time.perf_counter()
                response = once(page, http, form)
                body = response.get_data()
                timings.append((time.perf_counter() - started) * 1000)
            found[page.name] = {
                "sql": len(statements),
                "bytes": len(body),
                "status": response.status_code,
                "miss_ms": round(timings[0], 1),
                "hit_ms": round(timings[1], 1),
            }
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return found


# --- Servers and wrk --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(app_spec: str, env: dict[str, str], workers: int, chdir: Path) -> Iterator[Any]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [
            str(VENV_BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(chdir),
            "--log-level",
            "warning",
            app_spec,
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"gunicorn for {app_spec} did not start")
        time.sleep(1.0)  # let every worker boot
        yield process, base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def vm_hwm_mib(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peaks(pids: list[int]) -> bool:
    """Reset the workers' VmHWM to their present VmRSS (Linux: `5` into clear_refs), so a
    later reading is the peak of what came after; False where that is not allowed."""
    try:
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def booted_memory(master: int) -> dict[str, float]:
    """worker_memory once the workers have loaded the application: the first reading equal
    to the one a second before (at most a minute; a loaded machine boots slowly)."""
    last: dict[str, float] = {}
    for _ in range(60):
        now = worker_memory(master)
        if now == last and now["rss_mib"] > 0:
            return now
        last = now
        time.sleep(1.0)
    return last


def worker_memory(master: int) -> dict[str, float]:
    """The largest VmRSS and VmHWM among the workers, in MiB."""
    pids = worker_pids(master)
    return {
        "rss_mib": round(max((vm_hwm_mib(p, "VmRSS") for p in pids), default=0.0), 1),
        "hwm_mib": round(max((vm_hwm_mib(p) for p in pids), default=0.0), 1),
    }


def wrk(
    url: str,
    *,
    duration: int,
    connections: int,
    threads: int,
    script: Path,
    extra_env: dict[str, str] | None = None,
) -> dict[str, float]:
    env = dict(os.environ)
    env.update(extra_env or {})
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [
            shutil.which("wrk") or "/usr/bin/wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=duration + 60,
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))  # type: ignore[no-any-return]
    raise SystemExit(f"wrk gave no result for {url}:\n{done.stdout}\n{done.stderr}")


COSIGN = "co-sign (POST)"
# An average answer under load below this share of the in-process page is not the page.
WRONG_SIZE = 0.5


def cosign(
    env: dict[str, str],
    base: str,
    people: dict[str, Any],
    sessions: list[tuple[str, str]],
    connections: int,
) -> Result:
    """Every voting organisation signs a new round's letter once (signing_round.py), over
    HTTP from `connections` clients at a time. Not wrk: a signature cannot be repeated, so
    the run is a fixed number of requests, not a fixed time."""
    import statistics
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    import requests
    import signing_round

    with app_context(env) as app:
        slug, org_slugs = signing_round.prepare(app, [org_id for org_id, _ in people["voters"]])
    path = f"/processes/{slug}/signing/<organisation>/platform"

    def sign(turn: int) -> tuple[float, int]:
        (org_id, _), (cookie, token), org_slug = (
            people["voters"][turn],
            sessions[turn],
            org_slugs[turn],
        )
        started = time.perf_counter()
        answer = requests.post(
            f"{base}/processes/{slug}/signing/{org_slug}/platform",
            data={"csrf_token": token, f"re{org_id}-password": PASSWORD},
            headers={"Cookie": cookie, "User-Agent": USER_AGENT},
            allow_redirects=False,
            timeout=120,
        )
        return time.perf_counter() - started, answer.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=connections) as pool:
        outcomes = list(pool.map(sign, range(len(org_slugs))))
    wall = time.perf_counter() - started
    with app_context(env) as app:
        signing_round.finish(app, slug)
    latencies = sorted(seconds * 1000 for seconds, _ in outcomes)
    cut = statistics.quantiles(latencies, n=100, method="inclusive")
    return Result(
        COSIGN,
        path,
        "POST",
        rps=len(outcomes) / wall,
        p50_ms=statistics.median(latencies),
        p95_ms=cut[94],
        p99_ms=cut[98],
        requests=len(outcomes),
        errors=sum(1 for _, status in outcomes if status != 302),
        note=f"each of {len(outcomes)} organisations signs once (password + PAdES)"
        + "".join(
            f"; {n} answered {status}"
            for status, n in sorted(Counter(status for _, status in outcomes).items())
            if status != 302
        ),
    )


def measured(result: Result, figures: dict[str, float]) -> None:
    result.rps = figures["requests"] / (figures["duration_us"] / 1e6)
    result.p50_ms = figures["p50"] / 1000
    result.p95_ms = figures["p95"] / 1000
    result.p99_ms = figures["p99"] / 1000
    result.requests = int(figures["requests"])
    result.errors = int(figures["errors"] + figures["status_errors"])
    result.wrk_bytes = round(figures["bytes"] / max(1, figures["requests"]))


# --- Running ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    env = world_env(args)
    build_seconds = ensure_world(env, args.scale, args.rebuild)
    with app_context(env) as app:
        with app.app_context():
            pages, people = discover(app)
        if args.only:
            pages = [p for p in pages if any(o in p.name for o in args.only)]
        counts = instrument(app, pages, people)
    results = {
        p.name: Result(
            p.name, p.path, p.method, note=p.note, reference=p.reference, **counts[p.name]
        )
        for p in pages
    }
    load = dict(duration=args.duration, connections=args.connections, threads=args.threads)
    ceiling: dict[str, Result] = {}
    memory = 0.0
    memory_trace: dict[str, dict[str, float]] = {}
    hwm_reset = False
    if not args.no_load:
        ceiling_env = dict(env)
        ceiling_env["CEILING_DATABASE_URL"] = args.database_url or (
            f"sqlite:///{Path(env['CONSENSUS_INSTANCE_PATH']) / 'ceiling.sqlite'}"
        )

        def measure_ceiling() -> None:
            """Run the bare app; keep each ceiling's better run. The machine is shared and
            noisy: measured before and after the pages, the ceiling is what the stack
            reached at its best, so a slow moment cannot flatter the ratios."""
            with gunicorn("ceiling_app:app", ceiling_env, args.workers, BENCH) as (_, base):
                for name, path in (("ceiling (a) plain", "/plain"), ("ceiling (b) row", "/row")):
                    result = Result(name, path, "GET")
                    measured(result, wrk(base + path, script=BENCH / "wrk" / "get.lua", **load))
                    runs = ceiling_runs.setdefault(name, [])
                    runs.append(round(result.rps or 0))
                    if name not in ceiling or (result.rps or 0) > (ceiling[name].rps or 0):
                        ceiling[name] = result
                    ceiling[name].note = "best of runs: " + ", ".join(f"{r:,}" for r in runs)

        ceiling_runs: dict[str, list[int]] = {}
        measure_ceiling()
        with (
            gunicorn("ceiling_app:app", ceiling_env, args.workers, BENCH) as (_, ceiling_base),
            gunicorn("consensus.wsgi:app", env, args.workers, ROOT) as (server, base),
        ):

            def local_ceiling() -> float:
                """A shorter run of ceiling (b) next to each page (both servers stay up;
                the one not under load is idle)."""
                result = Result("ceiling (b) row", "/row", "GET")
                measured(
                    result,
                    wrk(
                        ceiling_base + "/row",
                        script=BENCH / "wrk" / "get.lua",
                        **{**load, "duration": max(2, args.duration // 2)},
                    ),
                )
                return result.rps

            memory_trace["after start"] = booted_memory(server.pid)
            sessions = [login_http(base, email) for _, email in people["voters"]]
            admin_cookie, _ = login_http(base, people["admin"])
            # Logging in checks a password with argon2 (64 MiB of memory for a moment, by
            # design): that peak is reported apart from the peak of serving pages.
            memory_trace["after logins"] = worker_memory(server.pid)
            hwm_reset = reset_peaks(worker_pids(server.pid))
            before = local_ceiling()
            for page in pages:
                result = results[page.name]
                if page.method == "POST":
                    bodies = [
                        "&".join(
                            f"{k}={v}"
                            for k, v in {
                                **page.form,
                                "csrf_token": token,
                                "organisation_id": str(org_id),
                            }.items()
                        )
                        for (org_id, _), (_, token) in zip(people["voters"], sessions, strict=True)
                    ]
                    figures = wrk(
                        base + page.path,
                        script=BENCH / "wrk" / "post.lua",
                        extra_env={
                            "BENCH_COOKIES": "\n".join(c for c, _ in sessions),
                            "BENCH_BODIES": "\n".join(bodies),
                        },
                        **load,
                    )
                else:
                    # 64 different representatives (64 organisations) take turns, so a
                    # page is measured as many people see it, not as one person reloading.
                    get_env = request_env(
                        page,
                        people,
                        {"admin": admin_cookie, "voter": "\n".join(c for c, _ in sessions)},
                    )
                    if args.warmup:
                        wrk(
                            base + page.path,
                            script=BENCH / "wrk" / "get.lua",
                            extra_env=get_env,
                            **{**load, "duration": args.warmup},
                        )
                    figures = wrk(
                        base + page.path,
                        script=BENCH / "wrk" / "get.lua",
                        extra_env=get_env,
                        **load,
                    )
                measured(result, figures)
                after = local_ceiling()
                result.local_ceiling = (before + after) / 2
                result.local_ratio = result.rps / result.local_ceiling if result.rps else None
                before = after
                # Refusals (4xx/5xx) are counted as errors by wrk; what is left to catch here
                # is a redirect (to the login page: a few hundred bytes). The pages differ a
                # little per viewer (their name, their own organisation's rows), so the
                # average under load may be a few percent below the first viewer's page.
                if page.method == "GET" and (result.wrk_bytes or 0) < WRONG_SIZE * (
                    result.bytes or 0
                ):
                    result.note += " WRONG RESPONSES under load (far smaller than the page)"
                memory_trace[page.name] = worker_memory(server.pid)
                result.rss_mib = memory_trace[page.name]["rss_mib"]
            memory = max((vm_hwm_mib(pid) for pid in worker_pids(server.pid)), default=0.0)
            if not args.only or any(o in COSIGN for o in args.only):
                try:
                    results[COSIGN] = cosign(env, base, people, sessions, args.connections)
                except Exception as error:  # noqa: BLE001 - a timeout must not lose the run
                    results[COSIGN] = Result(COSIGN, "", "POST", note=f"FAILED: {error!r:.200}")
        measure_ceiling()
        ceiling_b = ceiling["ceiling (b) row"].rps
        for result in results.values():
            result.ratio = result.rps / ceiling_b if ceiling_b and result.rps else None
    letter = letter_seconds()
    mail = None
    if not args.only or "mail" in args.only:
        try:
            mail = mail_throughput(env)
        except Exception as error:  # noqa: BLE001 - a failing stage must not lose the run
            print(f"mail throughput failed: {error!r:.300}", file=sys.stderr)
    verify = flask(env, "audit", "verify")
    rate_match = re.search(r"\(([\d,]+) events/s\)", verify)
    events_match = re.search(r"OK: (\d+) events", verify)
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "database": "postgresql" if args.database_url else "sqlite",
        "scale": args.scale,
        "world_build_seconds": build_seconds,
        "load": {**load, "workers": args.workers},
        "ceiling": {k: asdict(v) for k, v in ceiling.items()},
        "pages": [asdict(r) for r in results.values()],
        # Peak VmHWM of a worker while serving the pages and POSTs (reset after the logins
        # when the kernel allows it, see hwm_reset_after_logins), and per page the largest
        # VmRSS and VmHWM after it; "after logins" includes argon2's 64 MiB.
        "peak_worker_memory_mib": round(memory, 1),
        # The peak through the logins (argon2's 64 MiB a password check), reported apart.
        "peak_worker_memory_through_logins_mib": memory_trace.get("after logins", {}).get(
            "hwm_mib"
        ),
        "hwm_reset_after_logins": hwm_reset,
        "worker_memory": memory_trace,
        "letter_with_four_signatures_seconds": letter,
        "notification_mail": mail,
        "audit_verify": {
            "events": int(events_match.group(1)) if events_match else None,
            "events_per_second": int(rate_match.group(1).replace(",", "")) if rate_match else None,
        },
        "targets": {
            "ratio_to_ceiling_b": TARGET_RATIO,
            "p95_ms": TARGET_P95_MS,
            "post_p95_ms": TARGET_POST_P95_MS,
            "audit_verify_events_per_second": TARGET_VERIFY_RATE,
            "peak_worker_memory_serving_pages_mib": TARGET_WORKER_MIB,
        },
    }
    return report


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Read-only soak (issue 23): every main GET page in turn, as the 64 representatives, the
    administrator or an anonymous reader, for `--soak` minutes on fixed data (no POSTs, so
    the pages do not grow), sampling each worker's resident memory after every page. Memory
    must level off: growth after the first 5 minutes (or the first third of a shorter run)
    under 10 %."""
    env = world_env(args)
    ensure_world(env, args.scale, args.rebuild)
    with app_context(env) as app:
        with app.app_context():
            pages, people = discover(app)

        def audit_size() -> int:
            """The audit log's size: the data is fixed while it stays the same (a login
            writes an event, so it is read after the logins)."""
            from sqlalchemy import select

            from consensus.extensions import db
            from consensus.models import AuditLogHead

            with app.app_context():
                size = db.session.execute(select(AuditLogHead.size)).scalar_one_or_none()
                db.session.rollback()
            return int(size or 0)

    pages = [p for p in pages if p.method == "GET"]
    if args.only:
        pages = [p for p in pages if any(o in p.name for o in args.only)]
    step = max(5, args.duration)
    samples: list[dict[str, Any]] = []
    with gunicorn("consensus.wsgi:app", env, args.workers, ROOT) as (server, base):
        sessions = [login_http(base, email) for _, email in people["voters"]]
        admin_cookie, _ = login_http(base, people["admin"])
        cookies = {
            "voter": "\n".join(c for c, _ in sessions),
            "admin": admin_cookie,
        }
        # The peak from here on is that of serving the pages (argon2's 64 MiB a login apart).
        hwm_reset = reset_peaks(worker_pids(server.pid))
        audit_at_start = audit_size()
        started = time.monotonic()
        turn = 0
        while time.monotonic() - started < args.soak * 60:
            page = pages[turn % len(pages)]
            turn += 1
            figures = wrk(
                base + page.path,
                script=BENCH / "wrk" / "get.lua",
                extra_env=request_env(page, people, cookies),
                duration=step,
                connections=args.connections,
                threads=args.threads,
            )
            rss = []
            for pid in worker_pids(server.pid):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss.append(round(int(line.split()[1]) / 1024, 1))
            samples.append(
                {
                    "minute": round((time.monotonic() - started) / 60, 2),
                    "page": page.name,
                    "requests": int(figures["requests"]),
                    "errors": int(figures["errors"] + figures["status_errors"]),
                    "rss_mib": rss,
                }
            )
            print(json.dumps(samples[-1]), flush=True)
        peaks = [round(vm_hwm_mib(pid), 1) for pid in worker_pids(server.pid)]
        audit_at_end = audit_size()
    settle = min(5.0, args.soak / 3)
    after_settle = [s for s in samples if s["minute"] >= settle] or samples[-1:]
    base_rss = max(after_settle[0]["rss_mib"], default=0.0)
    end_rss = max(after_settle[-1]["rss_mib"], default=0.0)
    growth = (end_rss - base_rss) / base_rss if base_rss else 0.0
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "database": "postgresql" if args.database_url else "sqlite",
        "scale": args.scale,
        "minutes": args.soak,
        "pages": [p.name for p in pages],
        "samples": samples,
        "settled_after_minutes": settle,
        "rss_at_settle_mib": base_rss,
        "rss_at_end_mib": end_rss,
        "growth_after_settle": round(growth, 4),
        "level": growth < 0.10,
        # VmHWM of each worker since the logins (reset then when the kernel allows it).
        "peak_rss_mib": peaks,
        "peak_reset_after_logins": hwm_reset,
        # Fixed data: nothing recorded in the audit log while the pages were served (another
        # run on the same world would move it, and every cached part would be made again).
        "audit_events_during_soak": audit_at_end - audit_at_start,
    }


def letter_seconds() -> dict[str, float] | None:
    """Generate the joint letter, sign it four times (PAdES) and validate it: the timing test
    of the signing work, run on its own (tests/unit/test_signing_bundle.py)."""
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            # In this process, not in pytest-xdist's workers (pyproject's addopts say
            # `-n auto`): a worker's output never reaches -s, and the timing line is read
            # from it. (`-p no:xdist` would not do: addopts pass xdist's own options.)
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "tests/unit/test_signing_bundle.py::"
            "test_letter_and_four_pdf_signatures_and_validation_take_under_a_second",
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_")},
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(
        r"letter ([\d.]+) s, 4 PAdES signatures ([\d.]+) s, validation ([\d.]+) s, "
        r"total ([\d.]+) s",
        done.stdout,
    )
    if match is None:
        print(f"letter timing failed:\n{done.stdout[-2000:]}", file=sys.stderr)
        return None
    letter, signatures, validation, total = (float(x) for x in match.groups())
    return {"letter": letter, "signatures": signatures, "validation": validation, "total": total}


MAIL_MESSAGES = 2000


def mail_throughput(env: dict[str, str], messages: int = MAIL_MESSAGES) -> dict[str, Any] | None:
    """The notification worker's throughput (issue 23): `messages` complete messages queued
    in the world's outbox (mail_round.queue: text, HTML and a calendar attachment each),
    then one `flask notifications deliver --once` pass sends them to a local SMTP server
    (aiosmtpd on loopback, accepting everything). Messages per second over the whole command
    (start-up included) and from the first message to the last at the server; the messages
    are deleted afterwards, so the world stays as it was."""
    import mail_round
    from aiosmtpd.controller import Controller

    with app_context(env) as app:
        ids = mail_round.queue(app, messages)
    counter = mail_round.SmtpCounter()
    port = free_port()
    server = Controller(counter, hostname="127.0.0.1", port=port)
    server.start()
    worker_env = {
        **env,
        "CONSENSUS_MAIL_HOST": "127.0.0.1",
        "CONSENSUS_MAIL_PORT": str(port),
        "CONSENSUS_MAIL_STARTTLS": "false",
        "CONSENSUS_MAIL_SSL": "false",
    }
    try:
        started = time.perf_counter()
        output = flask(
            worker_env, "notifications", "deliver", "--once", "--limit", str(messages + 100)
        )
        seconds = time.perf_counter() - started
    except SystemExit as error:
        print(f"mail throughput failed: {error}", file=sys.stderr)
        return None
    finally:
        server.stop()
        with app_context(env) as app:
            left = mail_round.remove(app, ids)
    arrivals = counter.arrivals
    steady = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    return {
        "queued": messages,
        "delivered": len(arrivals),
        "states_after": left,
        "worker_said": output.strip().splitlines()[-1] if output.strip() else "",
        "seconds": round(seconds, 2),
        "messages_per_second": round(len(arrivals) / seconds, 1) if seconds else None,
        "first_to_last_seconds": round(steady, 2),
        "steady_messages_per_second": (round((len(arrivals) - 1) / steady, 1) if steady else None),
        "average_message_bytes": round(counter.bytes / max(1, len(arrivals))),
    }


def verdict(row: dict[str, Any]) -> str:
    if row["rps"] == 0 or row.get("reference"):
        return ""
    if row["method"] == "POST":
        return "ok" if row["p95_ms"] < TARGET_POST_P95_MS else "MISS"
    good = row["p95_ms"] < TARGET_P95_MS and (row["ratio"] or 0) >= TARGET_RATIO
    return "ok" if good else "MISS"


def memory_lines(report: dict[str, Any]) -> list[str]:
    """The workers' memory, the logins apart from serving the pages: a login checks a
    password with argon2, which takes 64 MiB for a moment by design (RFC 9106), so the peak
    through the logins is not the pages'. VmHWM is reset after the logins (clear_refs), and
    the target is judged on the peak of serving the pages."""
    memory = report.get("worker_memory", {})
    if not memory:
        return []
    logins = memory.get("after logins", {})
    pages = [name for name in memory if name not in {"after start", "after logins"}]
    peak = report["peak_worker_memory_mib"]
    reset = report.get("hwm_reset_after_logins")
    verdict = "ok" if peak <= TARGET_WORKER_MIB else "MISS"
    lines = [
        "worker memory (the larger of the workers, MiB):",
        f"  after start (booted): {memory.get('after start', {}).get('rss_mib')}",
        f"  after the logins (RSS): {logins.get('rss_mib')}",
        f"  peak through the logins (argon2, 64 MiB a password check, by design; apart): "
        f"{logins.get('hwm_mib')}",
        f"  peak serving the pages (VmHWM, "
        f"{'reset after the logins' if reset else 'NOT reset: includes the logins'}): "
        f"{peak}  target <= {TARGET_WORKER_MIB}: {verdict}",
    ]
    if pages:
        last = memory[pages[-1]]
        lines.append(f"  RSS after the last page ({pages[-1]}): {last.get('rss_mib')}")
    lines.append("  (the table's RSS column: the larger worker's VmRSS after each page)")
    return lines


def table(report: dict[str, Any]) -> str:
    header = (
        f"{'page':<22} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'vs (b)':>7} {'local':>6} {'SQL':>4} {'bytes':>9} {'errors':>6} {'miss':>6} "
        f"{'hit':>5} {'RSS':>5}  target  note"
    )
    lines = [header, "-" * len(header)]
    for row in [*report["ceiling"].values(), *report["pages"]]:
        ratio = f"{row['ratio']:.0%}" if row["ratio"] is not None else ""
        local = f"{row['local_ratio']:.0%}" if row.get("local_ratio") is not None else ""
        sql = "" if row["sql"] is None else str(row["sql"])
        size = "" if row["bytes"] is None else f"{row['bytes']:,}"
        target = verdict(row) if row["sql"] is not None or row["method"] == "POST" else ""
        miss = "" if row.get("miss_ms") is None else f"{row['miss_ms']:.1f}"
        hit = "" if row.get("hit_ms") is None else f"{row['hit_ms']:.1f}"
        rss = "" if row.get("rss_mib") is None else f"{row['rss_mib']:.0f}"
        lines.append(
            f"{row['name']:<22} {row['rps']:>8.0f} {row['p50_ms']:>7.1f} {row['p95_ms']:>7.1f} "
            f"{row['p99_ms']:>7.1f} {ratio:>7} {local:>6} {sql:>4} {size:>9} {row['errors']:>6} "
            f"{miss:>6} {hit:>5} {rss:>5}  {target:<6}  {row['note']}"
        )
    lines.append("")
    lines.append(
        "vs (b): against the best full run of ceiling (b), before or after the pages (the "
        "target); local: against ceiling (b) measured just before and after the page"
    )
    lines.append(
        "miss / hit: in-process service time in ms of one request with nothing cached and "
        "with the long parts in the fragment cache; SQL: statements of the cached request"
    )
    verify = report["audit_verify"]
    lines.append("")
    lines.extend(memory_lines(report))
    letter = report.get("letter_with_four_signatures_seconds")
    if letter:
        lines.append(
            f"joint letter + 4 PAdES signatures + validation: {letter['total']:.2f} s "
            f"(letter {letter['letter']:.2f}, signatures {letter['signatures']:.2f}, "
            f"validation {letter['validation']:.2f}; target < 1 s)"
        )
    mail = report.get("notification_mail")
    if mail:
        lines.append(
            f"notification worker: {mail['delivered']:,} of {mail['queued']:,} messages to a local "
            f"SMTP server in {mail['seconds']:.1f} s, {mail['messages_per_second']:,} messages/s "
            f"(start-up included); {mail['steady_messages_per_second']:,} messages/s from the "
            "first to the last"
        )
    if verify["events_per_second"]:
        lines.append(
            f"audit verify: {verify['events']:,} events at {verify['events_per_second']:,} "
            f"events/s (target {TARGET_VERIFY_RATE:,})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per page")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of unmeasured load per GET page first"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default SQLite)")
    parser.add_argument("--rebuild", action="store_true", help="build the world again")
    parser.add_argument("--no-load", action="store_true", help="only count SQL and bytes")
    parser.add_argument("--only", nargs="*", help="measure pages whose name contains these")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--soak",
        type=float,
        default=0,
        help="read-only soak of this many minutes instead (every GET page in turn, "
        "--duration seconds each; worker memory sampled after each)",
    )
    args = parser.parse_args()
    if args.duration > 120:
        parser.error("--duration is at most 120 seconds per page")
    if args.soak:
        result = soak(args)
        output = args.output or BENCH / "results" / "soak.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
        print(
            f"worker RSS {result['rss_at_settle_mib']} MiB after {result['settled_after_minutes']}"
            f" min, {result['rss_at_end_mib']} MiB at the end: "
            f"{result['growth_after_settle']:+.1%} ({'level' if result['level'] else 'GROWING'});"
            f" peak {result['peak_rss_mib']} MiB since the logins; audit events during the soak:"
            f" {result['audit_events_during_soak']} (0: fixed data)"
        )
        return
    args.output = args.output or BENCH / "results" / "last.json"
    report = run(args)
    print(table(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\nWritten to {shown}")


if __name__ == "__main__":
    main()
