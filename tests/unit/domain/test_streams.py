"""Stream names are stable API, and each names the kind of state it holds."""

from __future__ import annotations

import pytest

from inventory.domain.commands import RecordSale
from inventory.domain.decider import document_stream, streams_of
from inventory.domain.state import StockState, StoreState, state_type
from inventory.domain.streams import (
    kind_of,
    product_stream,
    reservation_stream,
    sale_stream,
    stock_stream,
    store_stream,
    transfer_stream,
)
from tests.unit.domain.scenario import NOW, lines


def test_stream_names_follow_the_contract() -> None:
    assert store_stream("s1") == "store-s1"
    assert product_stream("SKU-1") == "product-SKU-1"
    assert stock_stream("s1", "SKU-1") == "stock-s1-SKU-1"
    assert transfer_stream("t1") == "transfer-t1"
    assert sale_stream("s1", "42") == "sale-s1-42"
    assert reservation_stream("s1", "r1") == "reservation-s1-r1"


def test_a_stream_name_tells_its_state_type() -> None:
    assert state_type("stock-s1-A") is StockState
    assert state_type("store-s1") is StoreState
    with pytest.raises(ValueError, match="not a stream"):
        kind_of("orders-1")


def test_a_sale_writes_its_stock_and_sale_streams_and_only_reads_store_and_products() -> None:
    command = RecordSale(
        store_id="s1", sale_id="42", lines=lines(("A", 1), ("B", 2)), occurred_at=NOW, now=NOW
    )
    assert document_stream(command) is None
    streams = streams_of(command)
    assert streams.write == {"stock-s1-A", "stock-s1-B", "sale-s1-42"}
    assert streams.read == {"store-s1", "product-A", "product-B"}
