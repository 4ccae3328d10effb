"""The frame of the API: the OpenAPI-deriving Api, token authentication, scopes, rate limits,
errors as application/problem+json (RFC 9457) and the API-Version header.

Who is asking: an API request is authenticated by a personal access token only
(`Authorization: Bearer cns_…`). A browser's session cookie is ignored here, so a page
another site makes a browser load can never act through the API (the API is exempt from
CSRF tokens precisely because no cookie counts). Without a token the request is anonymous:
it reads published processes, and nothing else. The token's person becomes `current_user`
for the request, so every rule of the rule book applies to them exactly as on the pages.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import prepare_response
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from consensus import transactions
from consensus.api import PREFIX, VERSION
from consensus.extensions import csrf, db, limiter, login_manager

log = logging.getLogger("consensus.api")

PROBLEM = "application/problem+json"
SCOPES_HEADER = "X-Token-Scopes"

# The blueprints of the API, created once (routes are attached at import of their module).
BLUEPRINTS: list[SmorestBlueprint] = []


def blueprint(name: str, description: str) -> SmorestBlueprint:
    """A blueprint of the API (its name is the tag in the reference)."""
    bp = SmorestBlueprint(f"api_{name}", __name__, url_prefix=PREFIX, description=description)
    bp.name = f"api_{name}"
    BLUEPRINTS.append(bp)
    return bp


def is_api_request() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


# --- Problems (RFC 9457) ---------------------------------------------------------------------


def _title(status: int) -> str:
    # The pages' own words where they fit an API (the same messages as the UI).
    titles = {
        400: _("The request could not be processed"),
        401: _("Authentication needed"),
        403: _("Not allowed"),
        404: _("Not found"),
        405: _("This action is not possible here"),
        409: _("Someone else did this at the same moment"),
        413: _("The file or text is too large"),
        415: _("The request could not be processed"),
        422: _("The data is not valid"),
        429: _("Too many attempts"),
        500: _("Sorry, something went wrong"),
        503: _("Consensus is busy"),
    }
    return titles.get(status) or titles[500 if status >= 500 else 400]


def problem(
    status: int,
    detail: str | None = None,
    *,
    invalid: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An application/problem+json answer: type, title, status, detail, instance, and for
    invalid input `invalidParams` (NL GOV API Design Rules) with a reason per field."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "instance": request.path,
    }
    if detail:
        body["detail"] = detail
    if invalid:
        body["invalidParams"] = [
            {"name": name, "reason": " ".join(reason(str(r)) for r in reasons)}
            for name, reasons in sorted(invalid.items())
        ]
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


# marshmallow's own messages (English, fixed) as the platform says them, in the reader's
# language: the same words the pages' forms use where there are such words.
_NUMBER = r"(-?[0-9.e+]+)"
_REASONS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"Missing data for required field\."), lambda m: _("This field is required.")),
    (re.compile(r"Field may not be null\."), lambda m: _("This field may not be empty.")),
    (re.compile(r"Unknown field\."), lambda m: _("This field is not known here.")),
    (re.compile(r"Invalid input type\."), lambda m: _("Send a JSON object.")),
    (re.compile(r"Not a valid integer\."), lambda m: _("Give a whole number.")),
    (re.compile(r"Not a valid (?:string|utf-8 string)\."), lambda m: _("Give a text.")),
    (re.compile(r"Not a valid boolean\."), lambda m: _("Give true or false.")),
    (
        re.compile(r"Not a valid (?:datetime|date|aware datetime)\."),
        lambda m: _("Give a date and time in ISO 8601."),
    ),
    (re.compile(r"Not a valid .*\."), lambda m: _("This value is not valid here.")),
    (
        re.compile(r"Length must be between (\d+) and (\d+)\."),
        lambda m: (
            _("Use at least %(n)d characters.", n=int(m[1]))
            + " "
            + _("Use at most %(n)d characters.", n=int(m[2]))
        ),
    ),
    (
        re.compile(r"Shorter than minimum length (\d+)\."),
        lambda m: _("Use at least %(n)d characters.", n=int(m[1])),
    ),
    (
        re.compile(r"Longer than maximum length (\d+)\."),
        lambda m: _("Use at most %(n)d characters.", n=int(m[1])),
    ),
    (
        re.compile(
            rf"Must be greater than or equal to {_NUMBER} and less than or equal to {_NUMBER}\."
        ),
        lambda m: _("Give a number from %(low)s to %(high)s.", low=m[1], high=m[2]),
    ),
    (
        re.compile(r"Must be one of: (.*)\."),
        lambda m: _("Choose one of: %(choices)s.", choices=m[1]),
    ),
    (re.compile(r"NUL is not allowed\."), lambda m: _("A NUL character is not allowed.")),
    (
        re.compile(r"Not an organisation's short address\."),
        lambda m: _("Not an organisation's short address."),
    ),
]


def reason(message: str) -> str:
    """A field's problem in the reader's language (marshmallow speaks English only)."""
    for pattern, say in _REASONS:
        match = pattern.fullmatch(message)
        if match:
            return say(match)
    return message


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow messages ({location: {field: [..]}}) as field -> reasons."""
    found: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                found[name] = [str(v) for v in value]
            else:
                found.update(_flatten(value, name))
    elif isinstance(messages, list):
        found[prefix or "body"] = [str(m) for m in messages]
    return found


def http_problem(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") if isinstance(data, Mapping) else None
    if messages:
        # webargs: {"json": {"field": [...]}} or {"query": {...}}: drop the location level.
        invalid: dict[str, list[str]] = {}
        for value in messages.values() if isinstance(messages, Mapping) else [messages]:
            invalid.update(_flatten(value))
        detail = getattr(error, "api_detail", None) or _("Check the fields named below.")
        return problem(status, detail, invalid=invalid)
    detail = getattr(error, "api_detail", None)
    headers: dict[str, str] = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="consensus"'
    if status == 429:
        headers["Retry-After"] = "60"
    return problem(status, detail, headers=headers)


def refuse(status: int, detail: str | None = None) -> HTTPException:
    """An HTTPException whose problem carries `detail` (the UI's message)."""
    from werkzeug.exceptions import default_exceptions

    error = default_exceptions[status]()
    error.api_detail = detail  # type: ignore[attr-defined]
    return error


# --- Who is asking --------------------------------------------------------------------------


def _authenticate() -> Response | None:
    """First step of every API request: the token's person, or anonymous (never a cookie)."""
    if not is_api_request():
        return None
    g.api_token_id = None
    g.api_scopes = ()
    g._login_user = login_manager.anonymous_user()
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _sep, secret = header.partition(" ")
    bearer = {"WWW-Authenticate": 'Bearer realm="consensus", error="invalid_token"'}
    if scheme.lower() != "bearer" or not secret.strip():
        return problem(
            401,
            _("Send a personal access token as: Authorization: Bearer [token]."),
            headers=bearer,
        )
    from consensus.services import accounts, api_tokens

    with transactions.reads_before_the_view():
        token = api_tokens.find_token(secret.strip())
        if token is None:
            return problem(
                401,
                _("This token is not valid: it is unknown, expired or revoked."),
                headers=bearer,
            )
        user = token.user
        g.api_token_id = token.id
        g.api_scopes = tuple(token.scope_list)
        if accounts.needs_second_factor_enrolment(user, current_app.config["REQUIRE_2FA"]):
            return problem(401, _("Set up two-factor authentication to continue."), headers=bearer)
    g._login_user = user
    if request.method not in transactions.SAFE_METHODS and "write" not in g.api_scopes:
        return problem(
            403,
            _("This token may only read."),
            headers={"WWW-Authenticate": 'Bearer realm="consensus", error="insufficient_scope"'},
        )
    return None


def require_user() -> None:
    """Writing needs a token (a cookie never counts here): 401 otherwise."""
    if not current_user.is_authenticated:
        raise refuse(401, _("Send a personal access token as: Authorization: Bearer [token]."))


def _rate_key() -> str:
    token_id = g.get("api_token_id")
    return f"api-token:{token_id}" if token_id else f"api-ip:{request.remote_addr or '-'}"


def _rate_limit() -> str:
    return str(current_app.config.get("API_RATE_LIMIT") or "300/minute")


# --- The Api --------------------------------------------------------------------------------


class ConsensusApi(Api):  # type: ignore[misc]
    """flask-smorest's Api with our errors: problem+json documented for every operation,
    and no application-wide error handler (the pages keep theirs; the API's are on its
    blueprints)."""

    def _register_error_handlers(self) -> None:
        return None

    def _register_responses(self) -> None:
        import http

        from consensus.api.schemas import ProblemSchema

        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = ProblemSchema
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "A problem (RFC 9457)", "schema": ProblemSchema}
        prepare_response(response, self.spec, PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


api = ConsensusApi()


def _error_handlers(bp: SmorestBlueprint) -> None:
    @bp.errorhandler(HTTPException)
    def api_http_error(error: HTTPException) -> Response:
        return http_problem(error)

    @bp.errorhandler(IntegrityError)
    def api_lost_a_race(error: IntegrityError) -> Response:
        db.session.rollback()
        log.info("integrity conflict, request id %s: %s", g.get("request_id", "-"), error.orig)
        return problem(409)

    @bp.errorhandler(OperationalError)
    def api_database_unavailable(error: OperationalError) -> Response:
        db.session.rollback()
        log.exception("database error, request id %s", g.get("request_id", "-"))
        return problem(503, headers={"Retry-After": "5"})

    @bp.errorhandler(Exception)
    def api_unexpected_error(error: Exception) -> Response:
        log.exception("unhandled error, request id %s", g.get("request_id", "-"))
        try:
            db.session.rollback()
        except Exception:
            log.exception("rollback failed, request id %s", g.get("request_id", "-"))
        return problem(500, _("Request id: %(id)s", id=g.get("request_id", "-")))


def init_app(app: Flask) -> None:
    from consensus.api import (  # noqa: F401 - the modules attach their routes
        audit,
        dossier,
        endorsements,
        me,
        positions,
        processes,
        reference,
        signing,
    )

    app.config.setdefault("API_TITLE", "Consensus API")
    app.config.setdefault("API_VERSION", VERSION)
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {
                "description": (
                    "Read joint positions, versions, amendments, comments, stances, outcomes "
                    "and signatures; comment, propose amendments, clear and cast stances. "
                    "Authenticate with a personal access token (account page): "
                    "`Authorization: Bearer [token]`. Published processes are readable "
                    "without a token. Errors are application/problem+json (RFC 9457)."
                ),
                "license": {"name": "EUPL-1.2"},
            },
            "components": {
                "securitySchemes": {
                    "token": {"type": "http", "scheme": "bearer", "bearerFormat": "cns_…"}
                }
            },
            "security": [{}, {"token": []}],
            "servers": [{"url": "/"}],
        },
    )
    app.config.setdefault("API_RATE_LIMIT", "300/minute")
    api.init_app(app)
    app.register_blueprint(reference.bp)
    for bp in BLUEPRINTS:
        if not getattr(bp, "_consensus_ready", False):
            _error_handlers(bp)
            limiter.limit(_rate_limit, key_func=_rate_key)(bp)
            bp._consensus_ready = True  # type: ignore[attr-defined]
        # No cookie counts in the API (_authenticate): a token in a header is nothing a
        # browser sends by itself, so there is no cross-site request to forge.
        csrf.exempt(bp)  # nosemgrep: consensus-csrf-exempt
        api.register_blueprint(bp)
    # Who is asking is settled before anything else looks at current_user (the second
    # factor's enrolment step, the rate limiter's key, the locale).
    app.before_request_funcs.setdefault(None, []).insert(0, _authenticate)
    # Validators last, after the round clock has done what was due (a new head).
    app.before_request(_conditional_get)
    app.after_request(_cache_headers)

    @app.after_request
    def api_version_header(response: Response) -> Response:
        if is_api_request():
            response.headers["API-Version"] = VERSION
            response.vary.add("Authorization")
        return response


# --- Conditional GETs (issue 23) --------------------------------------------------------------

# Answers that change without an audit event (the token's own use is recorded on it).
_UNVALIDATED = (PREFIX + "/me",)


def _conditional_get() -> Response | None:
    """A GET of the API carries a weak ETag and Last-Modified derived from the audit log's
    head, like the public pages (consensus.web.shared_cache), keyed also by the token that
    asks (what it may read) and the language; a conditional GET whose validator still holds
    is answered 304 before anything else is read. Without a token the answer (published
    processes only) is the same for everyone: a shared cache may keep it
    (`Cache-Control: public`, `Vary: Authorization, Accept-Language`); with a token it is
    for that client alone (`private, no-cache`: ask again, but a 304 costs little)."""
    if (
        not is_api_request()
        or request.method not in ("GET", "HEAD")
        or request.path.startswith(_UNVALIDATED)
    ):
        return None
    from consensus.web import shared_cache

    token_id = g.get("api_token_id")
    reader = f"api-token:{token_id}" if token_id else "api-anonymous"
    etag, modified = shared_cache.validators(reader.encode())
    g.api_validators = (etag, modified, token_id is None)
    if shared_cache.still_valid(etag, modified):
        return current_app.response_class(status=304)
    return None


def _cache_headers(response: Response) -> Response:
    found = g.pop("api_validators", None)
    if found is None or response.status_code not in (200, 304):
        return response
    etag, modified, anonymous = found
    if "ETag" not in response.headers:  # a view's own (the Markdown's content hash) stays
        response.set_etag(etag, weak=True)
        response.last_modified = modified
    seconds = int(current_app.config.get("PUBLIC_CACHE_SECONDS", 60))
    response.headers["Cache-Control"] = (
        f"public, max-age={seconds}" if anonymous else "private, no-cache"
    )
    response.vary.add("Authorization")
    response.vary.add("Accept-Language")
    return response


def on_routing_error(error: HTTPException) -> Response | None:
    """For the application's error handler: an unknown address or method under the API's
    prefix answers as a problem too, not as a page."""
    if is_api_request():
        return http_problem(error)
    return None


__all__ = [
    "BLUEPRINTS",
    "api",
    "blueprint",
    "init_app",
    "problem",
    "refuse",
    "require_user",
]
