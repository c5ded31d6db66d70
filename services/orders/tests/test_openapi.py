"""The OpenAPI document describes every endpoint, the Idempotency-Key and the error answers."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient


def spec(client: FlaskClient) -> dict[str, Any]:
    """The service's OpenAPI document."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json or {}
    return document


def test_every_orders_operation_is_documented(client: FlaskClient) -> None:
    paths = spec(client)["paths"]
    assert set(paths["/api/v1/orders"]) >= {"get", "post"}
    assert "get" in paths["/api/v1/orders/{order_id}"]
    assert "post" in paths["/api/v1/orders/{order_id}/cancel"]


def test_placing_documents_its_key_and_outcomes(client: FlaskClient) -> None:
    place = spec(client)["paths"]["/api/v1/orders"]["post"]
    headers = [item["name"] for item in place["parameters"] if item["in"] == "header"]
    assert headers == ["Idempotency-Key"]
    assert {"201", "400", "401", "409", "422", "502", "503", "504"} <= set(place["responses"])


def test_an_order_line_has_no_price_a_client_could_set(client: FlaskClient) -> None:
    schemas = spec(client)["components"]["schemas"]
    assert set(schemas["OrderLineCreate"]["properties"]) == {"product_id", "quantity"}
    assert set(schemas["OrderCreate"]["properties"]) == {"lines"}


def test_cancelling_documents_what_a_failed_cancel_leaves(client: FlaskClient) -> None:
    document = spec(client)
    cancel = document["paths"]["/api/v1/orders/{order_id}/cancel"]["post"]
    for status in ("502", "503", "504"):
        description = cancel["responses"][status]["description"]
        assert "cancelling" in description
        assert "nothing changed" not in description
    state = document["components"]["schemas"]["OrderPublic"]["properties"]["state"]
    assert state["enum"] == ["placed", "cancelling", "cancelled"]


def test_an_order_shows_its_history_and_the_list_may_name_a_customer(client: FlaskClient) -> None:
    document = spec(client)
    schemas = document["components"]["schemas"]
    assert "no cancelling entry" in schemas["OrderPublic"]["properties"]["history"]["description"]
    entry = schemas["HistoryEntryPublic"]["properties"]
    assert set(entry) == {"state", "at"}
    assert entry["state"]["enum"] == ["pending", "placed", "cancelling", "cancelled"]
    listing = document["paths"]["/api/v1/orders"]["get"]
    (customer,) = [item for item in listing["parameters"] if item["name"] == "customer"]
    assert (customer["in"], customer["required"]) == ("query", False)
    assert customer["schema"]["minimum"] == 1
    assert "Administrators only" in customer["description"]
    assert {"200", "401", "403", "422"} <= set(listing["responses"])
