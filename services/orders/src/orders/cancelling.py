"""Cancelling an order: recorded first, stock released at catalog, then cancelled with its event.

::

    placed ──(commit)──▶ cancelling ──release at catalog──▶ cancelled + order.cancelled (commit)

The stock and the order live in two databases, so the cancel cannot be one transaction.
Recording it first means no failure in between can leave the stock back on sale while the
order still says ``placed``: a release whose answer was lost (a timeout, a 5xx, a reset
after catalog acted), or a failed last commit, leaves the order ``cancelling``, and a
repeated cancel or :mod:`orders.recovery` releases again (catalog's release is idempotent)
and finishes it. Both steps are compare-and-sets on the state (:mod:`orders.lifecycle`), so
concurrent cancels, or a cancel racing recovery, write ``order.cancelled`` once.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sqlalchemy import Row, bindparam, select

from flotilla import utc_now
from orders.clients import catalog_client
from orders.database import writing
from orders.lifecycle import transition
from orders.models import Order, outbox
from orders.schemas import OrderView
from orders.service import read_order
from orders.states import InvalidTransition, OrderEvent, OrderState, allows

log = logging.getLogger(__name__)

_CANCELLED = select(
    Order.id,
    Order.user_id,
    Order.customer_email,
    Order.customer_display_name,
    Order.cancel_reason,
    Order.currency,
    Order.total,
).where(Order.id == bindparam("order_id"))


def cancel_order(order_id: int, *, reason: str | None = None) -> OrderView:
    """Cancel a placed order: recorded, stock back to catalog, then cancelled with its event.

    Only the caller's own order, or any for an administrator (else 404, as
    :func:`orders.service.read_order`). Repeating the cancel continues from the release,
    which is idempotent; recovery finishes cancels nobody repeats. Cancelling a cancelled
    order answers the order as it is, without calling catalog or writing a second event.
    """
    order = read_order(order_id)
    if order["state"] == OrderState.CANCELLED:
        return order
    if allows(OrderState(order["state"]), OrderEvent.CANCEL):
        _begin_cancel(order_id, reason=reason)
    catalog_client().release(order_id)  # the request's own work: under its deadline
    finish_cancel(order_id, reason=reason)
    return read_order(order_id)


def _begin_cancel(order_id: int, *, reason: str | None) -> None:
    """Commit ``placed`` → ``cancelling`` with the reason given and the time, the order's
    ``cancelling`` entry; nothing when a concurrent cancel already did (its reason and time
    stand)."""
    now = utc_now()
    with (
        writing(autocommit=True) as connection,
        contextlib.suppress(InvalidTransition),
    ):
        transition(
            connection,
            order_id,
            OrderEvent.CANCEL,
            cancel_reason=reason,
            cancel_requested_at=now,
            updated_at=now,
        )


def finish_cancel(order_id: int, *, reason: str | None = None) -> bool:
    """Commit ``cancelling`` → ``cancelled`` with ``order.cancelled``, once the stock is back.

    The event carries ``reason`` when the cancel that finishes gives one (and the order
    keeps it), else the reason recorded when the cancel began: recovery finishing a cancel
    still sends the customer's.

    False when the order was not ``cancelling`` any more: a concurrent cancel (or recovery)
    finished it and wrote the event.
    """
    now = utc_now()
    given: dict[str, Any] = {} if reason is None else {"cancel_reason": reason}
    with writing() as connection:
        try:
            transition(
                connection, order_id, OrderEvent.RELEASE, cancelled_at=now, updated_at=now, **given
            )
        except InvalidTransition:
            return False  # closing without a commit rolls back
        order = connection.execute(_CANCELLED, {"order_id": order_id}).one()
        payload = _cancelled_payload(order, cancelled_at=now.isoformat())
        outbox.add_event(connection, "order.cancelled", payload, version=1)
        connection.commit()
    log.info("order cancelled", extra={"order_id": order_id})
    return True


def _cancelled_payload(order: Row[*tuple[Any, ...]], *, cancelled_at: str) -> dict[str, Any]:
    """``order.cancelled`` v1 (docs/events.md), addressed to the customer who placed it."""
    return {
        "order_id": order.id,
        "user_id": order.user_id,
        "email": order.customer_email,
        "display_name": order.customer_display_name,
        "cancelled_at": cancelled_at,
        "reason": order.cancel_reason,
        "currency": order.currency,
        "total": order.total,
    }
