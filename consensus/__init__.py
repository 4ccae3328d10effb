"""Consensus: joint positions, equal-weight endorsements and verifiable co-signing.

The package itself imports nothing heavy: `create_app` (consensus.app) loads Flask, the
extensions, the blueprints and the commands on first use. A process that needs only part
of the package, such as a worker of `flask audit verify`, starts without all of that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The application (see consensus.app.create_app)."""
    from consensus.app import create_app as build

    return build(test_config)
