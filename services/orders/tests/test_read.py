"""GET /api/v1/orders/{id} (owner or administrator) and the list, paginated: the caller's own
orders, or a customer's for an administrator (``?customer=``)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from flotilla.data.columns import utc_now
from orders.models import Order, db

from .conftest import Account, ProductFactory, json_of, place


def placed(
    client: FlaskClient, account: Account, product: dict[str, Any], key: str = "k"
) -> dict[str, Any]:
    """Place an order of one ``product`` as ``account``; its JSON."""
    response = place(client, account, {product["id"]: 1}, key=key)
    assert response.status_code == 201, response.data
    return json_of(response)


def test_the_owner_reads_the_order_as_it_was_answered(
    client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    order = placed(client, customer, make_product("MUG-1"))
    response = client.get(f"/api/v1/orders/{order['id']}", headers=customer.headers)
    assert response.status_code == 200
    assert json_of(response) == order


def test_an_administrator_reads_any_order(
    client: FlaskClient, customer: Account, admin: Account, make_product: ProductFactory
) -> None:
    order = placed(client, customer, make_product("MUG-1"))
    response = client.get(f"/api/v1/orders/{order['id']}", headers=admin.headers)
    assert response.status_code == 200
    assert json_of(response)["user_id"] == customer.id


def test_another_customer_gets_404_as_for_an_absent_order(
    client: FlaskClient,
    customer: Account,
    other_customer: Account,
    make_product: ProductFactory,
) -> None:
    order = placed(client, customer, make_product("MUG-1"))
    theirs = client.get(f"/api/v1/orders/{order['id']}", headers=other_customer.headers)
    absent = client.get("/api/v1/orders/424242", headers=other_customer.headers)
    assert (theirs.status_code, absent.status_code) == (404, 404)
    assert (
        json_of(theirs)["type"]
        == json_of(absent)["type"]
        == ("urn:flotilla:problem:order-not-found")
    )


def test_reading_needs_a_token(
    client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    order = placed(client, customer, make_product("MUG-1"))
    for path in (f"/api/v1/orders/{order['id']}", "/api/v1/orders"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_a_pending_order_is_invisible(app: Flask, client: FlaskClient, customer: Account) -> None:
    with app.app_context(), db.engine.begin() as connection:
        order_id = connection.execute(
            insert(Order)
            .values(
                user_id=customer.id, state="pending", created_at=utc_now(), updated_at=utc_now()
            )
            .returning(Order.id)
        ).scalar_one()
    assert client.get(f"/api/v1/orders/{order_id}", headers=customer.headers).status_code == 404
    listed = json_of(client.get("/api/v1/orders", headers=customer.headers))
    assert listed == {"items": [], "next_cursor": None}


def test_ids_beyond_bigint_are_404(client: FlaskClient, customer: Account) -> None:
    for order_id in ("99999999999999999999", "-1"):
        response = client.get(f"/api/v1/orders/{order_id}", headers=customer.headers)
        assert response.status_code == 404


def listed_ids(client: FlaskClient, account: Account, query: str = "") -> list[int]:
    """The ids of every order the list shows ``account``, three a page, following cursors."""
    seen: list[int] = []
    cursor: str | None = None
    for _page in range(10):
        page = f"?limit=3{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(f"/api/v1/orders{page}", headers=account.headers)
        assert response.status_code == 200, response.data
        body = json_of(response)
        assert len(body["items"]) <= 3
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError(f"more than 10 pages: {seen}")


def test_the_list_pages_through_ones_own_orders_newest_first(
    client: FlaskClient,
    customer: Account,
    other_customer: Account,
    make_product: ProductFactory,
) -> None:
    mug = make_product("MUG-1", stock=100)
    mine = [placed(client, customer, mug, key=f"k{index}")["id"] for index in range(7)]
    placed(client, other_customer, mug)
    assert listed_ids(client, customer) == list(reversed(mine))


def test_an_administrator_pages_through_a_customers_orders_newest_first(
    client: FlaskClient,
    customer: Account,
    other_customer: Account,
    admin: Account,
    make_product: ProductFactory,
) -> None:
    mug = make_product("MUG-1", stock=100)
    theirs = [placed(client, customer, mug, key=f"k{index}")["id"] for index in range(7)]
    placed(client, other_customer, mug)
    own = placed(client, admin, mug)["id"]
    assert listed_ids(client, admin, f"&customer={customer.id}") == list(reversed(theirs))
    assert listed_ids(client, admin) == [own]  # without customer, still one's own


def test_a_customers_orders_read_as_their_owner_reads_them(
    client: FlaskClient, customer: Account, admin: Account, make_product: ProductFactory
) -> None:
    order = placed(client, customer, make_product("MUG-1"))
    client.post(f"/api/v1/orders/{order['id']}/cancel", headers=customer.headers)
    found = client.get(f"/api/v1/orders?customer={customer.id}", headers=admin.headers)
    own = client.get("/api/v1/orders", headers=customer.headers)
    assert json_of(found) == json_of(own)
    assert [item["state"] for item in json_of(found)["items"]] == ["cancelled"]
    nobody = client.get("/api/v1/orders?customer=424242", headers=admin.headers)
    assert json_of(nobody) == {"items": [], "next_cursor": None}


def test_only_an_administrator_may_name_a_customer(
    client: FlaskClient,
    customer: Account,
    other_customer: Account,
    make_product: ProductFactory,
) -> None:
    placed(client, customer, make_product("MUG-1"))
    for named in (customer, other_customer):  # oneself included: one meaning for everyone
        response = client.get(f"/api/v1/orders?customer={named.id}", headers=other_customer.headers)
        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"
        assert json_of(response)["type"] == "urn:flotilla:problem:customer-search-forbidden"


def test_a_customer_that_is_no_user_id_is_422(client: FlaskClient, admin: Account) -> None:
    for customer in ("0", "-1", "abc", "1.5", "", str(2**63)):
        response = client.get(f"/api/v1/orders?customer={customer}", headers=admin.headers)
        assert response.status_code == 422, customer
        assert json_of(response)["type"] == "urn:flotilla:problem:validation-error"


def test_the_list_shows_cancelled_orders_with_their_lines(
    client: FlaskClient, customer: Account, make_product: ProductFactory
) -> None:
    order = placed(client, customer, make_product("MUG-1"))
    client.post(f"/api/v1/orders/{order['id']}/cancel", headers=customer.headers)
    (item,) = json_of(client.get("/api/v1/orders", headers=customer.headers))["items"]
    assert (item["id"], item["state"], item["lines"]) == (order["id"], "cancelled", order["lines"])


def test_a_forged_cursor_is_400_and_limits_are_checked(
    client: FlaskClient, customer: Account
) -> None:
    forged = client.get("/api/v1/orders?cursor=garbage", headers=customer.headers)
    assert forged.status_code == 400
    assert json_of(forged)["type"] == "urn:flotilla:problem:invalid-cursor"
    assert client.get("/api/v1/orders?limit=101", headers=customer.headers).status_code == 422
