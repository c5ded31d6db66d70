"""The catalog service against its own OpenAPI document, as an outside tester checks it.

schemathesis runs every phase and every check (:func:`flotilla.testing.contract.check_contract`)
as an administrator and as an anonymous caller; then every route gets the inputs schemathesis
does not generate — deep nesting, lone surrogates, bytes that are not UTF-8 — and must refuse
them as a 4xx problem (:func:`flotilla.testing.contract.check_hostile_inputs`).
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flotilla.testing.contract import check_contract, check_hostile_inputs

from .conftest import ADMIN, ORDERS, product_body


@pytest.mark.parametrize("signed_in", [True, False], ids=["admin", "anonymous"])
def test_no_input_breaks_the_service_or_its_contract(app: Flask, signed_in: bool) -> None:
    seed(app.test_client())
    # As an administrator, protected operations run their logic instead of stopping at 401.
    check_contract(
        app,
        headers=ADMIN if signed_in else None,
        # Reserving products that do not exist, or other lines for the same order.
        refusals_by_state={"product-unavailable", "reservation-mismatch", "currency-mismatch"},
        waived_checks={"use_after_free": "DELETE deactivates: the product stays readable"},
    )


def test_hostile_inputs_are_refused_as_problems(app: Flask) -> None:
    seed(app.test_client())
    check_hostile_inputs(app, headers=ADMIN)


def seed(client: FlaskClient) -> None:
    """Products with small ids (generated ids hit them) and a reservation on the first."""
    for index in range(3):
        body = product_body(f"SEED-{index}", stock=1000)
        assert client.post("/api/v1/products", json=body, headers=ADMIN).status_code == 201
    reservation = {"order_id": 1, "lines": [{"product_id": 1, "quantity": 1}]}
    assert client.post("/api/v1/reservations", json=reservation, headers=ORDERS).status_code == 201
