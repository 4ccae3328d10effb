"""Where the shipped folders are: templates/, static/, migrations/ and tools/.

In the repository they sit next to the package (an editable install or a checkout); a
built wheel carries them inside it as consensus/<name> (setup.py copies them there). The
installed location wins, so a wheel never reaches for a checkout it happens to run in.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """The folder `name` ("templates", "static", "migrations" or "tools")."""
    installed = PACKAGE_DIR / name
    if installed.is_dir():
        return installed
    return PACKAGE_DIR.parent / name
