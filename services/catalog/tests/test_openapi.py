"""The OpenAPI document describes every endpoint, its inputs and its outcomes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from .conftest import ADMIN


def spec(client: FlaskClient) -> dict[str, Any]:
    """The service's OpenAPI document."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json or {}
    return document


def test_product_writes_document_who_may_call_them(client: FlaskClient) -> None:
    paths = spec(client)["paths"]
    create = paths["/api/v1/products"]["post"]
    assert {"201", "401", "403", "409", "422"} <= set(create["responses"])
    assert create["security"] == [{"bearerAuth": []}]
    for method in ("patch", "delete"):
        operation = paths["/api/v1/products/{product_id}"][method]
        assert {"401", "403", "404"} <= set(operation["responses"])


def test_product_reads_need_no_token(client: FlaskClient) -> None:
    paths = spec(client)["paths"]
    reads = [
        paths["/api/v1/products"]["get"],
        paths["/api/v1/products/{product_id}"]["get"],
        paths["/api/v1/products/by-sku/{sku}"]["get"],
    ]
    assert all("security" not in operation for operation in reads)


def test_reservations_declare_the_bearer_token_and_its_refusals(client: FlaskClient) -> None:
    paths = spec(client)["paths"]
    operations = [
        *paths["/api/v1/reservations/{order_id}"].values(),
        *paths["/api/v1/reservations"].values(),
    ]
    for operation in (operation for operation in operations if "responses" in operation):
        assert operation["security"] == [{"bearerAuth": []}]
        assert {"401", "403"} <= set(operation["responses"])


def test_a_reservation_documents_first_time_repeat_and_refusals(client: FlaskClient) -> None:
    reserve = spec(client)["paths"]["/api/v1/reservations"]["post"]
    assert {"200", "201", "409", "422"} <= set(reserve["responses"])
    body = reserve["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/ReservationCreate")


def test_the_public_product_has_every_field(client: FlaskClient) -> None:
    public = spec(client)["components"]["schemas"]["ProductPublic"]["properties"]
    assert set(public) == {
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


@pytest.mark.parametrize("name", [" ", "\u0085", "\u3000\t"])
def test_a_blank_name_is_refused_as_the_document_says(
    client: FlaskClient, make_product: Callable[..., dict[str, Any]], name: str
) -> None:
    # The document's pattern promises what is accepted: a name of white space alone (as
    # Python counts it, NEL and ideographic space included) is outside it, and refused.
    schemas = spec(client)["components"]["schemas"]
    names = [schema["properties"].get("name", {}) for schema in schemas.values()]
    patterns = {name["pattern"] for name in names if name and not name.get("readOnly")}
    assert patterns
    assert all(re.search(pattern, name) is None for pattern in patterns)
    path = f"/api/v1/products/{make_product('MUG-1')['id']}"
    response = client.patch(path, json={"name": name}, headers=ADMIN)
    assert response.status_code == 422
