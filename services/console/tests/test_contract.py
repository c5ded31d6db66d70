"""The service against its own OpenAPI document, as an outside tester checks it.

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

from .conftest import ADMIN, create_body


@pytest.mark.parametrize("signed_in", [True, False], ids=["admin", "anonymous"])
def test_no_input_breaks_the_service_or_its_contract(app: Flask, signed_in: bool) -> None:
    seed(app.test_client())
    # Signed in, protected operations run their logic instead of stopping at 401.
    check_contract(app, headers=ADMIN if signed_in else None)


def test_hostile_inputs_are_refused_as_problems(app: Flask) -> None:
    seed(app.test_client())
    check_hostile_inputs(app, headers=ADMIN)


def seed(client: FlaskClient) -> None:
    """Actions with small ids, so that generated ids find some."""
    for index in range(3):
        body = create_body(f"Seed {index}")
        response = client.post("/api/v1/actions", json=body, headers=ADMIN)
        assert response.status_code == 201, response.data
