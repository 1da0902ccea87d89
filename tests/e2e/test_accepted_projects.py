"""Everything the API accepts projects (api.md "Business time window"): random accepted
commands at the edges, through a real API process and a real worker, each read back at its
`position` with the level its command result reported.

The edges: the window's bounds (2000-01-01 for a manager, `backdate_days` for a clerk's
key, now + 5 minutes) and local midnights, in stores whose zones reach the extremes of
tzdata; quantities up to ±10^12 with three decimals; 1,000 lines in one command; the
longest strings every field allows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from inventory.domain.commands import RegisterProduct
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, run_commands
from tests.e2e.reading import Client
from tests.e2e.window_setup import read, same_level, user_client

pytestmark = pytest.mark.e2e
API_WORKER = True  # the conftest's API process runs with a worker: reads need projections

EXAMPLES = 60
RUN = uuid.uuid4().hex[:6]
ZONES = (
    "Pacific/Kiritimati",  # +14
    "Etc/GMT+12",  # -12
    "Asia/Kathmandu",  # +05:45
    "America/St_Johns",  # -03:30 / -02:30
    "Pacific/Chatham",  # +12:45 / +13:45
    "Australia/Lord_Howe",  # half-hour daylight saving
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Europe/Dublin",  # negative daylight saving in tzdata
    "UTC",
)
STORES = {f"acc{RUN}{index}": zone for index, zone in enumerate(ZONES)}
MANY = 1000
# SKUs of exactly 100 characters (the longest allowed); names of 200.
SMALL = [f"S{n}.{RUN}".ljust(100, "s") for n in range(3)]
LARGE = [f"L.{RUN}.{n:04d}".ljust(100, "l") for n in range(MANY)]
LONG_TEXT, LONG_NOTE = "t" * 200, "n" * 2000
EDGES = ("earliest", "latest", "now", "midnight", "midnight before", "default")
OUTSIDE = ("before earliest", "year one", "year 9999")
KINDS = ("receipts", "sales", "adjustments", "counts")


@pytest.fixture(scope="module")
def senders(api: ApiServer, settings: Settings, admin: Client) -> dict[str, Client]:
    """The stores (one per zone, negative stock allowed), the products, and the senders."""
    for store, zone in STORES.items():
        body = {
            "id": store,
            "name": LONG_TEXT,
            "location": LONG_TEXT,
            "timezone": zone,
            "negative_stock": "allow",
        }
        assert admin.post("/v1/stores", body).status_code == 201
    now = datetime.now(UTC)
    run_commands(
        settings,
        *(RegisterProduct(sku=sku, name=LONG_TEXT, decimals=3, now=now) for sku in SMALL + LARGE),
    )
    return {
        "manager": user_client(api, settings, Role.MANAGER),
        "clerk": Client(api, api_key(settings, Role.CLERK, ["*"], "accepted clerk")),
    }


def occurred_at(edge: str, sender: str, zone: str) -> str | None:
    """The edge's time as the store's zone writes it (None: left to the default, now)."""
    now, tz = datetime.now(UTC), ZoneInfo(zone)
    if edge in ("year one", "year 9999"):  # with the zone's offset of today
        offset = now.astimezone(tz).utcoffset()
        assert offset is not None
        far = (1, 1, 1) if edge == "year one" else (9999, 12, 31)
        return datetime(*far, tzinfo=timezone(offset)).isoformat()
    # A clerk's window starts backdate_days (30) ago: a minute's margin for the request.
    manager = sender == "manager"
    start = datetime(2000, 1, 1, tzinfo=UTC) if manager else now - timedelta(days=30, minutes=-1)
    # A local-day boundary inside the window: the first after 2000-01-01, or today's.
    day = start.astimezone(tz).date() + timedelta(days=1) if manager else now.astimezone(tz).date()
    midnight = datetime.combine(day, time(0), tz)
    at = {
        "earliest": start,
        "latest": now + timedelta(minutes=5),
        "now": now,
        "midnight": midnight,
        "midnight before": midnight - timedelta(microseconds=1),
        "before earliest": start - timedelta(minutes=2),
    }.get(edge)
    return None if at is None else at.astimezone(tz).isoformat()


EXTREMES = st.sampled_from(["1000000000000", "999999999999.999", "0.001", "1", "123456.789"])
# 0.001 to 10^12 in thousandths: every value with the most decimals a product allows.
POSITIVE = EXTREMES | st.integers(1, 10**15).map(lambda n: str(Decimal(n).scaleb(-3)))


def quantity(kind: str) -> st.SearchStrategy[str]:
    """Quantities a command of `kind` accepts, reaching the extremes."""
    if kind == "adjustments":
        return st.tuples(POSITIVE, st.booleans()).map(lambda q: f"-{q[0]}" if q[1] else q[0])
    if kind == "counts":
        return POSITIVE | st.just("0")
    return POSITIVE


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    """A command at an edge: its store, sender, time, kind and lines."""
    kind = draw(st.sampled_from(KINDS))
    return {
        "store": draw(st.sampled_from(sorted(STORES))),
        "sender": draw(st.sampled_from(["manager", "clerk"])),
        "edge": draw(st.sampled_from(EDGES + OUTSIDE)),
        "kind": kind,
        "many": draw(st.booleans()),
        "quantities": draw(st.lists(quantity(kind), min_size=1, max_size=len(SMALL))),
    }


def body(command: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The route and JSON body of a drawn command."""
    kind, quantities = command["kind"], command["quantities"]
    skus = LARGE if command["many"] else SMALL[: len(quantities)]
    amounts = [quantities[index % len(quantities)] for index in range(len(skus))]
    field = {"adjustments": "delta", "counts": "counted"}.get(kind, "quantity")
    lines: list[dict[str, Any]] = [{"sku": s, field: q} for s, q in zip(skus, amounts, strict=True)]
    data: dict[str, Any] = {"lines": lines}
    if kind == "adjustments":
        data |= {"note": LONG_NOTE}
        for line in lines:
            line["reason"] = "correction"
    elif kind == "sales":
        data |= {"sale_id": uuid.uuid4().hex.ljust(100, "s"), "offline": True}
    elif kind == "receipts":
        data |= {"reference": LONG_TEXT, "note": LONG_NOTE}
    else:
        data |= {"note": LONG_NOTE}
    at = occurred_at(command["edge"], command["sender"], STORES[command["store"]])
    if at is not None:
        data["occurred_at"] = at
    return f"/v1/stores/{command['store']}/{kind}", data


def sender_of(command: dict[str, Any]) -> str:
    """Adjustments are a manager's; everything else is drawn between manager and clerk."""
    return "manager" if command["kind"] == "adjustments" else command["sender"]


@examples(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(command=commands())
def test_every_command_is_refused_out_of_range_or_read_back_at_its_position(
    senders: dict[str, Client], command: dict[str, Any]
) -> None:
    command["sender"] = sender_of(command)
    path, data = body(command)
    client = senders[command["sender"]]
    response = client.post(path, data)
    event(f"{response.status_code} {'outside' if command['edge'] in OUTSIDE else 'inside'}")
    if command["edge"] in OUTSIDE and response.status_code == 422:
        assert response.json()["code"] == "occurred_at_out_of_range", response.text
        return
    assert response.status_code == 201, response.text
    result = response.json()
    position, store = result["position"], command["store"]
    written = {level["sku"]: level for level in result["levels"]}
    if command["many"]:
        page = read(
            client, f"/v1/stores/{store}/stock", sku=f"L.{RUN}.", limit=MANY, min_position=position
        )
        assert page.status_code == 200, page.text
        shown = {level["sku"]: level for level in page.json()["items"]}
    else:
        shown = {}
        for sku in written:
            level = read(client, f"/v1/stores/{store}/stock/{sku}", min_position=position)
            assert level.status_code == 200, level.text
            shown[sku] = level.json()
    assert shown.keys() == written.keys()
    assert all(same_level(shown[sku], written[sku]) for sku in written)
