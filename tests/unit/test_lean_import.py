"""Lean web workers (issue 23): the web application, as gunicorn loads it, does not import
the PDF and signing libraries (pyHanko and its certificate validator, asn1crypto,
WeasyPrint), the QR-code library, Alembic, icalendar, the OpenID Connect client's HTTP stack
or cryptography; they are loaded by the functions that use them. Every
worker used to carry them from the start (137 MB right after start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "pyhanko",
    "pyhanko_certvalidator",
    "asn1crypto",
    "weasyprint",
    "qrcode",
    "PIL",
    # Migrations (the `flask db` commands), iCalendar (mail and the feed) and the OpenID
    # Connect client's HTTP stack (a login through a provider): about 20 MiB a worker.
    "flask_migrate",
    "alembic",
    "mako",
    "icalendar",
    "requests",
    "authlib",
    # cryptography's bindings (OpenSSL built in): about 6 MiB a worker; the pages show
    # checkpoints, keys and certificates without them — signing, sealing and checking do.
    "cryptography",
)

PROBE = """
import json, sys
import consensus.wsgi
client = consensus.wsgi.app.test_client()
statuses = [client.get(path).status_code for path in ("/", "/login", "/public/", "/about")]
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"statuses": statuses, "loaded": loaded}))
"""


def _probe(tmp_path: Path, *heavy: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENSUS_")}
    env.update(
        {
            "CONSENSUS_INSTANCE_PATH": str(tmp_path),
            "CONSENSUS_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "CONSENSUS_ENV": "development",
        }
    )
    subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "flask", "--app", "consensus", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    done = subprocess.run(  # noqa: S603 - our own probe
        [sys.executable, "-c", PROBE, json.dumps(list(heavy))],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_web_app_does_not_import_pdf_and_signing_libraries(tmp_path: Path) -> None:
    found = _probe(tmp_path, *HEAVY)
    assert found["statuses"] == [200, 200, 200, 200]
    assert found["loaded"] == [], f"imported by every web worker: {found['loaded']}"


def test_the_probe_sees_a_library_that_is_imported(tmp_path: Path) -> None:
    """The probe itself works: a library the app does import is reported."""
    found = _probe(tmp_path, "flask", "sqlalchemy")
    assert found["loaded"] == ["flask", "sqlalchemy"]
