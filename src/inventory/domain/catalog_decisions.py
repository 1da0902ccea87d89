"""Decisions on the catalog and stores: register, update, discontinue, open, close books."""

from __future__ import annotations

from inventory.domain.admission import document_change
from inventory.domain.commands import (
    ClosePeriod,
    DiscontinueProduct,
    OpenStore,
    RegisterProduct,
    UpdateProduct,
)
from inventory.domain.context import Change, Context
from inventory.domain.errors import ProductExists, StoreExists, ValidationRejected
from inventory.domain.events import (
    ProductDiscontinued,
    ProductRegistered,
    ProductUpdated,
    StoreOpened,
    StorePeriodClosed,
)
from inventory.domain.rules import (
    MAX_DECIMALS,
    check_window,
    open_store,
    registered_products,
    reject_if,
    time_problems,
)
from inventory.domain.streams import product_stream, store_stream
from inventory.domain.window import EARLIEST, MAX_BACKDATE_DAYS, Window
from inventory.domain.zones import is_known


def register_product(command: RegisterProduct, context: Context) -> list[Change]:
    """A new SKU, once; `decimals` between 0 and 3."""
    if not 0 <= command.decimals <= MAX_DECIMALS:
        raise ValidationRejected(
            "invalid decimals",
            [{"field": "decimals", "message": f"must lie between 0 and {MAX_DECIMALS}"}],
        )
    if context.product(command.sku).exists:
        raise ProductExists(f"product {command.sku!r} already exists", [{"sku": command.sku}])
    event = ProductRegistered(
        sku=command.sku,
        name=command.name,
        description=command.description,
        barcode=command.barcode,
        unit=command.unit,
        decimals=command.decimals,
        category=command.category,
    )
    return [document_change(product_stream(command.sku), event, None, command.now, new=True)]


def update_product(command: UpdateProduct, context: Context) -> list[Change]:
    """Change some details of a registered product."""
    registered_products(context, [command.sku])
    event = ProductUpdated(
        sku=command.sku,
        name=command.name,
        description=command.description,
        barcode=command.barcode,
        category=command.category,
    )
    return [document_change(product_stream(command.sku), event, None, command.now)]


def discontinue_product(command: DiscontinueProduct, context: Context) -> list[Change]:
    """Discontinue a registered product; discontinuing it again changes nothing."""
    (product,) = registered_products(context, [command.sku]).values()
    if product.discontinued:
        return []
    event = ProductDiscontinued(sku=command.sku, occurred_at=command.now)
    return [document_change(product_stream(command.sku), event, None, command.now)]


def open_new_store(command: OpenStore, context: Context) -> list[Change]:
    """A new store, once, with an id that keeps stream names unambiguous."""
    store_id = command.store_id
    if not store_id or "-" in store_id or any(character.isspace() for character in store_id):
        # `stock-{store_id}-{sku}`: with a hyphen in store ids, store "a-b" with SKU "c"
        # and store "a" with SKU "b-c" would share a stream.
        raise ValidationRejected(
            "invalid store id",
            [{"field": "id", "message": "must be non-empty, without '-' or white space"}],
        )
    if not is_known(command.timezone):
        # The store's business days (daily movement totals) are days in this zone.
        raise ValidationRejected(
            "invalid time zone",
            [{"field": "timezone", "message": "must be an IANA time zone, e.g. Europe/Paris"}],
        )
    if not 0 <= command.backdate_days <= MAX_BACKDATE_DAYS:
        message = f"must lie between 0 and {MAX_BACKDATE_DAYS}"
        raise ValidationRejected(
            "invalid backdate_days", [{"field": "backdate_days", "message": message}]
        )
    if context.store(store_id).exists:
        raise StoreExists(
            f"store {command.store_id!r} already exists", [{"store": command.store_id}]
        )
    event = StoreOpened(
        store_id=command.store_id,
        name=command.name,
        location=command.location,
        timezone=command.timezone,
        negative_stock=command.negative_stock,
        backdate_days=command.backdate_days,
    )
    stream = store_stream(command.store_id)
    return [document_change(stream, event, command.store_id, command.now, new=True)]


def close_period(command: ClosePeriod, context: Context) -> list[Change]:
    """Close the books up to `until`: not in the future nor before the business-time window
    begins (2000-01-01), never reopening a closed stretch."""
    reject_if(time_problems(command.occurred_at))
    store = open_store(context, command.store_id)
    check_window(store, command.occurred_at, command.now, command.authority)
    problems = time_problems(command.until, "until")
    if not problems and command.until > command.now:
        problems = [{"field": "until", "message": "must not be in the future"}]
    if not problems and command.until < EARLIEST:
        problems = [Window(EARLIEST, command.now).problem("until")]
    closed = store.closed_until
    if not problems and closed is not None and command.until < closed:
        message = f"must not be before the current close, {closed.isoformat()}"
        problems = [{"field": "until", "message": message}]
    reject_if(problems)
    if closed == command.until:
        return []
    event = StorePeriodClosed(
        store_id=command.store_id, until=command.until, occurred_at=command.occurred_at
    )
    stream = store_stream(command.store_id)
    return [document_change(stream, event, command.store_id, command.occurred_at)]
