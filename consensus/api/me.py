"""Who the token speaks for: the person, their memberships and the token's scopes."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_login import current_user

from consensus import permissions
from consensus.api import present, schemas
from consensus.api.core import blueprint, require_user
from consensus.extensions import db
from consensus.models import ApiToken

bp = blueprint("me", "The person the token belongs to.")


@bp.get("/me")
@bp.response(200, schemas.MeSchema)
def me() -> dict[str, Any]:
    """Your name, your memberships (and whether you hold each organisation's mandate now)
    and what this token may do."""
    require_user()
    token = db.session.get_one(ApiToken, g.api_token_id)
    return {
        "name": current_user.display_name,
        "memberships": [
            {
                "organisation": present.organisation(m.organisation),
                "role": m.role.value,
                "holds_mandate": permissions.holds_mandate(current_user, m.organisation),
            }
            for m in sorted(
                permissions.valid_memberships(current_user), key=lambda m: m.organisation.name
            )
        ],
        "scopes": token.scope_list,
        "token_expires_at": token.expires_at,
    }
