"""Scale-out on this machine (issue 15, item 5): scripts/scale-out starts PostgreSQL, Redis,
two gunicorn instances in production mode and nginx in front, and proves the journey, the
concurrent stances, the shared login limit and the loss of one instance. This test runs it
as an operator would and checks the figures it reports.

It runs its own PostgreSQL cluster whatever CONSENSUS_TEST_DATABASE_URL says (so it runs,
the same, in both passes of .ci/run); without redis-server, nginx or PostgreSQL's server
programs it skips, or fails under CONSENSUS_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "scale-out"


def _script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("scale_out", str(SCRIPT))
    spec = importlib.util.spec_from_loader("scale_out", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.mark.slow
def test_two_instances_behind_nginx_on_postgresql_and_redis(tmp_path):
    require_tool("redis-server")
    require_tool("nginx")
    if _script().postgres_bin() is None:
        require_tool("initdb")  # Debian keeps it in /usr/lib/postgresql/*/bin: not found there
    report_path = tmp_path / "report.json"
    script = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--json", str(report_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = script.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        script.terminate()  # SIGTERM: the script stops its servers before it exits
        output, _ = script.communicate(timeout=60)
        pytest.fail(f"scripts/scale-out took longer than 4 minutes:\n{output}")
    assert report_path.exists(), output
    report = json.loads(report_path.read_text())
    assert report["failures"] == [], output
    assert script.returncode == 0, output

    # (a) the journey's requests went to both instances, turn and turn about
    journey = report["journey"]["served_by"]
    assert set(journey) == {"a", "b"}
    assert report["journey"]["switches"] >= len(journey) // 2
    assert report["cache_checks"] > 0
    # (b) 20 concurrent stances: all accepted, each one recorded, one current, log intact
    concurrent = report["concurrent"]
    assert concurrent["served_by"] == ["a", "b"]
    assert concurrent["accepted"] == concurrent["added"] == 20
    assert concurrent["current"] == 1
    assert all(status in (302, 303) for status in concurrent["statuses"])
    assert report["verify_after_concurrent"].startswith("OK:")
    # (c) ten failures spread over both instances exhaust the one shared count
    limit = report["login_limit"]
    assert sorted({route for route, _ in limit["failures"]}) == ["a", "b"]
    assert all(status == 200 for _, status in limit["failures"])
    assert limit["refused"] == [["a", 429], ["b", 429]]
    # (d) instance a killed under load: nothing acknowledged is lost, b serves the rest
    kill = report["kill"]
    assert kill["lost"] == []
    assert kill["acknowledged"] > 0
    assert {"a", "b"} <= set(kill["before_kill_by"])
    assert kill["after_kill_by"] == ["b"] and kill["after_kill"] > 0
    assert report["verify_after_kill"].startswith("OK:")
