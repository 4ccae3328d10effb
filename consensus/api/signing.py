"""Co-signatures of a process's current signing round, each verified now (as on the public
page: web.signing.public_signature_context). Signing itself needs re-authentication with
a password or an own key and stays on the pages."""

from __future__ import annotations

from typing import Any

from consensus.api import present, schemas
from consensus.api.core import blueprint
from consensus.web.signing import public_signature_context

bp = blueprint("signing", "Co-signatures and their verification status.")


def signatures_data(slug: str) -> dict[str, Any]:
    process = present.load_readable_process(slug)
    context = public_signature_context(process)
    return {
        "signatures": [
            present.signature(check.signature, check.verified, check.reason, check.key_revoked)
            for check in context["checks"]  # type: ignore[attr-defined]
        ]
    }


@bp.get("/processes/<slug>/signatures")
@bp.response(200, schemas.SignaturesSchema)
def signatures(slug: str) -> dict[str, Any]:
    """The current co-signatures with their verification status (checked now)."""
    return signatures_data(slug)
