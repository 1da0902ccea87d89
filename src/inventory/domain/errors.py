"""Why the domain refuses a command: one class per stable `code` of the API contract."""

from __future__ import annotations

from typing import Any, ClassVar


class CommandRejected(Exception):
    """Base of every refusal: a stable `code`, a human `detail` and per-line `errors`."""

    code: ClassVar[str] = "command_rejected"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: list[dict[str, Any]] = errors or []


class ValidationRejected(CommandRejected):
    """A value the domain cannot accept: too many decimals, out of range, in the future."""

    code = "validation_failed"


class OccurredAtOutOfRange(ValidationRejected):
    """`occurred_at` lies outside the business-time window; `errors` holds the window."""

    code = "occurred_at_out_of_range"


class ReturnBeforeSale(ValidationRejected):
    """A return dated before the sale it names (rule 10)."""

    code = "return_before_sale"


class NotAllowed(CommandRejected):
    """The sender's role may not do this to this document (403)."""

    code = "not_allowed"


class ReturnNeedsManager(NotAllowed):
    """A return against a sale that sold more than was available: a manager's (rule 4)."""

    code = "return_needs_manager"


class NotFound(CommandRejected):
    """Base of the refusals naming something that does not exist."""

    code = "not_found"


class StoreNotFound(NotFound):
    """The store was never opened."""

    code = "store_not_found"


class ProductNotFound(NotFound):
    """A SKU was never registered."""

    code = "product_not_found"


class SaleNotFound(NotFound):
    """No sale with this id in this store."""

    code = "sale_not_found"


class ReservationNotFound(NotFound):
    """No reservation with this id in this store."""

    code = "reservation_not_found"


class TransferNotFound(NotFound):
    """No transfer with this id."""

    code = "transfer_not_found"


class Conflict(CommandRejected):
    """Base of the refusals caused by the current state of a stream."""

    code = "conflict"


class ProductExists(Conflict):
    """A product with this SKU is already registered."""

    code = "product_exists"


class StoreExists(Conflict):
    """A store with this id is already open."""

    code = "store_exists"


class InsufficientStock(Conflict):
    """Lines would make `available` negative; `errors` holds `{sku, available, requested}`."""

    code = "insufficient_stock"


class VersionConflict(Conflict):
    """A stream is not at the client's `expected_version`; `errors` holds the current one."""

    code = "version_conflict"


class PeriodClosed(Conflict):
    """The store's books are closed up to a date at or after the command's `occurred_at`."""

    code = "period_closed"


class DuplicateSale(Conflict):
    """This `sale_id` is already used in this store."""

    code = "duplicate_sale"


class DuplicateTransfer(Conflict):
    """This `transfer_id` is already used (api.md names no code for it yet)."""

    code = "duplicate_transfer"


class DuplicateReservation(Conflict):
    """This `reservation_id` is already used in this store (api.md names no code for it yet)."""

    code = "duplicate_reservation"


class ReturnExceedsSale(Conflict):
    """Lines return more than the sale sold, less what was already returned."""

    code = "return_exceeds_sale"


class ReservationNotActive(Conflict):
    """The reservation was already released, expired or fulfilled."""

    code = "reservation_not_active"


class TransferNotOpen(Conflict):
    """The transfer was already received in whole or cancelled."""

    code = "transfer_not_open"
