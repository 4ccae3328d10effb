"""/.well-known/security.txt (RFC 9116): how to report a vulnerability, and until when
that information holds. On the Dutch government's mandatory list of standards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, current_app, url_for

bp = Blueprint("wellknown", __name__)


def security_txt_expires(now: datetime | None = None) -> str:
    """CONSENSUS_SECURITY_TXT_EXPIRES (ISO 8601), or the start of the day (UTC) 180 days
    ahead; RFC 9116 requires it and advises less than a year, so a forgotten file goes stale
    visibly. A whole day, so the file is the same all day (for caches, and for every reader
    within one second)."""
    configured = str(current_app.config.get("SECURITY_TXT_EXPIRES") or "").strip()
    if configured:
        moment = datetime.fromisoformat(configured.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    else:
        ahead = (now or datetime.now(UTC)) + timedelta(days=180)
        moment = ahead.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@bp.get("/.well-known/security.txt")
def security_txt() -> Response:
    contact = str(current_app.config["SECURITY_CONTACT"])
    lines = [
        f"Contact: {contact}",
        f"Expires: {security_txt_expires()}",
        "Preferred-Languages: nl, en",
        f"Canonical: {url_for('wellknown.security_txt', _external=True)}",
        f"Policy: {url_for('main.about', _external=True)}",
    ]
    response = Response("\n".join(lines) + "\n", mimetype="text/plain")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
