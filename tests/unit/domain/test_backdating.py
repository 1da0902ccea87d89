"""The domain keeps every dated command inside its store's business-time window, for the
sender's authority: clerks and keys within `backdate_days`, managers back to 2000-01-01."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.domain.authority import SYSTEM, Authority
from inventory.domain.commands import (
    ClosePeriod,
    DispatchTransfer,
    OpenStore,
    ReceiptLine,
    ReceiveStock,
    RecordSale,
    ReserveStock,
)
from inventory.domain.errors import OccurredAtOutOfRange, PeriodClosed, ValidationRejected
from inventory.domain.events import StoreOpened, StorePeriodClosed
from inventory.domain.state import StoreState
from inventory.domain.window import EARLIEST, business_window
from tests.unit.domain.scenario import NOW, Scenario, lines, product, receive

CLERK_KEY = Authority(role="clerk", api_key=True)
MANAGER = Authority(role="manager", api_key=False)
MANAGER_KEY = Authority(role="manager", api_key=True)
CLERK = Authority(role="clerk", api_key=False)
AUTHORITIES = st.sampled_from([CLERK_KEY, MANAGER, MANAGER_KEY, CLERK, SYSTEM])


def shop(backdate_days: int = 30, store_id: str = "s1") -> StoreOpened:
    """A store with its backdating limit."""
    return StoreOpened(store_id=store_id, name="Shop", backdate_days=backdate_days)


def receipt(occurred_at: datetime, authority: Authority, store_id: str = "s1") -> ReceiveStock:
    """One unit of A received at `occurred_at`, sent by `authority`."""
    return ReceiveStock(
        store_id=store_id,
        lines=(ReceiptLine(sku="A", quantity=Decimal(1)),),
        occurred_at=occurred_at,
        authority=authority,
        now=NOW,
    )


@settings(max_examples=200, deadline=None)
@given(
    authority=AUTHORITIES,
    backdate_days=st.integers(0, 9000),
    before=st.timedeltas(-timedelta(minutes=10), timedelta(days=12000)),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
)
def test_a_command_is_admitted_exactly_when_its_sender_window_holds_it(
    authority: Authority, backdate_days: int, before: timedelta, offset_minutes: int
) -> None:
    scenario = Scenario(shop(backdate_days), product("A"))
    at = (NOW - before).astimezone(timezone(timedelta(minutes=offset_minutes)))
    limited = backdate_days if authority.backdate_limited else None
    window = business_window(NOW, limited)
    if window.admits(at):
        assert scenario.decide(receipt(at, authority))
        return
    with pytest.raises(OccurredAtOutOfRange) as refused:
        scenario.decide(receipt(at, authority))
    assert refused.value.errors == [window.problem()]


@pytest.mark.parametrize("hours", [0, 14, -12])
def test_a_year_one_sale_is_out_of_range_in_any_offset(hours: int) -> None:
    scenario = Scenario(shop(), product("A")).given()
    scenario.when(receive(("A", 5)))
    year_one = datetime(1, 1, 1, 5, tzinfo=timezone(timedelta(hours=hours)))
    sale = RecordSale(
        store_id="s1",
        sale_id="old",
        lines=lines(("A", 1)),
        occurred_at=year_one,
        authority=MANAGER,
        now=NOW,
    )
    with pytest.raises(OccurredAtOutOfRange) as refused:
        scenario.decide(sale)
    assert refused.value.code == "occurred_at_out_of_range"
    assert refused.value.errors[0]["earliest"] == EARLIEST.isoformat()


def test_a_clerk_key_is_held_to_backdate_days_and_a_manager_to_2000() -> None:
    scenario = Scenario(shop(backdate_days=7), product("A"))
    eight_days_ago = NOW - timedelta(days=8)
    with pytest.raises(OccurredAtOutOfRange):
        scenario.decide(receipt(eight_days_ago, CLERK_KEY))
    with pytest.raises(OccurredAtOutOfRange):
        scenario.decide(receipt(eight_days_ago, MANAGER_KEY))  # a device, whatever its role
    assert scenario.decide(receipt(eight_days_ago, MANAGER))
    assert scenario.decide(receipt(EARLIEST, MANAGER))
    with pytest.raises(OccurredAtOutOfRange):
        scenario.decide(receipt(EARLIEST - timedelta(seconds=1), MANAGER))


def test_a_date_inside_the_window_but_before_the_close_stays_period_closed() -> None:
    closed = StorePeriodClosed(store_id="s1", until=NOW - timedelta(days=3), occurred_at=NOW)
    scenario = Scenario(shop(), product("A"), closed)
    with pytest.raises(PeriodClosed):
        scenario.decide(receipt(NOW - timedelta(days=4), CLERK_KEY))
    with pytest.raises(OccurredAtOutOfRange) as refused:
        scenario.decide(receipt(NOW - timedelta(days=40), CLERK_KEY))
    assert refused.value.errors[0]["closed_until"] == closed.until.isoformat()


def test_a_transfer_is_held_to_the_destination_window_too() -> None:
    scenario = Scenario(shop(30, "s1"), shop(2, "s2"), product("A"))
    scenario.when(receive(("A", 5)))
    dispatch = DispatchTransfer(
        transfer_id="t1",
        from_store="s1",
        to_store="s2",
        lines=lines(("A", 1)),
        occurred_at=NOW - timedelta(days=3),
        authority=CLERK_KEY,
        now=NOW,
    )
    with pytest.raises(OccurredAtOutOfRange):
        scenario.decide(dispatch)


def test_a_period_cannot_close_before_2000() -> None:
    scenario = Scenario(shop())
    close = ClosePeriod(
        store_id="s1",
        until=datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        occurred_at=NOW,
        authority=MANAGER,
        now=NOW,
    )
    with pytest.raises(ValidationRejected) as refused:
        scenario.decide(close)
    assert refused.value.errors[0]["field"] == "until"


def test_an_expiry_past_the_calendar_is_refused() -> None:
    scenario = Scenario(shop(), product("A"))
    scenario.when(receive(("A", 5)))
    far = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12)))
    reserve = ReserveStock(
        store_id="s1",
        reservation_id="r1",
        lines=lines(("A", 1)),
        expires_at=far,
        occurred_at=NOW,
        now=NOW,
    )
    with pytest.raises(ValidationRejected) as refused:
        scenario.decide(reserve)
    assert refused.value.errors[0]["field"] == "expires_at"


def test_a_store_opened_before_backdate_days_existed_decodes_with_thirty() -> None:
    old = b'{"store_id": "s1", "name": "Old"}'
    assert msgspec.json.decode(old, type=StoreOpened).backdate_days == 30
    assert msgspec.json.decode(b'{"exists": true}', type=StoreState).backdate_days == 30


@pytest.mark.parametrize("days", [-1, 36501])
def test_backdate_days_outside_zero_to_a_century_are_refused(days: int) -> None:
    with pytest.raises(ValidationRejected):
        Scenario().decide(OpenStore(store_id="s1", name="S", backdate_days=days, now=NOW))
