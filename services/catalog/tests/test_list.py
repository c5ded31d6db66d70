"""GET /api/v1/products: keyset pages in id order, active or deactivated, filtered by ``q``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from .conftest import ADMIN, json_of

MakeProduct = Callable[..., dict[str, Any]]


def skus(client: FlaskClient, query: str = "") -> list[str]:
    """The SKUs of the first page of the list with ``query``."""
    response = client.get(f"/api/v1/products?limit=100{query}")
    assert response.status_code == 200, response.data
    return [item["sku"] for item in json_of(response)["items"]]


def test_pages_cover_every_product_once_in_order(
    client: FlaskClient, make_product: MakeProduct
) -> None:
    created = [make_product(f"SKU-{index:02}")["sku"] for index in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    for _page in range(10):
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = json_of(client.get(f"/api/v1/products{query}"))
        assert len(body["items"]) <= 3
        seen += [item["sku"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == created


def test_a_page_that_fits_has_no_next_cursor(
    client: FlaskClient, make_product: MakeProduct
) -> None:
    make_product("ONLY")
    body = json_of(client.get("/api/v1/products?limit=1"))
    assert [item["sku"] for item in body["items"]] == ["ONLY"]
    assert body["next_cursor"] is None


def test_the_list_needs_no_token_and_shows_active_products_by_default(
    client: FlaskClient, make_product: MakeProduct
) -> None:
    on_sale, retired = make_product("ON-SALE"), make_product("RETIRED")
    client.delete(f"/api/v1/products/{retired['id']}", headers=ADMIN)
    assert skus(client) == [on_sale["sku"]]
    assert skus(client, "&active=true") == ["ON-SALE"]
    assert skus(client, "&active=false") == ["RETIRED"]


def test_q_matches_part_of_the_name_or_sku_in_any_case(
    client: FlaskClient, make_product: MakeProduct
) -> None:
    make_product("MUG-1", name="Blue Mug")
    make_product("TEA-1", name="Earl Grey")
    make_product("TEA-2", name="Green tea, 100% leaf")
    assert skus(client, "&q=mug") == ["MUG-1"]
    assert skus(client, "&q=GREY") == ["TEA-1"]
    assert skus(client, "&q=tea") == ["TEA-1", "TEA-2"]
    assert skus(client, "&q=a-1") == ["TEA-1"]
    assert skus(client, "&q=nothing") == []


def test_q_treats_wildcards_as_text(client: FlaskClient, make_product: MakeProduct) -> None:
    make_product("TEA_2", name="Green tea, 100% leaf")
    make_product("TEAX2", name="Black tea")
    assert skus(client, "&q=100%25") == ["TEA_2"]
    assert skus(client, "&q=_") == ["TEA_2"]
    assert skus(client, "&q=%25") == ["TEA_2"]


def test_filters_and_pages_combine(client: FlaskClient, make_product: MakeProduct) -> None:
    for index in range(5):
        make_product(f"TEA-{index}")
        make_product(f"MUG-{index}")
    first = json_of(client.get("/api/v1/products?q=tea&limit=3"))
    second = json_of(client.get(f"/api/v1/products?q=tea&limit=3&cursor={first['next_cursor']}"))
    names = [item["sku"] for item in first["items"] + second["items"]]
    assert names == [f"TEA-{index}" for index in range(5)]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("active=maybe", "active"),
        (f"q={'x' * 101}", "q"),
    ],
)
def test_invalid_queries_are_422(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/api/v1/products?{query}")
    assert response.status_code == 422
    assert json_of(response)["errors"][0]["field"] == field


def test_a_forged_cursor_is_400(client: FlaskClient) -> None:
    response = client.get("/api/v1/products?cursor=garbage")
    assert response.status_code == 400
    assert json_of(response)["type"] == "urn:flotilla:problem:invalid-cursor"
