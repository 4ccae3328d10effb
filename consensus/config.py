"""Settings, read from CONSENSUS_* environment variables with safe development defaults."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("consensus.config")

DEMO_PASSWORD = "consensus-demo"  # noqa: S105 - documented demo password, refused in production  # nosec B105


MIN_SECRET_KEY_BYTES = 32
# Development defaults that name nobody: production must say who it is.
PLACEHOLDER_SECURITY_CONTACT = "mailto:security@consensus.example.org"
PLACEHOLDER_AUDIT_ORIGIN = "consensus.example.org"


class ConfigError(RuntimeError):
    """Raised when the environment does not describe a safe configuration.

    Its message is one line that names the variable and what to do; the entry points
    (consensus.create_app for the flask command, consensus.wsgi) print it without a
    traceback and stop.
    """


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}")
    return number


def _dev_secret_key(instance_path: Path) -> str:
    """Generate a secret key once per development instance and keep it there."""
    path = instance_path / "secret-key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def base_url_settings(base_url: str, *, production: bool = False) -> dict[str, Any]:
    """CONSENSUS_BASE_URL, the public address (`https://host[:port][/prefix]`), as Flask
    settings. Every absolute link (reset mail, calendar feed, security.txt) is built from it,
    in a request (consensus.web.proxy) and outside one (SERVER_NAME, APPLICATION_ROOT,
    PREFERRED_URL_SCHEME); requests naming another host are refused. Empty (development
    only): links follow the request's Host header and every host is served."""
    if not base_url.strip():
        if production:
            raise ConfigError("CONSENSUS_BASE_URL must be set when CONSENSUS_ENV=production")
        return {
            "BASE_URL": "",
            "SERVER_NAME": None,
            "APPLICATION_ROOT": "/",
            "PREFERRED_URL_SCHEME": "http",
        }
    parts = urlsplit(base_url.strip())
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = parts._replace(scheme="")
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            f"CONSENSUS_BASE_URL must look like https://consensus.example.org, not {base_url!r}"
        )
    if production and parts.scheme != "https":
        raise ConfigError("CONSENSUS_BASE_URL must start with https:// in production")
    prefix = parts.path.rstrip("/")
    return {
        "BASE_URL": f"{parts.scheme}://{parts.netloc.lower()}{prefix}",
        "SERVER_NAME": parts.netloc.lower(),
        "APPLICATION_ROOT": prefix or "/",
        "PREFERRED_URL_SCHEME": parts.scheme,
    }


def _trusted_proxies() -> int:
    """CONSENSUS_TRUSTED_PROXIES: how many reverse proxies in front of the app append to
    X-Forwarded-For (0: none; the header is then ignored, as anyone can send it)."""
    value = os.environ.get("CONSENSUS_TRUSTED_PROXIES", "0").strip() or "0"
    if not value.isdigit():
        raise ConfigError(f"CONSENSUS_TRUSTED_PROXIES must be a number >= 0, not {value!r}")
    return int(value)


def load_config(instance_path: str) -> dict[str, Any]:
    """Build the Flask config from the environment.

    Production (CONSENSUS_ENV=production) demands an explicit secret key and turns on
    secure cookies; development generates what it needs in the instance folder.
    """
    instance = Path(instance_path)
    env = os.environ.get("CONSENSUS_ENV", "development").strip().lower()
    production = env == "production"

    secret_key = os.environ.get("CONSENSUS_SECRET_KEY")
    if not secret_key:
        if production:
            raise ConfigError(
                "CONSENSUS_SECRET_KEY must be set when CONSENSUS_ENV=production (at least "
                f"{MIN_SECRET_KEY_BYTES} bytes, e.g. the output of "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        secret_key = _dev_secret_key(instance)
    elif len(secret_key.encode()) < MIN_SECRET_KEY_BYTES:
        message = (
            f"CONSENSUS_SECRET_KEY is {len(secret_key.encode())} bytes long; "
            f"use at least {MIN_SECRET_KEY_BYTES} random bytes"
        )
        if production:
            raise ConfigError(message)
        log.warning("%s (refused in production)", message)

    database_url = os.environ.get("CONSENSUS_DATABASE_URL") or (
        f"sqlite:///{instance / 'consensus.sqlite'}"
    )
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship.
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")

    config = {
        "CONSENSUS_ENV": env,
        "PRODUCTION": production,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REQUIRE_2FA": _env_bool("CONSENSUS_REQUIRE_2FA", production),
        "RATELIMIT_STORAGE_URI": os.environ.get("CONSENSUS_RATELIMIT_STORAGE_URI") or "memory://",
        "RATELIMIT_ENABLED": _env_bool("CONSENSUS_RATELIMIT_ENABLED", True),
        # Requests per personal access token to the REST API (docs/api.md).
        "API_RATE_LIMIT": os.environ.get("CONSENSUS_API_RATE_LIMIT") or "300/minute",
        # Per client address: high enough for an office behind one address (ASVS 2.2.1);
        # the per-account slowing is consensus.identity.throttle.
        "LOGIN_RATE_LIMIT": os.environ.get("CONSENSUS_LOGIN_RATE_LIMIT", "100 per 5 minutes"),
        "LOGIN_ACCOUNT_FREE_FAILURES": _env_int("CONSENSUS_LOGIN_ACCOUNT_FREE_FAILURES", 10),
        "LOGIN_ACCOUNT_WINDOW_SECONDS": _env_int("CONSENSUS_LOGIN_ACCOUNT_WINDOW_SECONDS", 3600),
        "LOGIN_ACCOUNT_MAX_DELAY_SECONDS": _env_int(
            "CONSENSUS_LOGIN_ACCOUNT_MAX_DELAY_SECONDS", 900
        ),
        "KEY_ENCRYPTION_KEY": os.environ.get("CONSENSUS_KEY_ENCRYPTION_KEY") or None,
        # Passkeys: the relying party ID; default the host name of the request (the base URL).
        "WEBAUTHN_RP_ID": os.environ.get("CONSENSUS_WEBAUTHN_RP_ID") or None,
        "AUDIT_ORIGIN": os.environ.get("CONSENSUS_AUDIT_ORIGIN") or PLACEHOLDER_AUDIT_ORIGIN,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        # ASVS 3.4.4: "__Host-" makes browsers refuse the cookie unless Secure, Path=/ and
        # without Domain, so no subdomain or plain-HTTP page can plant or overwrite it.
        "SESSION_COOKIE_NAME": "__Host-session" if production else "session",
        "SESSION_COOKIE_PATH": "/",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": production,
        "MAX_CONTENT_LENGTH": int(os.environ.get("CONSENSUS_MAX_CONTENT_LENGTH", 2 * 1024 * 1024)),
        "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead of a clock
        "BABEL_DEFAULT_LOCALE": "nl",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Amsterdam",
        "LANGUAGES": ["nl", "en"],
        "DEMO_PASSWORD_ALLOWED": not production,
        # Server-side sessions (consensus.services.sessions): idle timeout and absolute age.
        "SESSION_IDLE_MINUTES": int(os.environ.get("CONSENSUS_SESSION_IDLE_MINUTES", 30)),
        "SESSION_MAX_HOURS": int(os.environ.get("CONSENSUS_SESSION_MAX_HOURS", 12)),
        # Outgoing mail (password reset links) over SMTP.
        # Empty (the development default): messages are written to the log instead.
        "MAIL_HOST": os.environ.get("CONSENSUS_MAIL_HOST", "localhost" if production else ""),
        "MAIL_PORT": int(os.environ.get("CONSENSUS_MAIL_PORT", 25)),
        "MAIL_USERNAME": os.environ.get("CONSENSUS_MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("CONSENSUS_MAIL_PASSWORD", ""),
        "MAIL_STARTTLS": _env_bool("CONSENSUS_MAIL_STARTTLS", production),
        "MAIL_SSL": _env_bool("CONSENSUS_MAIL_SSL", False),
        "MAIL_SENDER": os.environ.get("CONSENSUS_MAIL_SENDER", "consensus@localhost"),
        "MAIL_TIMEOUT": float(os.environ.get("CONSENSUS_MAIL_TIMEOUT", 10)),
        "MAIL_REPLY_TO": os.environ.get("CONSENSUS_MAIL_REPLY_TO", ""),
        # The notification outbox (docs/notifications.md): attempts before a message is
        # dead (back-off 1, 2, 4, … minutes, at most 30: 12 attempts span about 3.5 hours).
        "NOTIFICATIONS_MAX_ATTEMPTS": int(
            os.environ.get("CONSENSUS_NOTIFICATIONS_MAX_ATTEMPTS", 12)
        ),
        # Messages the worker claims, sends over one SMTP connection and records together.
        "NOTIFICATIONS_BATCH_SIZE": int(os.environ.get("CONSENSUS_NOTIFICATIONS_BATCH_SIZE", 50)),
        "PASSWORD_RESET_MINUTES": int(os.environ.get("CONSENSUS_PASSWORD_RESET_MINUTES", 30)),
        # /.well-known/security.txt (RFC 9116); Expires is mandatory there.
        "SECURITY_CONTACT": (
            os.environ.get("CONSENSUS_SECURITY_CONTACT") or PLACEHOLDER_SECURITY_CONTACT
        ),
        "SECURITY_TXT_EXPIRES": os.environ.get("CONSENSUS_SECURITY_TXT_EXPIRES", ""),
        # Where people report an accessibility problem (the accessibility statement).
        "ACCESSIBILITY_CONTACT": os.environ.get(
            "CONSENSUS_ACCESSIBILITY_CONTACT", "mailto:toegankelijkheid@consensus.example.org"
        ),
        # Rendered parts of long pages kept per worker (consensus.web.fragments); 0 = off.
        "FRAGMENT_CACHE_MB": int(os.environ.get("CONSENSUS_FRAGMENT_CACHE_MB", 8)),
        # Public pages for readers who are not logged in: how long a shared cache (and the
        # browser) may reuse them without asking (consensus.web.shared_cache).
        "PUBLIC_CACHE_SECONDS": int(os.environ.get("CONSENSUS_PUBLIC_CACHE_SECONDS", 60)),
        # A version page shows every paragraph's discussion while the version has at most
        # this many comments; above, each is loaded when its paragraph is opened.
        "VERSION_INLINE_COMMENTS": int(os.environ.get("CONSENSUS_VERSION_INLINE_COMMENTS", 150)),
        # Several instances behind a load balancer: each may name itself, and then answers
        # with an X-Consensus-Instance header (which instance served what; empty: no header).
        "INSTANCE_NAME": os.environ.get("CONSENSUS_INSTANCE_NAME", "").strip(),
        # Behind a reverse proxy (consensus.web.proxy, docs/operations.md).
        "TRUSTED_PROXIES": _trusted_proxies(),
        **base_url_settings(os.environ.get("CONSENSUS_BASE_URL", ""), production=production),
        # Trusted time for PDF signatures (docs/signing.md): an RFC 3161 timestamping
        # service. Set, every PAdES signature gets a signature timestamp (B-T) and the final
        # letter validation data and a document timestamp (B-LTA); unset, signing times are
        # the platform's clock and the page says so.
        "TSA_URL": os.environ.get("CONSENSUS_TSA_URL", "").strip(),
        "TSA_TIMEOUT": float(os.environ.get("CONSENSUS_TSA_TIMEOUT", 10)),
        # A directory of trust anchors (PEM or DER certificates: a PKIoverheid root, the
        # CAs of the EU trusted list an organisation relies on), read from disk, never
        # fetched. The platform's own CA is always an anchor for its own certificates.
        "TRUST_ANCHORS": os.environ.get("CONSENSUS_TRUST_ANCHORS", "").strip(),
        # /metrics answers only to "Authorization: Bearer <token>"; unset, it does not exist.
        "METRICS_TOKEN": os.environ.get("CONSENSUS_METRICS_TOKEN", ""),
    }
    _check_keys(config["KEY_ENCRYPTION_KEY"], production)
    if production:
        _refuse_unsafe_production(config)
    return config


def _check_keys(kek: str | None, production: bool) -> None:
    """The key-encryption key seals every platform-held private key (the checkpoint key,
    platform-held organisation keys): production must bring its own, never the file that
    development keeps in the instance folder next to the database."""
    from consensus.crypto.keystore import KeystoreError, load_kek

    if kek is None:
        if production:
            raise ConfigError(
                "CONSENSUS_KEY_ENCRYPTION_KEY must be set when CONSENSUS_ENV=production (it "
                "seals the platform-held keys; generate one with python3 -c 'from "
                "consensus.crypto.keystore import generate_kek; print(generate_kek())')"
            )
        return
    try:
        load_kek(kek, "")
    except KeystoreError as error:
        raise ConfigError(str(error)) from None


def _refuse_unsafe_production(config: dict[str, Any]) -> None:
    """Settings whose development defaults are unsafe or meaningless in production."""
    contact = str(config["SECURITY_CONTACT"]).strip()
    if contact == PLACEHOLDER_SECURITY_CONTACT or not contact.startswith(
        ("mailto:", "https://", "tel:")
    ):
        raise ConfigError(
            "CONSENSUS_SECURITY_CONTACT must be set when CONSENSUS_ENV=production: a mailto: "
            "or https:// address where vulnerabilities are reported (security.txt)"
        )
    origin = str(config["AUDIT_ORIGIN"]).strip()
    if origin == PLACEHOLDER_AUDIT_ORIGIN or not origin or any(c.isspace() for c in origin):
        raise ConfigError(
            "CONSENSUS_AUDIT_ORIGIN must be set when CONSENSUS_ENV=production: the public "
            "host name, which names the audit log and its checkpoint key"
        )
    if not config["RATELIMIT_ENABLED"]:
        log.warning("CONSENSUS_RATELIMIT_ENABLED is off: logins are not rate limited")
    elif str(config["RATELIMIT_STORAGE_URI"]).startswith("memory://"):
        raise ConfigError(
            "CONSENSUS_RATELIMIT_STORAGE_URI must name shared storage such as "
            "redis://127.0.0.1:6379/0 when CONSENSUS_ENV=production: memory:// counts per "
            "worker process, which is no limit"
        )
