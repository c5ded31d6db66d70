"""Property-based tests generated from the OpenAPI document (schemathesis).

Every operation is called with inputs generated from its schema — valid ones and ones that
break it — and must answer without a server error, with a status its document declares and
a body matching the declared schema (:func:`flotilla.testing.contract.check_contract`).
"""

from __future__ import annotations

import pytest
from flask import Flask
from schemathesis import GenerationMode

from flotilla.testing.contract import MODES, check_contract

from .conftest import Account, ProductFactory


@pytest.mark.parametrize("mode", MODES)
def test_no_input_breaks_the_service_or_its_contract(
    app: Flask, mode: GenerationMode, admin: Account, make_product: ProductFactory
) -> None:
    # Products 1 and 2 exist, so generated orders sometimes get placed, listed, cancelled.
    make_product("MUG-1", stock=1000)
    make_product("TEA-1", stock=1000)
    check_contract(app, mode, headers=admin.headers)
