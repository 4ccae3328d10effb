"""Settings, read from CONSENSUS_* environment variables with safe development defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEMO_PASSWORD = "consensus-demo"  # noqa: S105 - documented demo password, refused in production  # nosec B105


class ConfigError(RuntimeError):
    """Raised when the environment does not describe a safe configuration."""


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


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
    in a request (consensus.proxy) and outside one (SERVER_NAME, APPLICATION_ROOT,
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
            raise ConfigError("CONSENSUS_SECRET_KEY must be set when CONSENSUS_ENV=production")
        secret_key = _dev_secret_key(instance)

    database_url = os.environ.get("CONSENSUS_DATABASE_URL") or (
        f"sqlite:///{instance / 'consensus.sqlite'}"
    )
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship.
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")

    return {
        "CONSENSUS_ENV": env,
        "PRODUCTION": production,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REQUIRE_2FA": _env_bool("CONSENSUS_REQUIRE_2FA", production),
        "RATELIMIT_STORAGE_URI": os.environ.get("CONSENSUS_RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_ENABLED": _env_bool("CONSENSUS_RATELIMIT_ENABLED", True),
        "LOGIN_RATE_LIMIT": os.environ.get("CONSENSUS_LOGIN_RATE_LIMIT", "10 per 5 minutes"),
        "KEY_ENCRYPTION_KEY": os.environ.get("CONSENSUS_KEY_ENCRYPTION_KEY"),
        "AUDIT_ORIGIN": os.environ.get("CONSENSUS_AUDIT_ORIGIN", "consensus.example.org"),
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
        "MAIL_HOST": os.environ.get("CONSENSUS_MAIL_HOST", "localhost"),
        "MAIL_PORT": int(os.environ.get("CONSENSUS_MAIL_PORT", 25)),
        "MAIL_USERNAME": os.environ.get("CONSENSUS_MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("CONSENSUS_MAIL_PASSWORD", ""),
        "MAIL_STARTTLS": _env_bool("CONSENSUS_MAIL_STARTTLS", production),
        "MAIL_SSL": _env_bool("CONSENSUS_MAIL_SSL", False),
        "MAIL_SENDER": os.environ.get("CONSENSUS_MAIL_SENDER", "consensus@localhost"),
        "MAIL_TIMEOUT": float(os.environ.get("CONSENSUS_MAIL_TIMEOUT", 10)),
        "PASSWORD_RESET_MINUTES": int(os.environ.get("CONSENSUS_PASSWORD_RESET_MINUTES", 30)),
        # /.well-known/security.txt (RFC 9116); Expires is mandatory there.
        "SECURITY_CONTACT": os.environ.get(
            "CONSENSUS_SECURITY_CONTACT", "mailto:security@consensus.example.org"
        ),
        "SECURITY_TXT_EXPIRES": os.environ.get("CONSENSUS_SECURITY_TXT_EXPIRES", ""),
        # Rendered parts of long pages kept per worker (consensus.fragments); 0 = off.
        "FRAGMENT_CACHE_MB": int(os.environ.get("CONSENSUS_FRAGMENT_CACHE_MB", 64)),
        # A version page shows every paragraph's discussion while the version has at most
        # this many comments; above, each is loaded when its paragraph is opened.
        "VERSION_INLINE_COMMENTS": int(os.environ.get("CONSENSUS_VERSION_INLINE_COMMENTS", 150)),
        # Several instances behind a load balancer: each may name itself, and then answers
        # with an X-Consensus-Instance header (which instance served what; empty: no header).
        "INSTANCE_NAME": os.environ.get("CONSENSUS_INSTANCE_NAME", "").strip(),
        # Behind a reverse proxy (consensus.proxy, docs/operations.md).
        "TRUSTED_PROXIES": _trusted_proxies(),
        **base_url_settings(os.environ.get("CONSENSUS_BASE_URL", ""), production=production),
    }
