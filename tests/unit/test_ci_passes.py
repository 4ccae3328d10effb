"""The PostgreSQL pass of .ci/run runs the tests that use the database under test, and no
test that uses it is left out (tests/conftest.py, CONSENSUS_TEST_DATABASE_ONLY)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collect(only: bool, database_url: str | None, *paths: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_TEST_DATABASE")}
    if only:
        env["CONSENSUS_TEST_DATABASE_ONLY"] = "1"
    if database_url:
        env["CONSENSUS_TEST_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", *paths],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _ids(answer: subprocess.CompletedProcess[str]) -> list[str]:
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return [line for line in answer.stdout.splitlines() if "::" in line]


def test_the_second_pass_keeps_exactly_the_tests_that_use_the_database():
    paths = ("tests/unit/test_merkle.py", "tests/web/test_app.py")
    every = _ids(_collect(False, None, *paths))
    # Never connected to while collecting.
    second = _collect(True, "postgresql+psycopg://nobody@127.0.0.1:1/none", *paths)
    kept = _ids(second)

    assert any(i.startswith("tests/unit/test_merkle.py") for i in every)
    assert not any(i.startswith("tests/unit/test_merkle.py") for i in kept)
    # test_app's tests that take the app (and so the database) all stay.
    assert "tests/web/test_app.py::test_demo_world_is_idempotent" in kept
    assert set(kept) < set(every)
    assert f"{len(every) - len(kept)} deselected" in second.stdout


def test_the_second_pass_needs_a_database_to_pass_on():
    answer = _collect(True, None, "tests/unit/test_merkle.py")
    assert answer.returncode != 0
    assert "CONSENSUS_TEST_DATABASE_ONLY=1 is for a second pass" in answer.stdout + answer.stderr
