"""Examples of the bulk import answers for the API reference (api/examples.py merges them)."""

from __future__ import annotations

from typing import Any

JOB = "3d5f8a1c-7b2e-4c9d-a6f0-1e2d3c4b5a69"
IMPORT_JOB: dict[str, Any] = {
    "id": JOB,
    "status": "done",
    "store": "lhr1",
    "rows": 20000,
    "failed": 2,
    "errors_url": f"/v1/imports/{JOB}/errors",
    "error": None,
    "created_at": "2026-03-01T09:30:00Z",
}
ROW_ERROR: dict[str, Any] = {
    "line": 418,
    "sku": "RICE-5KG",
    "code": "validation_failed",
    "message": "on_hand: must be a plain decimal (-?digits[.digits])",
}
IMPORT_SCHEMAS: dict[str, Any] = {
    "ImportJob": IMPORT_JOB,
    "Page_inventory.api.import_routes.ImportRowError_": {
        "items": [ROW_ERROR],
        "next_cursor": None,
    },
}
