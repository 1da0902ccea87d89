"""The only place that turns errors into HTTP: RFC 9457 problem details with a `code`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import psycopg
import psycopg_pool
import redis
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import Receive, Scope, Send

from inventory.domain.errors import CommandRejected, NotAllowed, NotFound, ValidationRejected
from inventory.security.errors import (
    ApiKeyNotFound,
    Forbidden,
    InvalidCredentials,
    InvalidScope,
    LastAdmin,
    RateLimited,
    SecurityError,
    Unauthorized,
    UnknownStores,
    UserExists,
    UserNotFound,
)
from inventory.service import IdempotencyKeyReused

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_incomplete",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem details body, as every error response carries it."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


class ApiError(Exception):
    """An error with a stable `code` of api.md, raised by any layer above the domain."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    """A problem details response; `type` is a stable URN naming the code."""
    body = Problem(
        type=f"urn:inventory:problem:{code}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        code=code,
        errors=errors,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def rejection(error: CommandRejected) -> tuple[int, Problem]:
    """The status and problem details of a command the domain refused."""
    match error:
        case NotFound():
            status = HTTP_404_NOT_FOUND
        case NotAllowed():
            status = HTTP_403_FORBIDDEN
        case ValidationRejected():
            status = HTTP_422_UNPROCESSABLE_ENTITY
        case _:
            status = HTTP_409_CONFLICT
    problem = Problem(
        type=f"urn:inventory:problem:{error.code}",
        title=TITLES[status],
        status=status,
        detail=error.detail,
        code=error.code,
        errors=[{key: _quantity(value) for key, value in item.items()} for item in error.errors]
        or None,
    )
    return status, problem


def _quantity(value: Any) -> Any:
    """api.md: a whole-unit quantity is an integer, any other a string ("2.50")."""
    if isinstance(value, Decimal):
        return int(value) if value.as_tuple().exponent == 0 else str(value)
    return value


DETAIL_LIMIT = 300  # characters of a validation problem's detail
# How msgspec (under Litestar) says the body is not JSON at all.
NOT_JSON = ("json is malformed", "input data was truncated", "invalid utf-8", "failed to decode")


def _not_json(detail: str) -> bool:
    lowered = detail.lower()
    return any(marker in lowered for marker in NOT_JSON)


def _client_field(request: Request[Any, Any, Any], key: Any) -> Any:
    """A parameter as the client spelled it (`from`, not the handler's `start`)."""
    handler = request.scope.get("route_handler")
    declared = getattr(handler, "parsed_fn_signature", None)
    parameter = declared.parameters.get(key) if declared and isinstance(key, str) else None
    kwarg = getattr(parameter, "kwarg_definition", None)
    return getattr(kwarg, "query", None) or getattr(kwarg, "header", None) or key


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    detail = str(exc.detail)
    if _not_json(detail):
        return problem_response(HTTP_400_BAD_REQUEST, "invalid_json", "The body is not valid JSON.")
    if any(item.get("key") == "data" and item.get("message") == "'data'" for item in extra):
        # Litestar's way of saying the body is missing: an empty body is not JSON either.
        return problem_response(HTTP_400_BAD_REQUEST, "invalid_json", "The body is empty.")
    errors = [
        {"field": _client_field(request, item.get("key")), "message": item.get("message")}
        for item in extra
        if isinstance(item, dict)
    ]
    if len(detail) > DETAIL_LIMIT:  # Litestar quotes the URL: a hostile one goes back cut
        detail = f"{detail[:DETAIL_LIMIT]}..."
    return problem_response(
        HTTP_422_UNPROCESSABLE_ENTITY, "validation_failed", detail, errors=errors or None
    )


def _security(exc: SecurityError) -> Response[Problem]:  # noqa: C901, PLR0911 - a table
    match exc:
        case Unauthorized():
            challenge = 'Bearer error="invalid_token"' if exc.invalid else "Bearer"
            headers = {**exc.headers, "WWW-Authenticate": challenge}
            return problem_response(401, "unauthorized", str(exc), headers=headers)
        case InvalidCredentials():
            return problem_response(401, "invalid_credentials", str(exc), headers=exc.headers)
        case Forbidden():
            return problem_response(403, "forbidden", str(exc))
        case RateLimited():
            return problem_response(429, "rate_limited", str(exc), headers=exc.decision.headers())
        case UserExists():
            return problem_response(409, "user_exists", str(exc))
        case UnknownStores():
            errors = [{"field": "stores", "message": f"unknown store id {s!r}"} for s in exc.stores]
            return problem_response(422, "validation_failed", str(exc), errors=errors)
        case UserNotFound():
            return problem_response(404, "user_not_found", str(exc))
        case ApiKeyNotFound():
            return problem_response(404, "api_key_not_found", str(exc))
        case LastAdmin():
            return problem_response(409, "last_admin", str(exc))
        case InvalidScope():
            errors = [{"field": "stores", "message": problem} for problem in exc.problems]
            return problem_response(422, "validation_failed", str(exc), errors=errors)
    return problem_response(403, "forbidden", str(exc))


async def send_problem(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer a raw ASGI call with the problem response for `exc` (for our middleware)."""
    request: Request[Any, Any, Any] = Request(scope, receive, send)
    response = handle_exception(request, exc)
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    match exc:
        case NotFoundException() if "\x00" in request.scope["path"]:
            return problem_response(
                HTTP_400_BAD_REQUEST, "invalid_parameter", "The path holds U+0000."
            )
        case NotAuthorizedException() | PermissionDeniedException() | NotFoundException():
            return problem_response(exc.status_code, DEFAULT_CODES[exc.status_code], exc.detail)
        case _ if exc.status_code == HTTP_400_BAD_REQUEST and _not_json(str(exc.detail)):
            return problem_response(
                HTTP_400_BAD_REQUEST, "invalid_json", "The body is not valid JSON."
            )
        case _ if exc.status_code == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
            return problem_response(
                exc.status_code, "body_too_large", "The request body is larger than 1 MiB."
            )
    code = DEFAULT_CODES.get(exc.status_code, "error")
    return problem_response(exc.status_code, code, exc.detail, headers=exc.headers)


def handle_exception(  # noqa: PLR0911 - one arm per kind of error, read as a table
    request: Request[Any, Any, Any], exc: Exception
) -> Response[Problem]:
    """Map any exception to a problem response; unexpected ones are logged, never leaked."""
    match exc:
        case CommandRejected():
            status, problem = rejection(exc)
            return Response(problem, status_code=status, media_type=PROBLEM_JSON)
        case IdempotencyKeyReused():
            return problem_response(HTTP_422_UNPROCESSABLE_ENTITY, exc.code, str(exc))
        case SecurityError():
            return _security(exc)
        case ApiError():
            return problem_response(
                exc.status, exc.code, exc.detail, errors=exc.errors, headers=exc.headers
            )
        case ValidationException():
            return _validation(request, exc)
        case HTTPException():
            return _http(request, exc)
        # A read-only server (a demoted primary) wrote nothing; the writer's pool moves on.
        case (
            psycopg.OperationalError()
            | psycopg.errors.ReadOnlySqlTransaction()
            | psycopg_pool.PoolTimeout()
            | redis.ConnectionError()
        ):
            log.warning("dependency unavailable", error=str(exc), error_type=type(exc).__name__)
            return problem_response(
                HTTP_503_SERVICE_UNAVAILABLE,
                "service_unavailable",
                "A database or Redis is unavailable; retry shortly.",
                headers={"Retry-After": "1"},
            )
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return problem_response(
        HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "An unexpected error occurred."
    )
