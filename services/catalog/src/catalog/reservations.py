"""Stock reservations: what an order holds, taken at most once and given back at most once.

This is an internal API, called by the orders service only, with its own token (a service
token users issues to it, ``require_service("orders")``), not a user's: orders' background
recovery releases reservations with no user behind the call, and no user, administrators
included, may hold or free stock directly. The network adds a second fence: nginx does not
route ``/api/v1/reservations``, and only orders may reach catalog's port in Kubernetes.

How it stays right under concurrency, on PostgreSQL and on SQLite:

* A reservation is keyed by the order's id, and inserted first in its transaction. A
  concurrent request for the same order waits on that key (PostgreSQL) or for the single
  writer (SQLite), then fails the primary key and answers as a repeat does: one reservation,
  one decrement, whichever request won.
* Stock is taken with one conditional ``UPDATE`` per product, in product id order:
  ``stock = stock - q WHERE id = :id AND active AND stock >= q``. PostgreSQL locks the row and
  re-checks the condition after waiting for a concurrent writer, so no decrement is lost and
  none overdraws; taking rows in one global order means two reservations never wait for each
  other in a cycle. SQLite has one writer at a time, and the first statement of a transaction
  is a write, so the transaction reads only what it holds the write lock for. ``stock >= 0``
  is a CHECK constraint as well.
* A release flips ``reserved`` to ``released`` with a conditional ``UPDATE`` and gives stock
  back only if it made the flip, so concurrent releases give it back once. Releasing an
  unknown order leaves a ``released`` tombstone: a reservation for it arriving late (a request
  held up in a socket buffer after its caller gave up) is refused with 409.

Any refusal rolls the whole transaction back: all lines are reserved, or none.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn, TypedDict

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.models import RELEASED, RESERVED, Product, Reservation, ReservationLine, db
from catalog.service import forget_products
from flotilla import Conflict, NotFound, ValidationFailed, utc_now

log = logging.getLogger(__name__)

Taken = Row[int, str, str, int, str]
"""What a product's stock UPDATE returns: id, sku, name, price, currency."""

_INSERT_RESERVATION = (
    insert(Reservation)
    .values(
        order_id=bindparam("reserved_for"),
        state=RESERVED,
        reserved_at=bindparam("reserved_at"),
        # The first product's currency: every line must have it (checked as stock is taken).
        currency=select(Product.currency)
        .where(Product.id == bindparam("first_product"))
        .scalar_subquery(),
    )
    .returning(Reservation.currency)
)
_TAKE_STOCK = (
    update(Product)
    .where(
        Product.id == bindparam("product"),
        Product.active.is_(True),
        Product.stock >= bindparam("quantity"),
    )
    .values(stock=Product.stock - bindparam("quantity"))
    .returning(Product.id, Product.sku, Product.name, Product.price, Product.currency)
)
_INSERT_LINES = insert(ReservationLine)
"""The statements of a reservation, built once (each call only binds its values)."""


class LineView(TypedDict):
    """A held line, as ``ReservationLinePublic`` shows it."""

    product_id: int
    sku: str
    name: str
    quantity: int
    unit_price: int
    line_total: int


class ReservationView(TypedDict):
    """A reservation, as ``ReservationPublic`` shows it."""

    order_id: int
    state: str
    currency: str | None
    lines: list[LineView]
    total: int
    reserved_at: datetime | None
    released_at: datetime | None


class ReservationNotFound(NotFound):
    """No reservation exists for this order (404)."""

    code, title = "reservation-not-found", "Reservation Not Found"


class ReservationMismatch(ValidationFailed):
    """The order already holds a reservation with other lines (422)."""

    code, title = "reservation-mismatch", "Reservation Mismatch"


class ReservationReleased(Conflict):
    """The order's reservation was released; it never reserves again (409)."""

    code, title = "reservation-released", "Reservation Released"


class ProductUnavailable(ValidationFailed):
    """A product does not exist or is not on sale; ``product_ids`` names them (422)."""

    code, title = "product-unavailable", "Product Unavailable"


class InsufficientStock(Conflict):
    """Not enough stock is left; ``product_ids`` names the products short of it (409)."""

    code, title = "insufficient-stock", "Insufficient Stock"


class CurrencyMismatch(ValidationFailed):
    """The products are priced in different currencies; one reservation has one (422)."""

    code, title = "currency-mismatch", "Currency Mismatch"


def reserve_stock(
    *, order_id: int, lines: Sequence[dict[str, int]]
) -> tuple[ReservationView, bool]:
    """Hold ``lines`` for ``order_id``: the reservation, and whether this call made it.

    The same request again returns the stored reservation, taking nothing more. Raises
    :class:`ReservationReleased`, :class:`ReservationMismatch`, :class:`ProductUnavailable`,
    :class:`CurrencyMismatch` or :class:`InsufficientStock`, having changed nothing.
    """
    wanted = {line["product_id"]: line["quantity"] for line in lines}
    try:
        return _reserve(order_id, wanted), True
    except IntegrityError:  # the order holds a reservation (or its tombstone) already
        existing = _find(order_id)
        if existing is None:
            raise
    return _repeat(existing, wanted), False


def _find(order_id: int) -> Reservation | None:
    with db.reading() as session:
        return session.get(Reservation, order_id)


def _repeat(existing: Reservation, wanted: dict[int, int]) -> ReservationView:
    if existing.state == RELEASED:
        raise ReservationReleased(f"Order {existing.order_id}'s reservation was released.")
    if {line.product_id: line.quantity for line in existing.lines} != wanted:
        raise ReservationMismatch(f"Order {existing.order_id} already holds other lines.")
    return _view(existing)


def _view(reservation: Reservation) -> ReservationView:
    lines = [
        _line(line.product_id, line.sku, line.name, line.quantity, line.unit_price)
        for line in reservation.lines
    ]
    return ReservationView(
        order_id=reservation.order_id,
        state=reservation.state,
        currency=reservation.currency,
        lines=lines,
        total=reservation.total,
        reserved_at=reservation.reserved_at,
        released_at=reservation.released_at,
    )


def _reserve(order_id: int, wanted: dict[int, int]) -> ReservationView:
    now = utc_now()
    with db.engine.connect() as connection:  # closing without a commit rolls back
        # The order is claimed first: a concurrent twin waits on its key, not on stock.
        currency = connection.execute(
            _INSERT_RESERVATION,
            {"reserved_for": order_id, "reserved_at": now, "first_product": min(wanted)},
        ).scalar_one()
        taken = _take_stock(connection, wanted, currency)
        lines = [_line(row.id, row.sku, row.name, wanted[row.id], row.price) for row in taken]
        connection.execute(_INSERT_LINES, [_line_row(order_id, line) for line in lines])
        connection.commit()
    forget_products((row.id, row.sku) for row in taken)
    log.info("stock reserved", extra={"order_id": order_id, "products": len(taken)})
    total = sum(line["line_total"] for line in lines)
    return ReservationView(
        order_id=order_id,
        state=RESERVED,
        currency=currency,
        lines=lines,
        total=total,
        reserved_at=now,
        released_at=None,
    )


def _line(product_id: int, sku: str, name: str, quantity: int, unit_price: int) -> LineView:
    return LineView(
        product_id=product_id,
        sku=sku,
        name=name,
        quantity=quantity,
        unit_price=unit_price,
        line_total=quantity * unit_price,
    )


def _line_row(order_id: int, line: LineView) -> dict[str, object]:
    """The ``reservation_lines`` row of ``line``: its total is derived, not stored."""
    return {
        "order_id": order_id,
        "product_id": line["product_id"],
        "sku": line["sku"],
        "name": line["name"],
        "quantity": line["quantity"],
        "unit_price": line["unit_price"],
    }


def _take_stock(
    connection: Connection, wanted: dict[int, int], currency: str | None
) -> list[Taken]:
    """Take each product's stock; every product must be priced in ``currency``.

    ``currency`` is the first product's, read when the reservation was inserted; a product
    whose currency differs, that one included if an administrator changed it meanwhile, makes
    a :class:`CurrencyMismatch`.
    """
    taken: list[Taken] = []
    for product_id in sorted(wanted):  # one order in every transaction: no deadlock cycles
        quantity = wanted[product_id]
        row = connection.execute(
            _TAKE_STOCK, {"product": product_id, "quantity": quantity}
        ).one_or_none()
        if row is None:
            _refuse(connection, wanted, taken, product_id)
        taken.append(row)
    currencies = {row.currency for row in taken}
    if currencies != {currency}:
        mixed = currencies | ({currency} if currency else set())
        raise CurrencyMismatch(_mixed(mixed), currencies=sorted(mixed))
    return taken


def _refuse(
    connection: Connection, wanted: dict[int, int], taken: list[Taken], failed: int
) -> NoReturn:
    """Say why ``failed`` could not be taken, naming every product refused for that reason."""
    rest = [product_id for product_id in sorted(wanted) if product_id >= failed]
    query = select(Product.id, Product.active, Product.stock, Product.currency)
    found = {row.id: row for row in connection.execute(query.where(Product.id.in_(rest)))}
    unavailable = [id_ for id_ in rest if id_ not in found or not found[id_].active]
    if unavailable:
        detail = f"Products not for sale: {unavailable}."
        raise ProductUnavailable(detail, product_ids=unavailable)
    currencies = {row.currency for row in taken} | {row.currency for row in found.values()}
    if len(currencies) > 1:
        raise CurrencyMismatch(_mixed(currencies), currencies=sorted(currencies))
    short = sorted({failed} | {id_ for id_ in rest if found[id_].stock < wanted[id_]})
    raise InsufficientStock(f"Not enough stock of products {short}.", product_ids=short)


def _mixed(currencies: set[str]) -> str:
    return f"The products are priced in different currencies: {sorted(currencies)}."


def get_reservation(order_id: int) -> ReservationView:
    """The reservation of ``order_id``, held or released; raises :class:`ReservationNotFound`."""
    reservation = _find(order_id)
    if reservation is None:
        raise ReservationNotFound(f"Order {order_id} has no reservation.")
    return _view(reservation)


def release_stock(order_id: int) -> None:
    """Give back what ``order_id`` holds, once; an unknown order gets a released tombstone."""
    for _attempt in range(3):
        try:
            given_back = _release(order_id)
        except (IntegrityError, _ReservedMeanwhile):
            continue  # the order's reservation was committed meanwhile: release that
        forget_products(given_back)
        return
    raise RuntimeError(f"order {order_id}'s reservation changed under three releases")


class _ReservedMeanwhile(Exception):
    """A reservation the release did not see when it started has been committed since."""


def _release(order_id: int) -> list[tuple[int, str]]:
    session = db.session()
    now = utc_now()
    try:
        statement = (
            update(Reservation)
            .where(Reservation.order_id == order_id, Reservation.state == RESERVED)
            .values(state=RELEASED, released_at=now)
            .returning(Reservation.order_id)
            .execution_options(synchronize_session=False)
        )
        if session.scalar(statement) is not None:
            lines = _give_back(session, order_id)
        else:
            lines = []
            _leave_tombstone(session, order_id, now)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("stock released", extra={"order_id": order_id, "products": len(lines)})
    return lines


def _leave_tombstone(session: Session, order_id: int, now: datetime) -> None:
    """Record the release of an order that has no reservation; keep a released one as it is.

    On PostgreSQL each statement sees what was committed before it started, so a reservation
    committed after the flip above found nothing is seen here: the release starts again.
    """
    query = select(Reservation.state).where(Reservation.order_id == order_id)
    state = session.scalar(query)
    if state == RESERVED:
        raise _ReservedMeanwhile
    if state is None:
        session.add(Reservation(order_id=order_id, state=RELEASED, released_at=now))
        session.flush()  # a reservation inserted meanwhile fails this: IntegrityError


def _give_back(session: Session, order_id: int) -> list[tuple[int, str]]:
    query = select(ReservationLine).where(ReservationLine.order_id == order_id)
    lines = list(session.scalars(query.order_by(ReservationLine.product_id)))
    for line in lines:  # product id order, as reservations take them
        session.execute(
            update(Product)
            .where(Product.id == line.product_id)
            .values(stock=Product.stock + line.quantity)
            .execution_options(synchronize_session=False)
        )
    return [(line.product_id, line.sku) for line in lines]
