"""Every byte at the door: one middleware checks each HTTP request before any handler.

What a route accepts is read once from the routes themselves (the query parameters its
handler and dependencies declare, the type of its JSON body), never from a list kept by
hand, so a bad request gets its 4xx whatever the route (api.md "Conventions").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from inventory.api import integers
from inventory.api.errors import ApiError, send_problem
from inventory.api.integers import Bounds
from inventory.api.json_body import (
    allowed_values,
    check_values,
    decoded,
    takes_integer,
    takes_time,
)

MAX_BODY_BYTES = 1024 * 1024
# The prototype's query names, and the ones this API uses instead.
PROTOTYPE_NAMES = {"store_id": "store", "start_date": "from", "end_date": "to", "product_id": "sku"}
# A time in a query is RFC 3339 text: Litestar would also take a bare number as a Unix
# timestamp, which the contract does not offer (`from=-2451` is a mistake, not 1969).
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
NOT_A_TIME = "Expected an RFC 3339 time (2026-01-31T09:00:00Z)."


@dataclass(frozen=True)
class Shape:
    """What one route handler accepts: query parameter names, and its JSON body's type."""

    query: frozenset[str]
    body: Any | None
    enums: dict[str, list[str]]  # query parameters that take one of a few values
    times: frozenset[str]  # query parameters that take an RFC 3339 time
    integers: dict[str, Bounds]  # query and path parameters that take an integer
    allow: str  # every method of the handler's path, for `Allow`


def shapes_of(app: Litestar) -> dict[int, Shape]:
    """Each HTTP route handler's shape, keyed by the handler's id."""
    shapes: dict[int, Shape] = {}
    for route in app.routes:
        for handler, kwargs in getattr(route, "route_handler_map", {}).values():
            declared = handler.parsed_fn_signature.parameters
            data = declared.get("data")
            params = kwargs.expected_query_params
            enums = {
                p.field_alias: allowed
                for p in params
                if p.field_name in declared
                and (allowed := allowed_values(declared[p.field_name].annotation))
            }
            times = frozenset(
                p.field_alias
                for p in params
                if p.field_name in declared and takes_time(declared[p.field_name].annotation)
            )
            query = frozenset(p.field_alias for p in params)
            numbers = _integers(declared, [*params, *kwargs.expected_path_params])
            allow = ", ".join(sorted(route.methods))
            shapes[id(handler)] = Shape(
                query, data.annotation if data else None, enums, times, numbers, allow
            )
    return shapes


def integer_parameters(app: Litestar) -> dict[tuple[str, str], dict[str, Bounds]]:
    """The integer parameters the door checks, by (method, path as OpenAPI writes it)."""
    shapes = shapes_of(app)
    return {
        (method.lower(), route.path_format): shapes[id(handler)].integers
        for route in app.routes
        for method, (handler, _) in getattr(route, "route_handler_map", {}).items()
    }


def _integers(declared: dict[str, Any], params: list[Any]) -> dict[str, Bounds]:
    """The parameters of integer type among `params`, by the client's name, with the
    bounds their declaration (`Parameter(ge=...)`, `msgspec.Meta`) sets."""
    found: dict[str, Bounds] = {}
    for param in params:
        field = declared.get(param.field_name)
        if field is not None and takes_integer(field.annotation):
            found[param.field_alias] = Bounds.declared(field.kwarg_definition, *field.metadata)
    return found


def check_path(scope: Scope) -> None:
    """400 `invalid_parameter` for U+0000 in the path (PostgreSQL refuses the byte)."""
    if "\x00" in scope["path"]:
        raise ApiError(400, "invalid_parameter", "The path holds U+0000.")


def query_pairs(raw: bytes) -> list[tuple[str, str]]:
    """The query string's names and values; 400 `invalid_parameter` if not UTF-8."""
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_parameter", "The query string is not UTF-8.") from None


def check_query(raw: bytes, shape: Shape) -> None:
    """400 `invalid_parameter` for U+0000, `unknown_parameter` for names the route lacks,
    422 naming the allowed values for a value outside an enum."""
    accepted = shape.query
    pairs = query_pairs(raw)
    nul = [name for name, value in pairs if "\x00" in name or "\x00" in value]
    if nul:
        errors = [{"field": name, "message": "U+0000 is not allowed."} for name in nul]
        raise ApiError(400, "invalid_parameter", "A query parameter holds U+0000.", errors=errors)
    unknown = list(dict.fromkeys(name for name, _ in pairs if name not in accepted))
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            errors=[_unknown(name, accepted) for name in unknown],
        )
    misread = _misread(pairs, shape)
    if misread:
        raise ApiError(422, "validation_failed", misread[0]["message"], errors=misread)
    wrong = [(name, value) for name, value in pairs if value not in shape.enums.get(name, [value])]
    if wrong:
        allowed: list[dict[str, Any]] = [
            {"field": name, "message": f"{value!r} is not allowed.", "allowed": shape.enums[name]}
            for name, value in wrong
        ]
        raise ApiError(422, "validation_failed", allowed[0]["message"], errors=allowed)


def _misread(pairs: list[tuple[str, str]], shape: Shape) -> list[dict[str, Any]]:
    """Values Litestar would read as something the client did not write: a time that is
    not RFC 3339 (a bare number is a Unix timestamp to Litestar), an integer that is not
    plain decimal digits within its bounds (`1e3` is 1000 to msgspec)."""
    errors: list[dict[str, Any]] = []
    for name, value in pairs:
        if name in shape.times and value and not RFC3339.fullmatch(value):
            errors.append({"field": name, "message": NOT_A_TIME})
        bounds = shape.integers.get(name)
        if bounds is not None and integers.parse(value, bounds) is None:
            errors.append({"field": name, "message": bounds.expected()})
    return errors


def check_path_values(path_params: dict[str, Any], shape: Shape) -> None:
    """422 `validation_failed` for an integer path parameter outside the decimal grammar or
    its bounds. Only text can be checked: an integer path parameter is declared `:str`
    (tests/unit/test_integers.py), since Litestar's `:int` takes whatever `int()` does."""
    errors = [
        {"field": name, "message": bounds.expected()}
        for name, bounds in shape.integers.items()
        if isinstance(text := path_params.get(name), str) and integers.parse(text, bounds) is None
    ]
    if errors:
        raise ApiError(422, "validation_failed", errors[0]["message"], errors=errors)


def _unknown(name: str, accepted: frozenset[str]) -> dict[str, Any]:
    error: dict[str, Any] = {"field": name, "message": "This route has no such parameter."}
    instead = PROTOTYPE_NAMES.get(name)
    if instead in accepted:
        error["message"] = f"Unknown parameter; did you mean `{instead}`?"
        error["did_you_mean"] = instead
    return error


def is_json(content_type: str) -> bool:
    """True for `application/json` and any `+json` media type, parameters aside."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The whole body; 413 `body_too_large` past MAX_BODY_BYTES, read no further."""
    too_large = ApiError(413, "body_too_large", "The request body is larger than 1 MiB.")
    declared = _header(scope, b"content-length")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def check_body(scope: Scope, body: bytes, body_type: Any) -> None:
    """415 for a body that is not JSON, then the hostile-JSON checks of json_body."""
    content_type = _header(scope, b"content-type")
    if (content_type or body) and not is_json(content_type):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"This route takes `application/json`, not {content_type or 'an untyped body'!r}.",
        )
    if body.strip():
        check_values(decoded(body), body_type)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the body already read to the app, then defers to the client."""
    pending = True

    async def again() -> ReceiveMessage:
        nonlocal pending
        if pending:
            pending = False
            message: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
            return message
        return await receive()

    return again


def door_middleware(app: ASGIApp) -> ASGIApp:
    """Refuse hostile paths, queries and bodies with their problem before any handler."""
    shapes: dict[int, Shape] = {}

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        if not shapes:
            shapes.update(shapes_of(scope["litestar_app"]))
        shape = shapes.get(id(scope.get("route_handler")))
        try:
            check_path(scope)
            if shape is not None:
                check_path_values(scope["path_params"], shape)
                check_query(scope["query_string"], shape)
            if shape is not None and shape.body is not None:
                body = await read_body(scope, receive)
                check_body(scope, body, shape.body)
                receive = replay(body, receive)
        except ApiError as error:
            await send_problem(scope, receive, send, error)
            return
        if shape is not None and scope["method"] == "OPTIONS":
            send = with_allow(send, shape.allow)
        await app(scope, receive, send)

    return middleware


def with_allow(send: Send, allow: str) -> Send:
    """Litestar's OPTIONS answer can list the methods of one of several handlers of a path
    (those registered first); `Allow` names every method of the path."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableScopeHeaders.from_message(message)
            headers["allow"] = allow
        await send(message)

    return sending
