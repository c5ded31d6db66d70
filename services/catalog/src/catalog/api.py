"""HTTP endpoints of the catalog service: parse, call one service function, return a schema."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for

from catalog import reconciliation, service
from catalog import reservations as stock
from catalog.models import Product
from catalog.schemas import (
    HeldReservations,
    HeldReservationsQuery,
    ProductCreate,
    ProductPublic,
    ProductQuery,
    ProductsPublic,
    ProductUpdate,
    ReservationCreate,
    ReservationPublic,
)
from flotilla import (
    ADMIN,
    BIGINT_MAX,
    Blueprint,
    Page,
    ProblemSchema,
    json_document,
    require_auth,
    require_service,
)

products = Blueprint(
    "products", __name__, url_prefix="/api/v1/products", description="Products, prices, stock."
)
reservations = Blueprint(
    "reservations",
    __name__,
    url_prefix="/api/v1/reservations",
    description="Stock held for orders; internal: only the orders service's own token.",
)

ORDERS_SERVICE = "orders"
"""The one caller of the reservations API: its token's ``client_id`` (SERVICE_CLIENT_ID)."""

PRODUCT_ID = f"<int(max={BIGINT_MAX}):product_id>"
ORDER_ID = f"<int(min=1, max={BIGINT_MAX}):order_id>"


@products.post("")
@require_auth(roles=[ADMIN])
@products.arguments(ProductCreate)
@products.response(201, ProductPublic)
@products.alt_response(409, schema=ProblemSchema, description="SKU taken.")
def create_product(data: dict[str, Any]) -> tuple[Product, dict[str, str]]:
    """Add a product (administrators)."""
    product = service.create_product(**data)
    return product, {"Location": url_for("products.get_product", product_id=product.id)}


@products.get("")
@products.arguments(ProductQuery, location="query", as_kwargs=True)
@products.response(200, ProductsPublic)
def list_products(limit: int, cursor: str | None, active: bool, q: str | None) -> Page[Product]:
    """List products in id order, one page at a time, by state and part of name or SKU."""
    return service.list_products(limit=limit, cursor=cursor, active=active, q=q)


@products.get(f"/{PRODUCT_ID}")
@products.response(200, ProductPublic)
@products.alt_response(404, schema=ProblemSchema, description="No such product.")
def get_product(product_id: int) -> Response:
    """Read a product."""
    return json_document(service.product_document(product_id))


@products.get("/by-sku/<string(maxlength=64):sku>")
@products.response(200, ProductPublic)
@products.alt_response(404, schema=ProblemSchema, description="No such product.")
def get_product_by_sku(sku: str) -> Response:
    """Read a product by its SKU, in any case."""
    return json_document(service.product_document_by_sku(sku))


@products.patch(f"/{PRODUCT_ID}")
@require_auth(roles=[ADMIN])
@products.arguments(ProductUpdate)
@products.response(200, ProductPublic)
@products.alt_response(404, schema=ProblemSchema, description="No such product.")
def update_product(changes: dict[str, Any], product_id: int) -> Product:
    """Change a product's name, description, price, currency, stock or state (administrators)."""
    return service.update_product(product_id, changes)


@products.delete(f"/{PRODUCT_ID}")
@require_auth(roles=[ADMIN])
@products.response(204)
@products.alt_response(404, schema=ProblemSchema, description="No such product.")
def deactivate_product(product_id: int) -> None:
    """Take a product off sale; it stays readable (administrators)."""
    service.deactivate_product(product_id)


@reservations.post("")
@require_service(ORDERS_SERVICE)
@reservations.arguments(ReservationCreate)
@reservations.response(201, ReservationPublic)
@reservations.alt_response(200, schema=ReservationPublic, description="Reserved before.")
@reservations.alt_response(409, schema=ProblemSchema, description="Out of stock or released.")
def reserve_stock(data: dict[str, Any]) -> tuple[stock.ReservationView, int]:
    """Hold stock for an order: all lines or none; a repeat holds nothing more."""
    reservation, created = stock.reserve_stock(**data)
    return reservation, 201 if created else 200


@reservations.get("")
@require_service(ORDERS_SERVICE)
@reservations.arguments(HeldReservationsQuery, location="query", as_kwargs=True)
@reservations.response(200, HeldReservations)
def list_held_reservations(**window: Any) -> dict[str, list[int]]:
    """Ids of orders holding stock reserved in a time window, for reconciliation."""
    return reconciliation.held_order_ids(**window)


@reservations.get(f"/{ORDER_ID}")
@require_service(ORDERS_SERVICE)
@reservations.response(200, ReservationPublic)
@reservations.alt_response(404, schema=ProblemSchema, description="No such reservation.")
def get_reservation(order_id: int) -> stock.ReservationView:
    """Read an order's reservation, held or released."""
    return stock.get_reservation(order_id)


@reservations.delete(f"/{ORDER_ID}")
@require_service(ORDERS_SERVICE)
@reservations.response(204)
def release_stock(order_id: int) -> None:
    """Give an order's stock back, once; releasing an unknown order refuses it later."""
    stock.release_stock(order_id)
