"""For load balancers and monitoring: /healthz, /readyz and Prometheus metrics at /metrics.

- /healthz: the process answers (no database), for liveness probes.
- /readyz: the database answers, its schema is at the migrations' head and the audit log's
  head row is readable; 503 with the failing check otherwise, for readiness probes.
- /metrics: request counts and latencies per endpoint (prometheus_client), plus facts read
  from the database at scrape time (audit log size, open rounds). Only with
  CONSENSUS_METRICS_TOKEN set, and only for `Authorization: Bearer <token>`; without the
  setting the address does not exist (404) and no request is measured.

None of them needs a session, a CSRF token or the round clock; the request hooks add no
query to any page. With several worker processes (gunicorn), set PROMETHEUS_MULTIPROC_DIR
to an empty directory before starting them, so every worker's counts add up in one scrape
(prometheus_client's multiprocess mode; see docs/operations.md).
"""

from __future__ import annotations

import functools
import hmac
import os
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from consensus.extensions import db, limiter
from consensus.resources import resource_path

bp = Blueprint("ops", __name__)
# Probes come every few seconds from every load balancer: never rate limited. (Only GETs
# here, so no CSRF question arises.)
limiter.exempt(bp)  # nosemgrep: consensus-csrf-exempt - a rate-limit exemption, not CSRF

REQUESTS = Counter(
    "consensus_http_requests",
    "HTTP requests answered, by endpoint, method and status",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "consensus_http_request_duration_seconds",
    "Time from the first request hook to the response, by endpoint and method",
    ["endpoint", "method"],
)
# Anything else a client sends as a method is counted as "other" (labels stay bounded).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process runs and answers. Touches nothing else."""
    response = Response("ok\n", mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@functools.cache
def migration_heads() -> frozenset[str]:
    """The head revision(s) of the shipped migrations (read once per process)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(str(resource_path("migrations"))).get_heads())


def _check_readiness() -> dict[str, str]:
    from consensus.models import AuditLogHead

    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError:
        db.session.rollback()
        return {"database": "unreachable"}
    try:
        applied = frozenset(
            db.session.execute(text("SELECT version_num FROM alembic_version")).scalars()
        )
    except SQLAlchemyError:
        db.session.rollback()
        applied = frozenset()
    heads = migration_heads()
    if applied == heads:
        checks["migrations"] = "ok"
    else:
        checks["migrations"] = (
            f"database at {', '.join(sorted(applied)) or 'nothing'}, "
            f"code at {', '.join(sorted(heads))}: run `flask --app consensus db upgrade`"
        )
    try:
        db.session.execute(select(AuditLogHead.size).where(AuditLogHead.id == 1)).all()
        checks["audit"] = "ok"
    except SQLAlchemyError:
        db.session.rollback()
        checks["audit"] = "the audit log's head cannot be read"
    return checks


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: database reachable, schema at the migrations' head, audit head readable."""
    checks = _check_readiness()
    ready = all(value == "ok" for value in checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if ready else 503


class _DatabaseFacts:
    """Gauges read from the database when scraped: cheap, indexed single-row queries."""

    def collect(self) -> Iterator[Metric]:
        from consensus.models import AuditLogHead, Round
        from consensus.models.processes import RoundState

        size = db.session.execute(
            select(AuditLogHead.size).where(AuditLogHead.id == 1)
        ).scalar_one_or_none()
        yield GaugeMetricFamily(
            "consensus_audit_log_events", "Events in the audit log", value=size or 0
        )
        open_rounds = db.session.execute(
            select(func.count()).select_from(Round).where(Round.state == RoundState.OPEN)
        ).scalar_one()
        yield GaugeMetricFamily("consensus_rounds_open", "Rounds open now", value=open_rounds)
        from consensus.notifications.outbox import queue_counts

        mail = GaugeMetricFamily(
            "consensus_mail_messages",
            "Notification e-mail in the outbox by state (queued: waiting or retrying; dead: "
            "undeliverable, see /admin/mail)",
            labels=["state"],
        )
        for state, count in queue_counts().items():
            mail.add_metric([state], count)
        yield mail


def _authorised() -> bool:
    token = str(current_app.config.get("METRICS_TOKEN") or "")
    if not token:
        abort(404)
    offered = request.headers.get("Authorization", "")
    return hmac.compare_digest(offered.encode(), f"Bearer {token}".encode())


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format; see the module docstring for who may read it."""
    if not _authorised():
        return Response(
            "A bearer token is required.\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    facts = CollectorRegistry(auto_describe=False)
    facts.register(_DatabaseFacts())  # type: ignore[arg-type]
    body = generate_latest(registry) + generate_latest(facts)
    response = Response(body, mimetype=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


def _start_clock() -> None:
    g.metrics_started = time.perf_counter()


def _measure(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is not None:
        endpoint = request.endpoint or "none"
        method = request.method if request.method in _METHODS else "other"
        LATENCY.labels(endpoint, method).observe(time.perf_counter() - started)
        REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    if app.config.get("METRICS_TOKEN"):
        # First hook in, last hook out (after_request hooks run in reverse order), so the
        # latency includes the other hooks, such as splicing cached page parts.
        app.before_request_funcs.setdefault(None, []).insert(0, _start_clock)
        app.after_request_funcs.setdefault(None, []).insert(0, _measure)
