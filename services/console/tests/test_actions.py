"""Actions: create, read and list them; bad input is a 422 that stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from .conftest import CUSTOMER, create_body, json_of

PATH = "/api/v1/actions"
FIELDS = {"id", "name", "description", "created_at"}
PROBLEM = "application/problem+json"
Make = Callable[..., dict[str, Any]]


def stored(client: FlaskClient) -> list[dict[str, Any]]:
    """Every one of the actions (the tests store fewer than a page of 100)."""
    body = json_of(client.get(f"{PATH}?limit=100"))
    assert body["next_cursor"] is None
    items: list[dict[str, Any]] = body["items"]
    return items


def test_one_is_created_with_its_location(client: FlaskClient) -> None:
    body = create_body("First", description="The first one.")
    response = client.post(PATH, json=body, headers=CUSTOMER)
    assert response.status_code == 201, response.data
    created = json_of(response)
    assert set(created) == FIELDS
    assert response.headers["Location"] == f"{PATH}/{created['id']}"
    assert (created["name"], created["description"]) == ("First", "The first one.")
    assert datetime.fromisoformat(created["created_at"]).utcoffset() == timedelta(0)
    assert json_of(client.get(response.headers["Location"])) == created


def test_the_description_is_empty_unless_given(client: FlaskClient) -> None:
    response = client.post(PATH, json=create_body("Plain"), headers=CUSTOMER)
    assert json_of(response)["description"] == ""


def test_one_that_does_not_exist_is_a_404_problem(client: FlaskClient) -> None:
    response = client.get(f"{PATH}/999")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM
    assert json_of(response)["type"] == "urn:flotilla:problem:action-not-found"


def test_a_taken_name_is_a_409_problem_and_nothing_more_is_stored(
    client: FlaskClient, make_action: Make
) -> None:
    first = make_action("First")
    response = client.post(PATH, json=create_body("First"), headers=CUSTOMER)
    assert response.status_code == 409
    assert response.mimetype == PROBLEM
    assert json_of(response)["type"] == "urn:flotilla:problem:name-taken"
    assert stored(client) == [first]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}],
    ids=["no token", "bad token"],
)
def test_creating_needs_a_signed_in_caller(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.post(PATH, json=create_body(), headers=headers)
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    assert stored(client) == []


INVALID_CREATES: dict[str, dict[str, Any]] = {
    "no name": {"name": None},
    "empty name": {"name": ""},
    "blank name": {"name": " \t"},
    "name too long": {"name": "n" * 201},
    "name not a string": {"name": 5},
    "description too long": {"description": "d" * 2001},
    "description not a string": {"description": ["d"]},
    "unknown field": {"id": 5},
}


@pytest.mark.parametrize("case", INVALID_CREATES)
def test_invalid_input_is_a_422_problem_and_nothing_is_stored(
    client: FlaskClient, case: str
) -> None:
    body = create_body()
    for field, value in INVALID_CREATES[case].items():
        if value is None:
            del body[field]
        else:
            body[field] = value
    response = client.post(PATH, json=body, headers=CUSTOMER)
    assert response.status_code == 422, response.data
    assert response.mimetype == PROBLEM
    assert json_of(response)["errors"]
    assert stored(client) == []


def test_pages_cover_every_one_once_in_order(
    client: FlaskClient,
    make_action: Make,
) -> None:
    created = [make_action(f"Number {index}")["id"] for index in range(5)]
    seen: list[int] = []
    cursor: str | None = None
    for _page in range(5):
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = json_of(client.get(f"{PATH}{query}"))
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == created


def test_reading_needs_no_token(client: FlaskClient, make_action: Make) -> None:
    created = make_action()
    assert json_of(client.get(PATH))["items"] == [created]
    assert json_of(client.get(f"{PATH}/{created['id']}")) == created


def test_a_cursor_the_service_did_not_issue_is_a_400_problem(client: FlaskClient) -> None:
    response = client.get(f"{PATH}?cursor=not-a-cursor")
    assert response.status_code == 400
    assert json_of(response)["type"] == "urn:flotilla:problem:invalid-cursor"
