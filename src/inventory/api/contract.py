"""The OpenAPI document made true to the server: what the door and errors.py answer.

Litestar documents what a handler declares. The door (api/door.py), the security
middleware and errors.py answer more, on every route: the problems they send are added
here once, for every operation, derived from the operation itself (its security, path
parameters, body and query), so the document cannot drift route by route.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request
from litestar.openapi.plugins import JsonRenderPlugin

from inventory.api.door import integer_parameters
from inventory.api.integers import Bounds
from inventory.api.json_body import MAX_DEPTH
from inventory.api.schemas import QUANTITY_DESCRIPTION

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable (api.md).",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
WHY = {
    400: "invalid_json (not UTF-8, malformed, deeper than "
    f"{MAX_DEPTH}, a raw U+0000), invalid_parameter (U+0000 in the path or query), "
    "unknown_parameter, idempotency_key_missing",
    401: "unauthorized, invalid_credentials",
    403: "forbidden: the role or store scope does not allow this call",
    404: "The resource named in the path does not exist",
    409: "The command conflicts with the current state",
    413: "body_too_large: the body is over 1 MiB",
    415: "unsupported_media_type: the body is not `application/json`",
    422: "validation_failed (with `errors`), or a domain rule",
    429: "rate_limited; see Retry-After",
    503: "service_unavailable, read_model_lagging; see Retry-After",
}
QUANTITY_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"},
    ],
    "description": QUANTITY_DESCRIPTION,
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def statuses(path: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer."""
    found = {400, 422, 503}  # the door, validation, a database or Redis away
    if not path.startswith("/health"):
        found.add(429)  # every budget but the probes'
    if operation.get("security"):
        found |= {401, 403}
    if "{" in path:
        found.add(404)
    if "requestBody" in operation:
        found |= {413, 415}
    return found | {int(s) for s in operation.get("responses", {}) if s[:1] in "45"}


def _problems(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for status in sorted(statuses(path, operation)):
        described = responses.get(str(status), {}).get("description")
        content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        if path == "/health/ready" and status == 503:  # the failing checks, as JSON
            content |= responses.get("503", {}).get("content", {})
        responses[str(status)] = {
            "description": described if described and status != 400 else WHY[status],
            "content": content,
        }


def _csv(operation: dict[str, Any]) -> None:
    """A `format` query parameter that offers CSV: the 200 response is CSV too."""
    for parameter in operation.get("parameters", []):
        if parameter.get("name") == "format" and "csv" in parameter.get("schema", {}).get(
            "enum", []
        ):
            content = operation["responses"]["200"].setdefault("content", {})
            content["text/csv"] = {"schema": {"type": "string"}}


def _closed(schemas: dict[str, Any], node: Any, seen: set[str]) -> None:
    """Every object schema a request body reaches refuses unknown fields (api.md)."""
    if isinstance(node, list):
        for item in node:
            _closed(schemas, item, seen)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref", "")
    if ref.startswith("#/components/schemas/") and ref not in seen:
        seen.add(ref)
        target = schemas.get(ref.rsplit("/", 1)[1], {})
        if target.get("type") == "object" and "properties" in target:
            target.setdefault("additionalProperties", False)
        _closed(schemas, target, seen)
    for value in node.values():
        _closed(schemas, value, seen)


def _quantities(node: Any) -> Any:
    """Quantity fields as the server reads them: a number or a plain decimal string."""
    if isinstance(node, dict):
        if node.get("description") == QUANTITY_DESCRIPTION:
            options = node.get("oneOf", []) + node.get("anyOf", [])
            nullable = [{"type": "null"}] if {"type": "null"} in options else []
            return {**QUANTITY_SCHEMA, "anyOf": QUANTITY_SCHEMA["anyOf"] + nullable}
        return {key: _quantities(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_quantities(item) for item in node]
    return node


def _integers(operation: dict[str, Any], bounds: dict[str, Bounds]) -> None:
    """Each integer parameter with the bounds the door checks (api/integers.py), written
    as integers: Litestar leaves out a bound of 0 beside None and writes the others as
    floats (2**63 - 1 becomes 9.223372036854776e18, which is 2**63)."""
    for parameter in operation.get("parameters", []):
        found = bounds.get(parameter.get("name", ""))
        if found is not None and parameter.get("in") in ("query", "path"):
            parameter["schema"] |= {"minimum": found.lowest, "maximum": found.highest}


def true_contract(document: dict[str, Any], app: Litestar) -> dict[str, Any]:
    """The document with every problem, CSV answer, strict body schema and integer bound
    added."""
    document = _quantities(document)
    integers = integer_parameters(app)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            _problems(path, operation)
            _csv(operation)
            _integers(operation, integers.get((method, path), {}))
            _closed(schemas, operation.get("requestBody", {}), set())
    return document


class ContractJsonPlugin(JsonRenderPlugin):
    """`/schema/openapi.json`: Litestar's document, made true once (true_contract)."""

    def __init__(self) -> None:
        super().__init__()
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The corrected document, rendered on first use and kept."""
        if self._rendered is None:
            contract = true_contract(openapi_schema, request.app)
            self._rendered = self.render_json(request, contract)
        return self._rendered
