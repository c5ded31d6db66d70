"""The held reservations orders' recovery reconciles with its orders: by time window, paged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from .conftest import ORDERS, json_of, reserve


def held(client: FlaskClient, after_time: datetime, before_time: datetime, **page: int) -> Any:
    """The order ids ``GET /api/v1/reservations`` lists for the window and page."""
    query = {
        "reserved_after": after_time.isoformat(),
        "reserved_before": before_time.isoformat(),
        **page,
    }
    response = client.get("/api/v1/reservations", query_string=query, headers=ORDERS)
    assert response.status_code == 200, response.data
    return json_of(response)["order_ids"]


def test_held_reservations_are_listed_by_window_and_page_without_released_ones(
    client: FlaskClient, make_product: Callable[..., dict[str, Any]]
) -> None:
    mug = make_product("MUG-1", stock=10)
    start = datetime.now(UTC) - timedelta(seconds=1)
    for order_id in (5, 3, 9, 7):
        assert reserve(client, order_id, {mug["id"]: 1}).status_code == 201
    assert client.delete("/api/v1/reservations/7", headers=ORDERS).status_code == 204
    client.delete("/api/v1/reservations/11", headers=ORDERS)  # a tombstone holds nothing
    end = datetime.now(UTC) + timedelta(seconds=1)

    assert held(client, start, end) == [3, 5, 9]
    assert held(client, start, end, limit=2) == [3, 5]
    assert held(client, start, end, after=5, limit=2) == [9]
    assert held(client, end, end + timedelta(hours=1)) == []
    assert held(client, start - timedelta(hours=1), start) == []


def test_the_window_must_be_given(client: FlaskClient) -> None:
    response = client.get("/api/v1/reservations", headers=ORDERS)
    assert response.status_code == 422
