"""Property-based contract tests from a service's own OpenAPI document (schemathesis).

:func:`check_contract` calls every operation with inputs generated from its schema — valid
ones, or ones that break it — and fails when an answer is a server error, has a status the
document does not declare, or a body that does not match the declared schema.

Imported from here, not re-exported by :mod:`flotilla.testing`, so schemathesis (a test
dependency) is loaded only by the tests that use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
"""Parametrise the contract test over both: valid inputs, and inputs that break the schema."""


def operations(app: Flask) -> list[Any]:
    """Every operation of ``app``'s OpenAPI document; fails if the document is invalid."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    found = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself must be valid
        found.append(result.ok())
    return found


def check_contract(
    app: Flask,
    mode: GenerationMode,
    *,
    headers: Mapping[str, str] | None = None,
    max_examples: int = 30,
) -> None:
    """Call each operation ``max_examples`` times with generated input and check the answers.

    ``headers`` go with every call: an administrator's token lets protected operations run
    their logic instead of stopping at 401.
    """
    for operation in operations(app):
        if mode is GenerationMode.NEGATIVE and not has_inputs(operation):
            continue  # nothing to break: no parameters, no body

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            case.call_and_validate(headers=dict(headers or {}), checks=CHECKS)

        call()


def has_inputs(operation: Any) -> bool:
    """True when the operation takes a parameter or a body that invalid data can fill."""
    return bool(list(operation.iter_parameters()) or list(operation.body))
