"""gunicorn settings for the container image and the systemd unit:

    gunicorn --config python:consensus.gunicorn_config consensus.wsgi:app

Everything else comes from gunicorn's own environment variables and command-line flags,
which override this file: PORT (binds 0.0.0.0:$PORT; default 127.0.0.1:8000),
WEB_CONCURRENCY (workers), FORWARDED_ALLOW_IPS (which proxies may set X-Forwarded-*).

Metrics (consensus.web.ops) from several workers add up through prometheus_client's
multiprocess mode: PROMETHEUS_MULTIPROC_DIR is set here before any worker starts (a fresh
temporary directory unless the environment names one), emptied when gunicorn starts, and a
worker's live values are dropped when it exits.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="consensus-metrics-")

threads = 2
accesslog = "-"
# Long enough for the largest pages under load; a stuck worker is replaced after this.
timeout = 60


def on_starting(_server: Any) -> None:
    """Counts of a previous run must not be added to this one's."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
