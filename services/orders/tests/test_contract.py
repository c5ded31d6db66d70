"""Property-based tests generated from the OpenAPI document (schemathesis).

Every operation is called with inputs generated from its schema — valid ones and ones that
break it — and must answer without a server error, with a status its document declares and
a body matching the declared schema. The orders app calls its real peers while it runs.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import Account, ProductFactory

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def operations(app: Flask) -> list[Any]:
    """Every operation of the orders service's OpenAPI document."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    found = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself must be valid
        found.append(result.ok())
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_breaks_the_service_or_its_contract(
    app: Flask, mode: GenerationMode, admin: Account, make_product: ProductFactory
) -> None:
    # Products 1 and 2 exist, so generated orders sometimes get placed, listed, cancelled.
    make_product("MUG-1", stock=1000)
    make_product("TEA-1", stock=1000)
    for operation in operations(app):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            case.call_and_validate(headers=admin.headers, checks=CHECKS)

        if mode is GenerationMode.NEGATIVE and not has_inputs(operation):
            continue  # nothing to break: no parameters, no body
        call()


def has_inputs(operation: Any) -> bool:
    """True when the operation takes a parameter or a body that invalid data can fill."""
    return bool(list(operation.iter_parameters()) or list(operation.body))
