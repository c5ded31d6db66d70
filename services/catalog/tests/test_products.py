"""Products: create, change, deactivate and read them; bad input is a 422 that changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from .conftest import ADMIN, json_of, product_body

FIELDS = {
    "id",
    "sku",
    "name",
    "description",
    "price",
    "currency",
    "stock",
    "active",
    "created_at",
    "updated_at",
}
MakeProduct = Callable[..., dict[str, Any]]


def products_in_database(client: FlaskClient) -> list[dict[str, Any]]:
    """Every product, active or not."""
    found = []
    for active in ("true", "false"):
        found += json_of(client.get(f"/api/v1/products?limit=100&active={active}"))["items"]
    return found


def test_a_product_is_created_with_its_location(client: FlaskClient) -> None:
    body = product_body("mug-1", description="Holds tea.", stock=7)
    response = client.post("/api/v1/products", json=body, headers=ADMIN)
    assert response.status_code == 201
    created = json_of(response)
    assert set(created) == FIELDS
    assert response.headers["Location"] == f"/api/v1/products/{created['id']}"
    assert created["sku"] == "MUG-1"  # stored upper-case
    assert (created["price"], created["currency"], created["stock"]) == (1250, "EUR", 7)
    assert created["active"] is True
    assert created["description"] == "Holds tea."
    assert json_of(client.get(response.headers["Location"])) == created


def test_defaults_are_no_description_no_stock_and_active(client: FlaskClient) -> None:
    created = json_of(client.post("/api/v1/products", json=product_body(), headers=ADMIN))
    assert (created["description"], created["stock"], created["active"]) == ("", 0, True)


def test_a_sku_is_taken_whatever_its_case(client: FlaskClient, make_product: MakeProduct) -> None:
    make_product("MUG-1")
    response = client.post("/api/v1/products", json=product_body("mug-1"), headers=ADMIN)
    assert response.status_code == 409
    assert json_of(response)["type"] == "urn:flotilla:problem:sku-taken"
    assert len(products_in_database(client)) == 1


INVALID_CREATES: dict[str, dict[str, Any]] = {
    "no sku": {"sku": None},
    "sku with a space": {"sku": "MUG 1"},
    "sku starting with a dot": {"sku": ".MUG"},
    "sku too long": {"sku": "A" * 65},
    "sku with a newline": {"sku": "MUG\n"},
    "empty name": {"name": ""},
    "blank name": {"name": "   "},
    "name too long": {"name": "n" * 201},
    "description too long": {"description": "d" * 2001},
    "negative price": {"price": -1},
    "price as a string": {"price": "12.50"},
    "price as a float": {"price": 12.5},
    "price as a boolean": {"price": True},
    "price too large": {"price": 10**10 + 1},
    "lower-case currency": {"currency": "eur"},
    "currency too long": {"currency": "EURO"},
    "negative stock": {"stock": -1},
    "stock as a float": {"stock": 1.0},
    "active as a string": {"active": "yes"},
    "unknown field": {"id": 5},
    "NUL in the name": {"name": "Mu\x00g"},
}


@pytest.mark.parametrize("case", INVALID_CREATES)
def test_an_invalid_product_is_422_and_nothing_is_created(client: FlaskClient, case: str) -> None:
    body = product_body()
    for field, value in INVALID_CREATES[case].items():
        if value is None:
            del body[field]
        else:
            body[field] = value
    response = client.post("/api/v1/products", json=body, headers=ADMIN)
    assert response.status_code == 422, response.data
    assert json_of(response)["errors"]
    assert products_in_database(client) == []


def test_a_patch_changes_only_the_fields_given(
    client: FlaskClient, make_product: MakeProduct
) -> None:
    product = make_product(stock=3)
    changes = {"name": "Big mug", "price": 1500, "currency": "USD", "stock": 9}
    response = client.patch(f"/api/v1/products/{product['id']}", json=changes, headers=ADMIN)
    assert response.status_code == 200
    changed = json_of(response)
    assert {name: changed[name] for name in changes} == changes
    assert changed["description"] == product["description"]
    assert changed["sku"] == product["sku"]
    assert changed["updated_at"] > product["updated_at"]
    assert changed["created_at"] == product["created_at"]
    assert json_of(client.get(f"/api/v1/products/{product['id']}")) == changed


@pytest.mark.parametrize(
    "changes",
    [{"sku": "OTHER"}, {"id": 9}, {"price": -5}, {"stock": "many"}, {"name": ""}, {"active": 1.5}],
)
def test_an_invalid_patch_is_422_and_changes_nothing(
    client: FlaskClient, make_product: MakeProduct, changes: dict[str, Any]
) -> None:
    product = make_product()
    response = client.patch(
        f"/api/v1/products/{product['id']}", json={"name": "Renamed", **changes}, headers=ADMIN
    )
    assert response.status_code == 422
    assert json_of(client.get(f"/api/v1/products/{product['id']}")) == product


def test_patching_an_absent_product_is_404(client: FlaskClient) -> None:
    response = client.patch("/api/v1/products/4242", json={"name": "X"}, headers=ADMIN)
    assert response.status_code == 404
    assert json_of(response)["type"] == "urn:flotilla:problem:product-not-found"


def test_delete_deactivates_and_is_idempotent(
    client: FlaskClient, make_product: MakeProduct
) -> None:
    product = make_product()
    for _ in range(2):
        response = client.delete(f"/api/v1/products/{product['id']}", headers=ADMIN)
        assert response.status_code == 204
        assert response.data == b""
    after = json_of(client.get(f"/api/v1/products/{product['id']}"))
    assert after["active"] is False
    assert json_of(client.get("/api/v1/products"))["items"] == []


def test_a_deactivated_product_can_be_put_back_on_sale(
    client: FlaskClient, make_product: MakeProduct
) -> None:
    product = make_product()
    client.delete(f"/api/v1/products/{product['id']}", headers=ADMIN)
    response = client.patch(
        f"/api/v1/products/{product['id']}", json={"active": True}, headers=ADMIN
    )
    assert json_of(response)["active"] is True


def test_deleting_an_absent_product_is_404(client: FlaskClient) -> None:
    response = client.delete("/api/v1/products/4242", headers=ADMIN)
    assert response.status_code == 404
    assert json_of(response)["type"] == "urn:flotilla:problem:product-not-found"


def test_a_product_is_read_by_sku_in_any_case(
    client: FlaskClient, make_product: MakeProduct
) -> None:
    product = make_product("TEA_GREEN.1")
    for sku in ("TEA_GREEN.1", "tea_green.1", "Tea_Green.1"):
        assert json_of(client.get(f"/api/v1/products/by-sku/{sku}")) == product


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/products/4242",
        "/api/v1/products/by-sku/NOPE",
        "/api/v1/products/by-sku/%20bad%20sku",
    ],
)
def test_an_absent_product_is_a_404_problem(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert json_of(response)["type"] == "urn:flotilla:problem:product-not-found"


def test_ids_beyond_bigint_and_skus_beyond_64_characters_are_404_not_500(
    client: FlaskClient,
) -> None:
    for path in ("99999999999999999999", "-1", f"by-sku/{'A' * 65}"):
        assert client.get(f"/api/v1/products/{path}").status_code == 404
