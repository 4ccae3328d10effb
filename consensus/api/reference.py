"""The readable reference: the served OpenAPI document as a page (no script, no CDN), at
/api next to the versioned API itself (a page: the layout knows who is logged in)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from consensus.api import PREFIX, VERSION

bp = Blueprint("api_reference", __name__)

METHODS = ("get", "post", "put", "patch", "delete")
TAG_ORDER = (
    "api_processes",
    "api_positions",
    "api_endorsements",
    "api_signing",
    "api_audit",
    "api_dossier",
    "api_me",
)


def _schema_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            responses = []
            for status, response in operation.get("responses", {}).items():
                if "$ref" in response:
                    name = _schema_name(response["$ref"])
                    response = spec["components"]["responses"].get(name, {})
                content = response.get("content", {})
                media = next(iter(content), "")
                schema = content.get(media, {}).get("schema", {}) if media else {}
                responses.append(
                    {
                        "status": status,
                        "description": response.get("description", ""),
                        "media": media,
                        "schema": _schema_name(schema["$ref"]) if "$ref" in schema else "",
                        "list_of": _schema_name(schema["items"]["$ref"])
                        if "$ref" in schema.get("items", {})
                        else "",
                    }
                )
            found.append(
                {
                    "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                    "method": method.upper(),
                    "path": path,
                    "tag": (operation.get("tags") or [""])[0],
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "parameters": [
                        *item.get("parameters", []),
                        *operation.get("parameters", []),
                    ],
                    "body": _schema_name(body["schema"]["$ref"])
                    if "$ref" in body.get("schema", {})
                    else "",
                    "responses": responses,
                }
            )
    return found


@bp.get("/api")
def reference() -> str:
    from consensus.api.core import api

    spec = api.spec.to_dict()
    operations = _operations(spec)
    order = {name: n for n, name in enumerate(TAG_ORDER)}
    tags = sorted(
        (
            {**t, "title": t["name"].removeprefix("api_").capitalize()}
            for t in spec.get("tags", [])
            if any(o["tag"] == t["name"] for o in operations)
        ),
        key=lambda t: order.get(t["name"], len(order)),
    )
    return render_template(
        "api/reference.html",
        spec=spec,
        tags=tags,
        operations=operations,
        schemas=spec.get("components", {}).get("schemas", {}),
        prefix=PREFIX,
        version=VERSION,
    )
