"""Stock catalog holds for orders that do not exist here, found and given back.

orders writes an order before it asks catalog to reserve its stock, and every way an order
ends without being placed releases the reservation (compensation, recovery). A held
reservation whose order id this service does not have is therefore stock nobody will ever
release: a release lost for good, or a reservation someone made without going through
orders. Only orders may reserve (catalog requires its token), so this is a backstop; it is
also what gives back stock reserved before that rule existed.

Each recovery pass asks catalog for the reservations held that were made between
``RESERVATION_RECONCILE_WINDOW`` and ``PENDING_ORDER_TIMEOUT`` ago — old enough that no
request that could still own them is running — page by page in order id order, and
releases those whose order is not in the ``orders`` table. Placed, pending and cancelling
orders all have their row, so nothing of a live order is touched; a release is idempotent
and leaves a tombstone, so a late duplicate of the reservation is refused afterwards.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from flotilla import current_settings
from orders.clients import catalog_client
from orders.config import OrdersSettings
from orders.database import reading
from orders.models import Order

log = logging.getLogger(__name__)

PAGE_SIZE = 500


def release_orphaned_reservations(now: datetime) -> int:
    """Release what catalog holds for orders this service does not have; how many."""
    settings = current_settings(OrdersSettings)
    before = now - timedelta(seconds=settings.PENDING_ORDER_TIMEOUT)
    since = before - timedelta(seconds=settings.RESERVATION_RECONCILE_WINDOW)
    catalog = catalog_client()
    released, after = 0, 0
    while True:
        held = catalog.held_reservations(
            reserved_after=since, reserved_before=before, after=after, limit=PAGE_SIZE
        )
        for order_id in sorted(set(held) - _existing(held)):
            catalog.release(order_id)
            log.warning("orphaned reservation released", extra={"order_id": order_id})
            released += 1
        if len(held) < PAGE_SIZE:
            return released
        after = held[-1]


def _existing(order_ids: list[int]) -> set[int]:
    """Which of ``order_ids`` are orders here, in any state."""
    if not order_ids:
        return set()
    with reading() as connection:
        return set(connection.scalars(select(Order.id).where(Order.id.in_(order_ids))))
