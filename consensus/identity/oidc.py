"""OpenID Connect, the protocol side (NL GOV Assurance profile for OIDC): the authorization
code flow with PKCE (S256), `state` and `nonce`; the ID token's signature checked against
the provider's JWKS, and its `iss`, `aud`, `azp`, `exp`, `iat`, `nonce` (and `acr` when the
organisation requires one); RP-initiated logout.

Authlib's OAuth2Session builds the authorization request and exchanges the code; joserfc
(Authlib's JOSE library) checks the ID token. Nothing here touches the database: the
account side is consensus.identity.links.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from joserfc.errors import JoseError

# requests, Authlib's client and joserfc's JWT/JWK (about 9 MiB) are imported by the functions
# that talk to a provider: most web workers never do (issue 23: lean workers).

HTTP_TIMEOUT = 10  # seconds, for every call to a provider
METADATA_SECONDS = 300
SCOPE = "openid email profile"
# Asymmetric only: a shared-secret (HS*) or unsigned token is never accepted.
SIGNING_ALGORITHMS = ("RS256", "PS256", "ES256", "RS384", "RS512", "PS384", "ES384")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class OidcRefused(Exception):
    """The provider's answer is not accepted; `reason` is a short code for the audit log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ProviderSettings:
    """What the protocol needs of an organisation's provider (the secret already opened)."""

    issuer: str
    client_id: str
    client_secret: str
    required_acr: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who the provider says logged in, after every check passed."""

    subject: str
    email: str
    email_verified: bool
    name: str
    acr: str | None
    id_token: str


def issuer_is_acceptable(issuer: str) -> bool:
    """https, or http on the loopback interface only (a provider on this machine: tests, the
    demo); no query or fragment (OpenID Connect Discovery 1.0, section 3)."""
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def _get_json(url: str, *, fresh: bool = False) -> dict[str, Any]:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(url)
    if hit is not None and not fresh and now - hit[0] < METADATA_SECONDS:
        return hit[1]
    import requests

    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        value = response.json()
    except (requests.RequestException, ValueError):
        raise OidcRefused("provider_unreachable") from None
    if not isinstance(value, dict):
        raise OidcRefused("provider_metadata_invalid")
    with _cache_lock:
        _cache[url] = (now, value)
    return value


def metadata(issuer: str) -> dict[str, Any]:
    """The provider's discovery document; its `issuer` must be exactly the configured one
    (OpenID Connect Discovery 1.0, section 4.3: no mix-up)."""
    document = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if document.get("issuer") != issuer:
        raise OidcRefused("issuer_mismatch")
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(field), str):
            raise OidcRefused("provider_metadata_invalid")
    return document


def begin(provider: ProviderSettings, redirect_uri: str) -> tuple[str, dict[str, str]]:
    """The authorization request: the URL to send the browser to, and what to keep in the
    session until the answer comes back (state, nonce, the PKCE verifier)."""
    document = metadata(provider.issuer)
    flow = {
        "state": secrets.token_urlsafe(32),
        "nonce": secrets.token_urlsafe(32),
        "verifier": secrets.token_urlsafe(48),
    }
    from authlib.integrations.requests_client import OAuth2Session

    session = OAuth2Session(
        provider.client_id,
        provider.client_secret,
        scope=SCOPE,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    extra = {"acr_values": provider.required_acr} if provider.required_acr else {}
    url, _state = session.create_authorization_url(
        document["authorization_endpoint"],
        state=flow["state"],
        code_verifier=flow["verifier"],
        nonce=flow["nonce"],
        **extra,
    )
    return url, flow


def complete(
    provider: ProviderSettings,
    flow: dict[str, str],
    answer: dict[str, str],
    redirect_uri: str,
) -> Identity:
    """Check the provider's answer at the redirect URI and the ID token it leads to; any
    failed check raises OidcRefused with the reason."""
    if "error" in answer:
        raise OidcRefused("provider_error")
    if not secrets.compare_digest(answer.get("state", ""), flow["state"]):
        raise OidcRefused("wrong_state")
    # RFC 9207: when the provider names itself in the answer, it must be the one we asked.
    if "iss" in answer and answer["iss"] != provider.issuer:
        raise OidcRefused("issuer_mismatch")
    code = answer.get("code", "")
    if not code:
        raise OidcRefused("no_code")
    document = metadata(provider.issuer)
    import requests
    from authlib.integrations.requests_client import OAuth2Session
    from authlib.oauth2.rfc6749.errors import OAuth2Error

    session = OAuth2Session(
        provider.client_id,
        provider.client_secret,
        redirect_uri=redirect_uri,
    )  # the client authenticates with client_secret_basic (Authlib's default)
    try:
        token = session.fetch_token(
            document["token_endpoint"],
            code=code,
            grant_type="authorization_code",
            code_verifier=flow["verifier"],
            timeout=HTTP_TIMEOUT,
        )
    except (OAuth2Error, requests.RequestException, ValueError):
        raise OidcRefused("token_request_failed") from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise OidcRefused("no_id_token")
    claims = check_id_token(provider, document, id_token, nonce=flow["nonce"])
    email = claims.get("email")
    verified = claims.get("email_verified")
    name = claims.get("name")
    if not isinstance(email, str):
        info = _userinfo(document, token.get("access_token"))
        if info.get("sub") != claims["sub"]:  # OpenID Connect Core 1.0, 5.3.2
            raise OidcRefused("userinfo_subject_mismatch")
        email, verified, name = info.get("email"), info.get("email_verified"), info.get("name")
    return Identity(
        subject=str(claims["sub"]),
        email=email.strip().lower()[:254] if isinstance(email, str) else "",
        email_verified=verified is True,
        name=name[:200] if isinstance(name, str) else "",
        acr=claims.get("acr") if isinstance(claims.get("acr"), str) else None,
        id_token=id_token,
    )


def _userinfo(document: dict[str, Any], access_token: object) -> dict[str, Any]:
    endpoint = document.get("userinfo_endpoint")
    if not isinstance(endpoint, str) or not isinstance(access_token, str):
        return {}
    import requests

    try:
        response = requests.get(
            endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=HTTP_TIMEOUT
        )
        response.raise_for_status()
        value = response.json()
    except (requests.RequestException, ValueError):
        raise OidcRefused("userinfo_failed") from None
    return value if isinstance(value, dict) else {}


def _decode(id_token: str, jwks_uri: str, algorithms: list[str], *, fresh: bool) -> Any:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(_get_json(jwks_uri, fresh=fresh))  # type: ignore[arg-type]
    return jwt.decode(id_token, keys, algorithms=algorithms)


def check_id_token(
    provider: ProviderSettings, document: dict[str, Any], id_token: str, *, nonce: str
) -> dict[str, Any]:
    """The ID token's claims, once its signature (the provider's JWKS; fetched again once
    for an unknown key: rotation) and every claim we rely on have been checked."""
    offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [a for a in SIGNING_ALGORITHMS if a in offered]
    try:
        try:
            token = _decode(id_token, document["jwks_uri"], algorithms, fresh=False)
        except JoseError:
            token = _decode(id_token, document["jwks_uri"], algorithms, fresh=True)
    except (JoseError, ValueError, TypeError):
        raise OidcRefused("bad_signature") from None
    claims: dict[str, Any] = token.claims
    if claims.get("iss") != provider.issuer:
        raise OidcRefused("wrong_issuer")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if provider.client_id not in audiences:
        raise OidcRefused("wrong_audience")
    if len(audiences) > 1 and claims.get("azp") != provider.client_id:
        raise OidcRefused("wrong_audience")
    now = time.time()
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or exp <= now - 30:
        raise OidcRefused("expired")
    if not isinstance(iat, int | float) or iat > now + 60:
        raise OidcRefused("issued_in_the_future")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise OidcRefused("no_subject")
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise OidcRefused("wrong_nonce")
    if provider.required_acr and claims.get("acr") != provider.required_acr:
        raise OidcRefused("insufficient_acr")
    return claims


def end_session_url(issuer: str, id_token: str, after: str, client_id: str) -> str | None:
    """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): where to send the
    browser so the provider ends its session too; None when it offers no such endpoint."""
    try:
        endpoint = metadata(issuer).get("end_session_endpoint")
    except OidcRefused:
        return None
    if not isinstance(endpoint, str):
        return None
    query = urlencode(
        {"id_token_hint": id_token, "post_logout_redirect_uri": after, "client_id": client_id}
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
