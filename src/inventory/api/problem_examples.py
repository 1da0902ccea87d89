"""Problem examples for the API reference (`/docs`): one problem+json body per status,
in the shape errors.py sends."""

from __future__ import annotations

from typing import Any

from inventory.api.errors import TITLES
from inventory.api.examples import SKU

PROBLEMS: dict[int, dict[str, Any]] = {
    400: {"code": "invalid_json", "detail": "The body is not valid JSON."},
    401: {"code": "unauthorized", "detail": "The token is not valid or has expired."},
    403: {"code": "forbidden", "detail": "The store 'khi2' is outside this principal's scope."},
    404: {"code": "not_found", "detail": "Nothing has this id."},
    408: {"code": "body_incomplete", "detail": "The upload went silent and was given up."},
    409: {
        "code": "insufficient_stock",
        "detail": "Not enough stock for RICE-5KG.",
        "errors": [{"sku": SKU, "available": 1, "requested": 2}],
    },
    413: {"code": "body_too_large", "detail": "The request body is larger than 1 MiB."},
    415: {"code": "unsupported_media_type", "detail": "The body must be application/json."},
    422: {
        "code": "validation_failed",
        "detail": "Expected `int | str`, got `null`",
        "errors": [{"field": "lines[0].quantity", "message": "Expected `int | str`"}],
    },
    429: {"code": "rate_limited", "detail": "Too many calls: at most 600 per 60 s."},
    503: {
        "code": "read_model_lagging",
        "detail": "The read side has not reached position 120443 yet; retry shortly.",
    },
}


def problem(status: int) -> dict[str, Any]:
    """A problem+json body as errors.py sends it for `status`."""
    body = PROBLEMS[status]
    return {
        "type": f"urn:inventory:problem:{body['code']}",
        "title": TITLES[status],
        "status": status,
        **body,
    }
