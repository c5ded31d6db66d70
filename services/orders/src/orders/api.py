"""HTTP endpoints of the orders service: parse, call one service function, return a schema.

The only layer that reads request headers or builds a response: what the service layer
needs of a header reaches it as a value (the caller, the idempotency key).
"""

from __future__ import annotations

from flask import Response, current_app, request, url_for

from flotilla import (
    BIGINT_MAX,
    Blueprint,
    Page,
    ProblemSchema,
    current_principal,
    require_auth,
)
from orders import cancelling, placing, service
from orders.clients import Caller
from orders.schemas import (
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_KEY_PARAMETER,
    OrderCancel,
    OrderCreate,
    OrderPublic,
    OrdersPublic,
    OrdersQuery,
    OrderView,
    StoredResponse,
)

orders = Blueprint("orders", __name__, url_prefix="/api/v1/orders", description="Orders.")

ORDER_ID = f"<int(max={BIGINT_MAX}):order_id>"
REPLAYED_HEADER = "Idempotent-Replayed"
CANCEL_UNFINISHED = (
    "Catalog failed or did not answer. If the order reads `cancelling`, the cancel is "
    "recorded: cancel again to finish it, or the shop finishes it within minutes."
)


@orders.post("")
@require_auth()
@orders.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
@orders.arguments(OrderCreate, as_kwargs=True)
@orders.response(201, OrderPublic, description="Placed; a replay also says Idempotent-Replayed.")
@orders.alt_response(400, schema=ProblemSchema, description="No valid Idempotency-Key.")
@orders.alt_response(409, schema=ProblemSchema, description="Not enough stock, or key in use.")
@orders.alt_response(422, schema=ProblemSchema, description="Invalid lines or key reused.")
@orders.alt_response(502, schema=ProblemSchema, description="A service failed.")
@orders.alt_response(503, schema=ProblemSchema, description="A service is unavailable.")
@orders.alt_response(504, schema=ProblemSchema, description="A service did not answer.")
def place_order(lines: list[dict[str, int]]) -> Response:
    """Place an order, priced by the catalog; safe to repeat with the same Idempotency-Key."""
    answer = placing.place_order(
        caller=_caller(),
        lines=lines,
        idempotency_key=request.headers.get(IDEMPOTENCY_KEY_HEADER),
    )
    return _stored_response(answer)


@orders.get(f"/{ORDER_ID}")
@require_auth()
@orders.response(200, OrderPublic)
@orders.alt_response(404, schema=ProblemSchema, description="No such order of yours.")
def get_order(order_id: int) -> OrderView:
    """Read one of your orders (administrators: any order)."""
    return service.read_order(order_id)


@orders.get("")
@require_auth()
@orders.arguments(OrdersQuery, location="query", as_kwargs=True)
@orders.response(200, OrdersPublic)
def list_orders(limit: int, cursor: str | None, customer: int | None = None) -> Page[OrderView]:
    """List your orders (administrators: a customer's), newest first, a page at a time."""
    return service.list_orders(limit=limit, cursor=cursor, customer=customer)


@orders.post(f"/{ORDER_ID}/cancel")
@require_auth()
@orders.arguments(OrderCancel, required=False, as_kwargs=True)
@orders.response(200, OrderPublic)
@orders.alt_response(404, schema=ProblemSchema, description="No such order of yours.")
@orders.alt_response(502, schema=ProblemSchema, description=CANCEL_UNFINISHED)
@orders.alt_response(503, schema=ProblemSchema, description=CANCEL_UNFINISHED)
@orders.alt_response(504, schema=ProblemSchema, description=CANCEL_UNFINISHED)
def cancel_order(order_id: int, reason: str | None = None) -> OrderView:
    """Cancel one of your placed orders; its stock goes back. Cancelling again is harmless."""
    return cancelling.cancel_order(order_id, reason=reason)


def _caller() -> Caller:
    """The verified principal and its bearer token; ``require_auth`` checked the header."""
    _scheme, _, token = request.headers["Authorization"].partition(" ")
    return Caller(current_principal(), token.strip())


def _stored_response(answer: StoredResponse) -> Response:
    """The placed order's answer, at its ``Location``; a replay says so in its header."""
    response = Response(
        current_app.json.dumps(answer.body), answer.status, mimetype="application/json"
    )
    response.headers["Location"] = url_for("orders.get_order", order_id=answer.body["id"])
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response
