"""Real examples for the API reference (`/docs`): one per schema, one problem per status.

api/docs.py puts them on every operation's request and responses; the unit test
tests/unit/test_openapi_reference.py fails on an operation left without one, and on an
example its schema refuses.
"""

from __future__ import annotations

from typing import Any

from inventory.api.import_examples import IMPORT_SCHEMAS

AT = "2026-03-14T14:02:11.532Z"
STORE, SKU, NAME = "lhr1", "RICE-5KG", "Basmati Rice 5 kg"
LEVEL = {
    "store": STORE,
    "sku": SKU,
    "on_hand": 38,
    "reserved": 2,
    "available": 36,
    "in_transit_in": 0,
    "in_transit_out": 5,
    "version": 42,
}
STOCK_LEVEL = {**LEVEL, "name": NAME, "reorder_min": 40, "reorder_max": 120, "updated_at": AT}
PRODUCT = {
    "sku": SKU,
    "name": NAME,
    "description": "Aged long-grain rice",
    "barcode": "8964000123457",
    "unit": "bag",
    "decimals": 0,
    "category": "grocery",
    "discontinued": False,
    "version": 1,
}
STORE_VIEW = {
    "id": STORE,
    "name": "Lahore 1",
    "location": "Gulberg III, Lahore",
    "timezone": "Asia/Karachi",
    "negative_stock": "deny",
    "closed_until": None,
    "backdate_days": 30,
    "version": 1,
}
USER = {
    "id": "0b9e4c1e-5d0f-4b6a-9f53-2a1f7c6de001",
    "username": "amna.k",
    "role": "manager",
    "stores": [STORE],
    "created_at": AT,
    "disabled": False,
}
API_KEY = {
    "id": "6f1c2a9e-0d3b-4c55-8e0a-5b7d9e2f4a10",
    "name": "till 3, Lahore 1",
    "prefix": "k3x9q2mw",
    "role": "clerk",
    "stores": [STORE],
    "created_at": AT,
}
ALERT = {
    "id": 917,
    "kind": "low_stock",
    "store": STORE,
    "sku": SKU,
    "name": NAME,
    "unit": "bag",
    "available": 36,
    "reorder_min": 40,
    "opened_at": AT,
    "acknowledged_at": None,
    "acknowledged_by": None,
    "note": None,
    "opened_seq": 88213,
    "details": {"available": 36, "reorder_min": 40},
}
RESULT = {
    "command_id": "c0a8012e-7f3d-4e1b-9a44-0c5d2b6e8f17",
    "position": 120443,
    "events": [
        {"position": 120443, "stream": f"stock-{STORE}-{SKU}", "version": 42, "type": "stock.sold"}
    ],
    "levels": [LEVEL],
}
EVENT = {
    "seq": 88213,
    "position": 120443,
    "stream": f"stock-{STORE}-{SKU}",
    "version": 42,
    "type": "stock.sold",
    "store": STORE,
    "sku": SKU,
    "occurred_at": AT,
    "recorded_at": AT,
    "data": {"sale_id": "S-2026-000812", "quantity": 2},
    "metadata": {"actor": {"id": API_KEY["id"], "kind": "api_key"}},
    "chain": "5d0f6b1c9a8e4f27b3c1d2e0a9f8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0",
}
WEBHOOK = {
    "id": "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "url": "https://erp.example.com/hooks/inventory",
    "stores": [STORE],
    "types": ["stock.received", "alert.opened"],
    "description": "ERP replenishment",
    "status": "active",
    "created_at": AT,
    "disabled_at": None,
    "disabled_reason": None,
}
DELIVERY = {"webhook_id": WEBHOOK["id"], "seq": 88213, "type": "stock.received", "attempts": 2}
DELIVERY |= {"status": "delivered", "last_status_code": 204, "next_attempt_at": None}
LEDGER = {
    "seq": 88213,
    "position": 120443,
    "type": "stock.sold",
    "occurred_at": AT,
    "recorded_at": AT,
    "delta": -2,
    "on_hand_after": 38,
    "reason": None,
    "reference": "S-2026-000812",
    "actor": API_KEY["id"],
    "absorbed": False,
    "actor_name": API_KEY["name"],
}
REPORT: dict[str, Any] = {
    "id": "r-5c1e9a",
    "kind": "movements",
    "status": "done",
    "params": {"store": STORE, "from": "2026-03-01"},
    "requested_at": AT,
    "started_at": AT,
    "finished_at": AT,
    "error": None,
    "rows": [],
    "download": None,
}
LINES = [{"sku": SKU, "quantity": 2}]


def page(item: dict[str, Any]) -> dict[str, Any]:
    """A page of one item, the last."""
    return {"items": [item], "next_cursor": None}


SCHEMAS: dict[str, Any] = {
    # identity
    "TokenRequest": {"username": "amna.k", "password": "correct horse battery staple"},
    "TokenResponse": {
        "access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",
        "token_type": "bearer",
        "expires_in": 900,
    },
    "Me": {
        "id": USER["id"],
        "kind": "user",
        "name": "amna.k",
        "role": "manager",
        "stores": [STORE],
    },
    "NewUser": {
        "username": "amna.k",
        "password": "correct horse battery staple",
        "role": "manager",
        "stores": [STORE],
    },
    "User": USER,
    "UserList": page(USER),
    "UserChangesBody": {"role": "manager", "stores": [STORE, "khi2"], "disabled": False},
    "PasswordChange": {
        "current_password": "correct horse battery staple",
        "new_password": "a longer passphrase of mine",
    },
    "PasswordReset": {"new_password": "temporary passphrase 2026"},
    "NewApiKey": {"name": "till 3, Lahore 1", "role": "clerk", "stores": [STORE]},
    "ApiKey": API_KEY,
    "ApiKeyList": page(API_KEY),
    "CreatedApiKey": {**API_KEY, "key": "inv_k3x9q2mw_Q2hhbmdlIG1lLCB0aGlzIGlzIGFuIGV4YW1wbGU"},
    # catalog
    "NewProduct": {
        "sku": SKU,
        "name": NAME,
        "barcode": "8964000123457",
        "unit": "bag",
        "decimals": 0,
        "category": "grocery",
    },
    "ProductChanges": {"name": "Basmati Rice 5 kg (new pack)"},
    "Product": PRODUCT,
    "WrittenProduct": {**PRODUCT, "position": 120411},
    "Page_inventory.api.schemas.Product_": page(PRODUCT),
    "NewStore": {
        "id": STORE,
        "name": "Lahore 1",
        "location": "Gulberg III, Lahore",
        "timezone": "Asia/Karachi",
    },
    "Store": STORE_VIEW,
    "WrittenStore": {**STORE_VIEW, "position": 120398},
    "Page_inventory.api.schemas.Store_": page(STORE_VIEW),
    # stock commands
    "CommandResult": RESULT,
    "Receipt": {
        "lines": [{"sku": SKU, "quantity": 40, "unit_cost": "1850.00"}],
        "reference": "GRN-7781",
        "note": "Weekly delivery",
    },
    "Sale": {"sale_id": "S-2026-000812", "lines": LINES, "occurred_at": AT},
    "Return": {"sale_id": "S-2026-000812", "lines": [{"sku": SKU, "quantity": 1}], "restock": True},
    "Adjustment": {"lines": [{"sku": SKU, "delta": -1, "reason": "damaged"}], "note": "Torn bag"},
    "Count": {
        "lines": [{"sku": SKU, "counted": 37, "expected_version": 42}],
        "note": "Aisle 4 shelf count",
    },
    "Reservation": {
        "reservation_id": "R-55120",
        "lines": LINES,
        "expires_at": "2026-03-15T14:00:00Z",
    },
    "Fulfilment": {"sale_id": "S-2026-000813"},
    "Empty": {},
    "ReorderPoint": {"min": 40, "max": 120},
    "PeriodClose": {"until": "2026-02-28T23:59:59+05:00"},
    "Transfer": {
        "transfer_id": "T-2026-0031",
        "from_store": STORE,
        "to_store": "khi2",
        "lines": [{"sku": SKU, "quantity": 5}],
    },
    "TransferReceipt": {"lines": [{"sku": SKU, "quantity": 4}]},
    # queries
    "StockLevel": STOCK_LEVEL,
    "Page_inventory.api.query_views.StockLevel_": page(STOCK_LEVEL),
    "Page_inventory.api.query_views.LedgerEntry_": page(LEDGER),
    "Page_inventory.api.query_views.SearchHit_": page(
        {
            "sku": SKU,
            "name": NAME,
            "barcode": "8964000123457",
            "unit": "bag",
            "decimals": 0,
            "levels": [STOCK_LEVEL],
        }
    ),
    "Alert": ALERT,
    "AlertPage": page(ALERT),
    "Acknowledgement": {"note": "Supplier called: delivery on Tuesday"},
    "AcknowledgedAlert": {
        **ALERT,
        "acknowledged_at": AT,
        "acknowledged_by": "amna.k",
        "note": "Supplier called: delivery on Tuesday",
        "position": 120502,
    },
    "Page_inventory.api.history_routes.HistoryEvent_": page(EVENT),
    "NewReport": {"kind": "movements", "params": {"store": STORE, "from": "2026-03-01"}},
    "ReportRun": REPORT,
    "Page_inventory.api.report_routes.MovementTotal_": page(
        {"store": STORE, "sku": SKU, "type": "stock.sold", "count": 412, "quantity": 519}
    ),
    "Page_inventory.api.report_routes.LowStockItem_": page(
        {k: v for k, v in STOCK_LEVEL.items() if k != "name"}
    ),
    "ChainVerification": {
        "store": STORE,
        "verified": True,
        "events": 88213,
        "head": EVENT["chain"],
        "first_mismatch": None,
        "problems": [],
        "checkpoint": {
            "file": "checkpoint-20260301T020000Z.json",
            "taken_at": AT,
            "ok": True,
            "problems": [],
        },
    },
    "NewWebhook": {
        "url": "https://erp.example.com/hooks/inventory",
        "stores": [STORE],
        "types": ["stock.received", "alert.opened"],
        "description": "ERP replenishment",
    },
    "CreatedWebhook": {**WEBHOOK, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    "Page_inventory.api.webhook_routes.Webhook_": page(WEBHOOK),
    "RotatedSecret": {"secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"},
    "Page_inventory.api.webhook_routes.DeliveryView_": page(DELIVERY),
    **IMPORT_SCHEMAS,
    # operations
    "Liveness": {"status": "ok"},
    "Readiness": {
        "status": "ready",
        "failing": [],
        "checks": {"primary": {"ok": True, "latency_ms": 1.4}},
    },
}
