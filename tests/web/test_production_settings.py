"""Production refuses unsafe settings with one clear line, no traceback (issue 15): through
the real `flask --app consensus` command and the real gunicorn, as an operator meets it."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from consensus import create_app
from consensus.config import load_config
from consensus.extensions import db
from tests.conftest import TEST_CONFIG
from tests.helpers import PRODUCTION_ENVIRONMENT, set_production_environment
from tests.web.test_quickstart import _free_port

BIN = Path(sys.executable).parent


def _environment(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_")}
    env.update(PRODUCTION_ENVIRONMENT)
    env["CONSENSUS_INSTANCE_PATH"] = str(tmp_path / "instance")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


REFUSALS = [
    ({"CONSENSUS_SECRET_KEY": None}, "CONSENSUS_SECRET_KEY must be set"),
    ({"CONSENSUS_SECRET_KEY": "k" * 31}, "CONSENSUS_SECRET_KEY is 31 bytes long"),
    ({"CONSENSUS_SECURITY_CONTACT": None}, "CONSENSUS_SECURITY_CONTACT must be set"),
    ({"CONSENSUS_SECURITY_CONTACT": "security@gemeente.example"}, "CONSENSUS_SECURITY_CONTACT"),
    ({"CONSENSUS_AUDIT_ORIGIN": None}, "CONSENSUS_AUDIT_ORIGIN must be set"),
    ({"CONSENSUS_AUDIT_ORIGIN": "consensus.example.org"}, "CONSENSUS_AUDIT_ORIGIN must be set"),
    ({"CONSENSUS_RATELIMIT_STORAGE_URI": None}, "memory:// counts per worker process"),
    ({"CONSENSUS_RATELIMIT_STORAGE_URI": "memory://"}, "memory:// counts per worker process"),
    ({"CONSENSUS_KEY_ENCRYPTION_KEY": None}, "CONSENSUS_KEY_ENCRYPTION_KEY must be set"),
    ({"CONSENSUS_KEY_ENCRYPTION_KEY": "c2hvcnQ="}, "must decode to 32 bytes, not 5"),
]


@pytest.mark.parametrize(("changes", "message"), REFUSALS, ids=[m for _, m in REFUSALS])
def test_flask_command_refuses_with_one_line(tmp_path, changes, message):
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "consensus", "rounds", "tick"],
        env=_environment(tmp_path, **changes),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: CONSENSUS_") and message in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_a_safe_production_environment_is_accepted(tmp_path):
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "consensus", "rounds", "--help"],
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "tick" in result.stdout


def test_gunicorn_stops_with_one_line(tmp_path):
    """Not a loop of workers that die: gunicorn reads exit status 4 as "the application
    failed to load" and stops; the reason is our one line."""
    result = subprocess.run(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{_free_port()}", "consensus.wsgi:app"],
        env=_environment(tmp_path, CONSENSUS_SECRET_KEY=None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(ours) == 1 and "CONSENSUS_SECRET_KEY must be set" in ours[0], result.stderr
    assert "Traceback" not in result.stderr
    assert "App failed to load" in result.stderr


def test_short_secret_key_is_a_warning_in_development(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("CONSENSUS_ENV", raising=False)
    monkeypatch.setenv("CONSENSUS_SECRET_KEY", "short")
    with caplog.at_level(logging.WARNING, logger="consensus.config"):
        config = load_config(str(tmp_path))
    assert config["SECRET_KEY"] == "short"
    assert "CONSENSUS_SECRET_KEY is 5 bytes long" in caplog.text


def test_rate_limits_switched_off_in_production_are_logged(monkeypatch, tmp_path, caplog):
    set_production_environment(monkeypatch)
    monkeypatch.setenv("CONSENSUS_RATELIMIT_ENABLED", "0")
    monkeypatch.setenv("CONSENSUS_RATELIMIT_STORAGE_URI", "memory://")
    with caplog.at_level(logging.WARNING, logger="consensus.config"):
        load_config(str(tmp_path))
    assert "logins are not rate limited" in caplog.text


def test_a_new_sqlite_file_is_private(tmp_path):
    database = tmp_path / "new.sqlite"
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for companion in tmp_path.glob("new.sqlite-*"):
        assert stat.S_IMODE(companion.stat().st_mode) & 0o077 == 0, companion


def test_an_existing_sqlite_file_keeps_its_mode(tmp_path):
    database = tmp_path / "old.sqlite"
    database.touch(mode=0o640)
    database.chmod(0o640)
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"})
    with app.app_context():
        db.engine.dispose()
    assert stat.S_IMODE(database.stat().st_mode) == 0o640
