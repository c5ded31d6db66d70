"""What catalog holds stock for, so that the orders service can check it against its orders.

A reservation is made only by the orders service, for an order it has just written, and
given back by it when the order fails or is cancelled. If that release is ever lost for
good, the stock would stay held for an order that does not exist; orders' recovery pages
through the reservations held in a time window (:func:`held_order_ids`) and releases those
whose order it does not have (see ``orders.reconciliation``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from catalog.models import RESERVED, Reservation, db


def held_order_ids(
    *, reserved_after: datetime, reserved_before: datetime, after: int, limit: int
) -> dict[str, list[int]]:
    """Ids of orders holding stock reserved in ``[reserved_after, reserved_before)``."""
    query = (
        select(Reservation.order_id)
        .where(
            Reservation.state == RESERVED,
            Reservation.reserved_at >= reserved_after,
            Reservation.reserved_at < reserved_before,
            Reservation.order_id > after,
        )
        .order_by(Reservation.order_id)
        .limit(limit)
    )
    with db.reading() as session:
        return {"order_ids": list(session.scalars(query))}
