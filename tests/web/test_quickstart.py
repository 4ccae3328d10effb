"""README's first quick-start command: `flask --app consensus serve` migrates, loads the
demo world and serves — checked for real in a subprocess on a scratch instance folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch_when_up(url: str, server: subprocess.Popen[str], seconds: float) -> str:
    """The page at `url` once the server answers ("" if it exited or never answered)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if server.poll() is not None:
                return ""
            time.sleep(0.3)
    return ""


def test_serve_migrates_loads_the_demo_and_serves(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_")}
    env["CONSENSUS_INSTANCE_PATH"] = str(tmp_path / "instance")
    flask = Path(sys.executable).with_name("flask")
    server = subprocess.Popen(
        [str(flask), "--app", "consensus", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Read the log while the server runs: a full pipe would stop a chatty server.
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True)
    reader.start()
    try:
        page = fetch_when_up(f"http://127.0.0.1:{port}/public/", server, 90)
        assert "Gezamenlijke inbreng op de nationale digitaliseringsstrategie" in page, (
            "".join(lines)[-3000:] or "server did not answer"
        )
        assert (tmp_path / "instance" / "consensus.sqlite").exists()
        fetch_when_up(f"http://127.0.0.1:{port}/no-such-page", server, 5)  # a 404 line too
    finally:
        server.terminate()
        server.wait(timeout=10)
        reader.join(timeout=10)
        if server.stdout:
            server.stdout.close()
    log = "".join(lines)
    # The log goes to a pipe here (as to a file or journald): plain text, no colour codes.
    # The demo's made-up history is not mailed to the console (a quiet start).
    assert "this mail was not sent" not in log, log[:2000]
    assert '"GET /public/ HTTP/1.1" 200' in log, log[-2000:]
    assert '"GET /no-such-page HTTP/1.1" 404' in log, log[-2000:]
    assert "\x1b[" not in log, repr(log[-500:])
