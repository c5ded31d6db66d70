"""Undoing an order that was never placed: claim it, give its stock back, delete it.

The steps compensation (:mod:`orders.compensation`, a failed request undoing its own
order) and recovery (:mod:`orders.recovery`, finishing what a request could not) share.
Why they come in this order — an order is abandoned before its stock is released, so no
request can place it afterwards, and deleted only after — is the saga's, explained once in
``docs/resilience.md`` ("Compensation"). Each caller decides what a failure means for it:
compensation leaves the order to recovery, recovery tries again on its next pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select

from flotilla import DownstreamError, grace, utc_now
from orders.clients import catalog_client
from orders.database import writing
from orders.lifecycle import transition
from orders.models import Order
from orders.schemas import StoredResponse
from orders.states import VISIBLE_STATES, InvalidTransition, OrderEvent, OrderState

log = logging.getLogger(__name__)

_STORED = select(Order.state, Order.response_status, Order.response_body).where(
    Order.id == bindparam("order_id")
)
_DELETE = delete(Order).where(Order.id == bindparam("order_id"), Order.state == bindparam("state"))


@dataclass(frozen=True)
class Claim:
    """What an order is once :func:`claim` tried to abandon it."""

    state: str | None
    """Its state: ``abandoned`` (by this claim or an earlier one), a placed order's, or
    ``None`` when it no longer exists."""
    answer: StoredResponse | None = None
    """A placed order's stored answer, while its key is kept."""

    @property
    def abandoned(self) -> bool:
        """True when the order may be released: it is abandoned, and can never be placed."""
        return self.state == OrderState.ABANDONED

    @property
    def placed(self) -> bool:
        """True when the order was placed after all: nothing of it may be undone."""
        return self.state in VISIBLE_STATES


def abandon(
    connection: Connection, order_id: int, *, created_before: datetime | None = None
) -> bool:
    """``pending`` → ``abandoned``, its key freed, unless it was placed; True if it changed.

    A compare-and-set (:mod:`orders.lifecycle`): it waits for a confirming commit of the same
    row still in flight and changes nothing if that placed the order. ``created_before``
    limits it to an order created earlier (an orphan, whose request is past its deadline).
    Not committed here.
    """
    try:
        transition(
            connection,
            order_id,
            OrderEvent.ABANDON,
            created_before=created_before,
            updated_at=utc_now(),
        )
    except InvalidTransition:
        return False
    return True


def claim(order_id: int) -> Claim:
    """Abandon the order unless it was placed, in a transaction of its own; what it is now.

    The UPDATE waits on the row lock of a confirming commit still in flight, at most the
    database's statement timeout; a timeout raises, and the order is then left alone.
    """
    with writing() as connection:
        abandon(connection, order_id)
        stored = connection.execute(_STORED, {"order_id": order_id}).one_or_none()
        connection.commit()
    if stored is None:
        return Claim(None)
    if stored.state not in VISIBLE_STATES or stored.response_status is None:
        return Claim(stored.state)  # abandoned; or placed, its answer forgotten with its key
    return Claim(
        stored.state, StoredResponse(stored.response_status, dict(stored.response_body or {}))
    )


def release(order_id: int, *, failure: str, within: float | None = None) -> bool:
    """Give the order's stock back at catalog; False, with ``failure`` logged, if catalog failed.

    Idempotent at catalog, and a release of nothing leaves a tombstone, so whenever in doubt
    an order is released. ``within`` gives the call a deadline of its own, in seconds
    (:func:`flotilla.resilience.http.grace`): an undo may run after its request's deadline is spent.
    """
    try:
        if within is None:
            catalog_client().release(order_id)
        else:
            with grace(within):
                catalog_client().release(order_id)
    except DownstreamError as error:
        log.warning(failure, extra={"order_id": order_id, "error": str(error)})
        return False
    return True


def delete_order(order_id: int, *, state: OrderState) -> None:
    """Delete the order, its key with it, if it is still in ``state``; one statement.

    The customer may then retry with the same key.
    """
    with writing(autocommit=True) as connection:
        connection.execute(_DELETE, {"order_id": order_id, "state": state})
