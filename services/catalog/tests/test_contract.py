"""Property-based tests generated from the OpenAPI document (schemathesis).

Every operation is called with inputs generated from its schema — valid ones and ones that
break it — and must answer without a server error, with a status its document declares and
a body matching the declared schema (:func:`flotilla.testing.contract.check_contract`).
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from schemathesis import GenerationMode

from flotilla.testing.contract import MODES, check_contract

from .conftest import ADMIN, ORDERS, product_body


@pytest.mark.parametrize("mode", MODES)
def test_no_input_breaks_the_service_or_its_contract(app: Flask, mode: GenerationMode) -> None:
    seed(app.test_client())
    # As an administrator, so protected operations run their logic instead of stopping at 401.
    check_contract(app, mode, headers=ADMIN)


def seed(client: FlaskClient) -> None:
    """Products with small ids (generated ids hit them) and a reservation on the first."""
    for index in range(3):
        body = product_body(f"SEED-{index}", stock=1000)
        assert client.post("/api/v1/products", json=body, headers=ADMIN).status_code == 201
    reservation = {"order_id": 1, "lines": [{"product_id": 1, "quantity": 1}]}
    assert client.post("/api/v1/reservations", json=reservation, headers=ORDERS).status_code == 201
