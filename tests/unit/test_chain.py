"""The chain's encoding: the package's and the offline script's agree, byte for byte."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import ModuleType

from inventory.eventstore.chain import ZERO, Fields, encoding, link

SCRIPT = Path(__file__).resolve().parents[2] / "ops" / "verify_chain.py"
EVENT_ID = "2f1d6c3e-8a9b-4c5d-9e0f-1a2b3c4d5e6f"
AWKWARD = 'quote " back \\ tab \t newline \n bell \x07 é 🙂'


def offline() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_chain", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fields() -> Fields:
    occurred = datetime(2026, 2, 28, 23, 0, 0, 5, tzinfo=timezone(timedelta(hours=-5)))
    return Fields(
        EVENT_ID,
        "stock-s1-A",
        3,
        "stock.sold",
        "s1",
        None,
        occurred,
        datetime(2026, 3, 1, 4, 0, 1, tzinfo=UTC),
        '{"note": "'
        + AWKWARD.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\x07", "\\u0007")
        + '", "quantity": "2.500"}',
        '{"actor": "u1"}',
    )


def test_the_encoding_is_the_jsonb_text_of_the_fields_array_with_utc_microseconds() -> None:
    assert encoding(fields()).startswith(
        f'["{EVENT_ID}", "stock-s1-A", 3, "stock.sold", "s1", null,'
        ' "2026-03-01T04:00:00.000005Z", "2026-03-01T04:00:01.000000Z", {"note": "quote \\"'
    )


def test_the_offline_script_encodes_an_export_line_exactly_as_the_package_does() -> None:
    event = fields()
    line = {
        "id": EVENT_ID,
        "stream": event.stream,
        "version": event.version,
        "type": event.type,
        "store": event.store,
        "sku": event.sku,
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.recorded_at.isoformat().replace("+00:00", "Z"),
        "data": json.loads(event.data),
        "metadata": json.loads(event.metadata),
    }

    assert offline().encoding(line) == encoding(event)


def test_numbers_keep_their_written_form_and_keys_sort_by_length_first() -> None:
    script = offline()
    parsed = json.loads(
        '{"bb": 1.50, "a": 0.0000001, "ccc": [true, null, 10]}', parse_float=Decimal
    )

    assert script.jsonb_text(parsed) == '{"a": 0.0000001, "bb": 1.50, "ccc": [true, null, 10]}'


def test_a_link_is_the_sha256_of_the_previous_hex_and_the_encoding() -> None:
    first = link(ZERO, "[]")

    assert first == "424bb79f048ecda0ef926d14025e1501fb4a725123196599853141791a37050a"
    assert link(first, "[]") != first
