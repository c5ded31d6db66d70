"""Cancelling an order: recorded first, stock released at catalog, then cancelled with its event.

::

    placed ──(commit)──▶ cancelling ──release at catalog──▶ cancelled + order.cancelled (commit)

The stock and the order live in two databases, so the cancel cannot be one transaction.
Recording it first means no failure in between can leave the stock back on sale while the
order still says ``placed``: a release whose answer was lost (a timeout, a 5xx, a reset
after catalog acted), or a failed last commit, leaves the order ``cancelling``, and a
repeated cancel or :mod:`orders.recovery` releases again (catalog's release is idempotent)
and finishes it. Both steps are compare-and-sets on the state, so concurrent cancels, or a
cancel racing recovery, write ``order.cancelled`` once.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update

from flotilla.columns import utc_now
from orders.models import Order, db, outbox
from orders.states import OrderEvent, OrderState, next_state

log = logging.getLogger(__name__)


def begin_cancel(order_id: int, *, reason: str | None) -> None:
    """Commit ``placed`` → ``cancelling`` with the reason given; nothing when a concurrent
    cancel already did (its reason stands)."""
    session = db.session()
    now = utc_now()
    session.execute(
        update(Order)
        .where(Order.id == order_id, Order.state == OrderState.PLACED)
        .values(
            state=next_state(OrderState.PLACED, OrderEvent.CANCEL),
            cancel_reason=reason,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()


def finish_cancel(order_id: int, *, reason: str | None = None) -> bool:
    """Commit ``cancelling`` → ``cancelled`` with ``order.cancelled``, once the stock is back.

    The event carries ``reason`` when the cancel that finishes gives one, else the reason
    recorded when the cancel began: recovery finishing a cancel still sends the customer's.

    False when the order was not ``cancelling`` any more: a concurrent cancel (or recovery)
    finished it and wrote the event.
    """
    session = db.session()
    now = utc_now()
    result = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.state == OrderState.CANCELLING)
        .values(
            state=next_state(OrderState.CANCELLING, OrderEvent.RELEASE),
            cancelled_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return False
    order = session.get_one(Order, order_id, populate_existing=True)
    if reason is not None:
        order.cancel_reason = reason
    payload = _cancelled_payload(order, cancelled_at=now.isoformat())
    outbox.add_event(session, "order.cancelled", payload, version=1)
    session.commit()
    log.info("order cancelled", extra={"order_id": order_id})
    return True


def _cancelled_payload(order: Order, *, cancelled_at: str) -> dict[str, Any]:
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
