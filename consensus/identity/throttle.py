"""Login throttling that slows an attacked account down without locking its owner out.

ASVS 2.2.1: guessing must be slowed per account (across addresses, so an attacker spreading
guesses over many addresses gains nothing) and per address (the route's Flask-Limiter
limit, set high enough for an office behind one address), and neither may become a
lockout an attacker can trigger.

Per account (keyed by a hash of the typed e-mail address, known or not, so the answer never
tells whether an account exists):
- up to `LOGIN_ACCOUNT_FREE_FAILURES` failures in `LOGIN_ACCOUNT_WINDOW_SECONDS` cost
  nothing extra;
- from the free-th failure on, each failure starts a cooling period of
  2^(failures - free + 1) seconds (2, 4, 8, …), at most `LOGIN_ACCOUNT_MAX_DELAY_SECONDS`;
  while it runs, addresses that already failed on this account are refused without the
  password being checked;
- not slowed: an address that has not failed on this account (a colleague, the owner at
  home) and a browser that logged in to this account before (the device cookie, OWASP's
  "device cookies"), as long as that browser itself keeps under the free failures.

The counts live in Flask-Limiter's storage (CONSENSUS_RATELIMIT_STORAGE_URI), so every
worker and instance shares them (Redis in production). Refusals are audited by the caller
through `services.accounts.record_login_throttled`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from consensus.extensions import db, limiter
from consensus.models import AuditEvent, utcnow
from consensus.services.accounts import normalise_email

DEVICE_COOKIE = "consensus_device"
# In production, like the session cookie (ASVS 3.4.4): Secure, Path=/, no Domain.
DEVICE_COOKIE_PRODUCTION = "__Host-device"
DEVICE_COOKIE_DAYS = 180
_PREFIX = "consensus-login"


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    retry_after: int = 0  # seconds


@dataclass(frozen=True)
class AccountState:
    """What an administrator sees of one account's throttle."""

    email: str
    failures: int
    slowed_for: int  # seconds left of the current cooling period, 0 when not slowed


def _enabled() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED", True))


def _account_key(email: str) -> str:
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()[:32]


def _free() -> int:
    return int(current_app.config["LOGIN_ACCOUNT_FREE_FAILURES"])


def _window() -> int:
    return int(current_app.config["LOGIN_ACCOUNT_WINDOW_SECONDS"])


def _delay(failures: int) -> int:
    excess = failures - _free()
    cap = int(current_app.config["LOGIN_ACCOUNT_MAX_DELAY_SECONDS"])
    return 0 if excess < 0 else min(2 ** min(excess + 1, 30), cap)


def _seconds_left(key: str) -> int:
    storage = limiter.storage
    if storage.get(key) <= 0:
        return 0
    return max(1, int(storage.get_expiry(key) - time.time() + 0.999))


def _device_key(device: str) -> str:
    return hashlib.sha256(device.encode()).hexdigest()[:32]


def check(email: str, address: str, *, device: str | None = None) -> Verdict:
    """May a password (or second-factor code) for this account be checked now, from this
    address? `device` is the browser's device cookie when `device_trusted` accepted it for
    this account. Read-only: only `failed` counts."""
    if not _enabled():
        return Verdict(True)
    storage = limiter.storage
    account = _account_key(email)
    if storage.get(f"{_PREFIX}:fail:{account}") < _free():
        return Verdict(True)
    if device is not None:
        from_here = storage.get(f"{_PREFIX}:dev:{account}:{_device_key(device)}")
        if from_here < _free():
            return Verdict(True)
    elif storage.get(f"{_PREFIX}:addr:{account}:{address}") == 0:
        return Verdict(True)
    wait = _seconds_left(f"{_PREFIX}:cool:{account}")
    return Verdict(wait == 0, wait)


def failed(email: str, address: str, *, device: str | None = None) -> None:
    """Count a wrong password or code for this account, from this address (or from this
    trusted browser, which is counted on its own)."""
    if not _enabled():
        return
    storage = limiter.storage
    account = _account_key(email)
    failures = storage.incr(f"{_PREFIX}:fail:{account}", _window())
    if device is not None:
        storage.incr(f"{_PREFIX}:dev:{account}:{_device_key(device)}", _window())
    else:
        storage.incr(f"{_PREFIX}:addr:{account}:{address}", _window())
    delay = _delay(failures)
    if delay:
        cooling = f"{_PREFIX}:cool:{account}"
        storage.clear(cooling)  # a new period from now (incr keeps an existing expiry)
        storage.incr(cooling, delay)


def succeeded(email: str, address: str, *, device: str | None = None) -> None:
    """A correct login forgets this address's (or browser's) failures on the account; the
    account's own count stays (the attacker elsewhere gains nothing from the owner's login)."""
    if not _enabled():
        return
    account = _account_key(email)
    if device is not None:
        limiter.storage.clear(f"{_PREFIX}:dev:{account}:{_device_key(device)}")
    else:
        limiter.storage.clear(f"{_PREFIX}:addr:{account}:{address}")


def state(email: str) -> AccountState:
    storage = limiter.storage
    account = _account_key(email)
    failures = storage.get(f"{_PREFIX}:fail:{account}")
    slowed = _seconds_left(f"{_PREFIX}:cool:{account}") if failures >= _free() else 0
    return AccountState(normalise_email(email), failures, slowed)


# --- The device cookie: a browser that logged in to this account before ----------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt="consensus.device")


def device_cookie_name() -> str:
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    return DEVICE_COOKIE_PRODUCTION if secure else DEVICE_COOKIE


def device_token(email: str) -> str:
    return _serializer().dumps(_account_key(email))


def trusted_device(token: str | None, email: str) -> str | None:
    """The device cookie when it proves an earlier login to this account, else None."""
    if not token or len(token) > 300:
        return None
    try:
        account = _serializer().loads(token, max_age=DEVICE_COOKIE_DAYS * 86400)
    except BadSignature:
        return None
    return token if account == _account_key(email) else None


def throttled_accounts() -> list[AccountState]:
    """Accounts at or past their free failures now, for administrators: the candidates are
    the addresses of failed or throttled logins in the audit trail within the window (the
    counters themselves live in the limiter's storage, which cannot be listed)."""
    since = utcnow() - timedelta(seconds=_window())
    payloads = db.session.scalars(
        select(AuditEvent.payload)
        .where(
            AuditEvent.action.in_(("user.login_failed", "user.login_throttled")),
            AuditEvent.created_at >= since,
        )
        .order_by(AuditEvent.seq.desc())
        .limit(10_000)
    )
    emails: dict[str, None] = {}
    for payload in payloads:
        try:
            email = json.loads(payload).get("email")
        except ValueError:
            continue
        if isinstance(email, str) and email:
            emails.setdefault(email)
    states = [state(email) for email in emails]
    return sorted(
        (s for s in states if s.failures >= _free()), key=lambda s: (-s.failures, s.email)
    )
