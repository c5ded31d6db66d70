"""The users service against its own OpenAPI document, as an outside tester checks it.

schemathesis runs every phase and every check (:func:`flotilla.testing.contract.check_contract`)
as an administrator and as an anonymous caller; then every route gets the inputs schemathesis
does not generate — deep nesting, lone surrogates, bytes that are not UTF-8 — and must refuse
them as a 4xx problem (:func:`flotilla.testing.contract.check_hostile_inputs`).
"""

from __future__ import annotations

import pytest
from flask import Flask

from flotilla.testing.contract import check_contract, check_hostile_inputs

from .conftest import Account


@pytest.mark.parametrize("signed_in", [True, False], ids=["admin", "anonymous"])
def test_no_input_breaks_the_service_or_its_contract(
    app: Flask, admin: Account, signed_in: bool
) -> None:
    # As an administrator, protected operations run their logic instead of stopping at 401.
    check_contract(app, headers=admin.headers if signed_in else None)


def test_hostile_inputs_are_refused_as_problems(app: Flask, admin: Account) -> None:
    check_hostile_inputs(app, headers=admin.headers)
