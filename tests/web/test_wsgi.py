"""The production entry point (docs/operations.md): `gunicorn consensus.wsgi:app` serves, and
the module freezes the start-up objects out of the garbage collector's view."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.web.test_quickstart import ROOT, _free_port, fetch_when_up


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_")}
    env["CONSENSUS_INSTANCE_PATH"] = str(tmp_path / "instance")
    return env


def test_the_wsgi_module_freezes_start_up_objects(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import gc, consensus.wsgi; print(gc.get_freeze_count())"],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(done.stdout.strip()) > 10_000


def test_gunicorn_serves_the_wsgi_app(tmp_path):
    env = _env(tmp_path)
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "flask"), "--app", "consensus", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            str(bin_dir / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "consensus.wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page = fetch_when_up(f"http://127.0.0.1:{port}/about", server, 60)
        assert "Consensus" in page and "</html>" in page, (
            server.stdout.read() if server.poll() is not None else "gunicorn did not answer"
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stdout:
            server.stdout.close()
