"""The REST API, version 1: a thin edge over the same services and the same rule book.

- `core.py`      the Api (flask-smorest: the OpenAPI document is derived from the code),
                 token authentication, scopes, rate limits, problem+json errors, API-Version
- `schemas.py`   marshmallow schemas of every resource (camelCase JSON, ISO 8601 times)
- `loaders.py`   a process, position, version, round by address; who may read it is the
                 pages' rule (web.loaders.load_published_process with or_visible)
- `processes.py`, `positions.py`, `endorsements.py`, `signing.py`, `audit.py`, `me.py`
                 the resources (read and write)
- `usecase.py`   the one commit point for API writes, built on web.usecase
- `dossier.py`   the dossier ZIP and the open data of a published process
- `reference.py` the readable reference page, rendered from the served OpenAPI document

See docs/api.md.
"""

from __future__ import annotations

from flask import Flask

PREFIX = "/api/v1"
VERSION = "1.0.0"


def init_app(app: Flask) -> None:
    from consensus.api import core

    core.init_app(app)
