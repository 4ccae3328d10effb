"""Consensus: joint positions, equal-weight endorsements and verifiable co-signing.

The package itself imports nothing heavy: `create_app` (consensus.app) loads Flask, the
extensions, the blueprints and the commands on first use. A process that needs only part
of the package, such as a worker of `flask audit verify`, starts without all of that.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

# pyHanko imports cryptography's DSAPrivateKey, which cryptography 51 deprecates; the warning
# is about pyHanko's import, not about anything Consensus does (it never uses DSA). Silenced by
# message and module only, so every other warning still shows. Keep the same filter in
# pyproject.toml's pytest settings (pytest puts its own filters in front of these).
warnings.filterwarnings(
    "ignore", message=r"DSA is deprecated", category=UserWarning, module=r"pyhanko\."
)

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The application (see consensus.app.create_app), as `flask --app consensus` builds it.

    Settings that are unsafe or missing (consensus.config.ConfigError) end the process with
    one line on stderr and exit status 1, never a traceback.
    """
    from consensus.app import create_app as build
    from consensus.config import ConfigError

    try:
        return build(test_config)
    except ConfigError as error:
        raise SystemExit(f"Error: {error}") from None
