"""The API reference made useful: who may call each operation, and a real example for each
request, response and problem (api/examples.py), added to the OpenAPI document once."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute

from inventory.api.contract import ContractJsonPlugin, true_contract
from inventory.api.examples import SCHEMAS
from inventory.api.problem_examples import problem
from inventory.security.policy import POLICY, RouteClass
from inventory.security.principal import Role

PROBLEM_JSON = "application/problem+json"
METHODS = ("get", "put", "post", "delete", "patch")
SCOPED = {
    RouteClass.STOCK_COMMAND,
    RouteClass.MANAGER_COMMAND,
    RouteClass.QUERY,
    RouteClass.REPORTS,
    RouteClass.FEED,
}
# Responses whose schema Litestar cannot see (a handler returning Response[Any]).
RESPONSE_SCHEMAS = {("post", "/v1/auth/token"): "TokenResponse"}
WRITES = {RouteClass.STOCK_COMMAND, RouteClass.MANAGER_COMMAND, RouteClass.CATALOG_WRITE}
READ_YOUR_WRITE = (
    "**Reading your write:** the answer's `position` is this write's; pass it to the next"
    " read as `?min_position=<position>` (e.g. `GET /v1/stores/lhr1/stock/RICE-5KG"
    "?min_position=120443`) and the read waits until it shows the write. A read without"
    " it may answer the state before the write: reads come from a replica, by design."
)
CODE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")

NO_BODY = {"type": "null"}  # a 202 that only queues work: no content to show


def who_may_call(route_class: str | None) -> str:
    """The sentence naming the roles that may call an operation of `route_class`."""
    if route_class is None:
        return "**Who may call it:** anyone; no credentials needed."
    kind = RouteClass(route_class)
    roles = ", ".join(role.value for role in Role if role in POLICY[kind])
    scope = " (users and API keys), within their store scope" if kind in SCOPED else ""
    return f"**Who may call it:** {roles}{scope}."


def route_classes(app: Litestar) -> dict[tuple[str, str], str | None]:
    """Each documented operation's route class, by (method, path)."""
    found: dict[tuple[str, str], str | None] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                found[method.lower(), route.path_format] = handler.opt.get("route_class")
    return found


def _ref_name(content: dict[str, Any]) -> str | None:
    ref = content.get("schema", {}).get("$ref", "")
    return ref.rsplit("/", 1)[1] if ref.startswith("#/components/schemas/") else None


def _example(media: dict[str, Any], name: str | None) -> None:
    if name is not None and name in SCHEMAS:
        media["example"] = SCHEMAS[name]


def _problem_example(status: int, response: dict[str, Any]) -> None:
    """The problem this status answers, its `code` named by the response's description
    when it names one (`product_not_found`, `alert_closed`, ...)."""
    body = problem(status)
    named = CODE.findall(response.get("description", ""))
    if named and status not in (400, 413, 415, 429, 503):
        body = {**body, "code": named[0], "type": f"urn:inventory:problem:{named[0]}"}
        body.pop("errors", None)
    response["content"][PROBLEM_JSON]["example"] = body


def _operation(method: str, path: str, operation: dict[str, Any], route_class: Any) -> None:
    description = operation.get("description", "").strip()
    if description:
        notes = [description, who_may_call(route_class)]
        if route_class is not None and RouteClass(route_class) in WRITES:
            notes.append(READ_YOUR_WRITE)
        operation["description"] = "\n\n".join(notes)
    for media in operation.get("requestBody", {}).get("content", {}).values():
        _example(media, _ref_name(media))
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        if status == "204" or content.get("application/json", {}).get("schema") == NO_BODY:
            response.pop("content", None)  # no body (a 204, or a 202 that only queues work)
        elif status.startswith("2") and "application/json" in content:
            media = content["application/json"]
            _example(media, _ref_name(media) or RESPONSE_SCHEMAS.get((method, path)))
        elif PROBLEM_JSON in content:
            if "application/json" in content:  # /health/ready's 503 names its failing checks
                _example(content["application/json"], _ref_name(content["application/json"]))
            _problem_example(int(status), response)


def reference(document: dict[str, Any], app: Litestar) -> dict[str, Any]:
    """The true contract (api/contract.py) with roles and examples on every operation."""
    document = true_contract(document, app)
    classes = route_classes(app)
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if (operation := item.get(method)) is not None:
                _operation(method, path, operation, classes.get((method, path)))
    return document


class ReferencePlugin(ContractJsonPlugin):
    """`/schema/openapi.json`: the true contract with roles and examples, rendered once."""

    def render(self, request: Any, openapi_schema: dict[str, Any]) -> bytes:
        """The document, built on first use and kept."""
        if self._rendered is None:
            self._rendered = self.render_json(request, reference(openapi_schema, request.app))
        return self._rendered
