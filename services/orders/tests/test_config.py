"""Settings of the orders service and what start-up refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from orders.config import OrdersSettings


def test_the_defaults_point_at_the_local_peers(tmp_path: Path) -> None:
    settings = OrdersSettings(VAR_DIR=tmp_path)
    assert settings.SERVICE_NAME == "orders"
    assert (settings.USERS_URL, settings.CATALOG_URL) == (
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8002",
    )
    assert (settings.PENDING_ORDER_TIMEOUT, settings.IDEMPOTENCY_KEY_RETENTION) == (60, 86_400)


def test_every_setting_is_described() -> None:
    for name, field in OrdersSettings.model_fields.items():
        assert field.description, name


def test_a_pending_timeout_within_the_request_deadline_is_refused(tmp_path: Path) -> None:
    # Recovery would release the stock of orders whose requests may still place them.
    with pytest.raises(ValidationError, match="PENDING_ORDER_TIMEOUT must exceed REQUEST_DEADLINE"):
        OrdersSettings(VAR_DIR=tmp_path, PENDING_ORDER_TIMEOUT=10, REQUEST_DEADLINE=10)
    assert OrdersSettings(VAR_DIR=tmp_path, PENDING_ORDER_TIMEOUT=11, REQUEST_DEADLINE=10)


@pytest.mark.process
def test_a_placeholder_password_stops_start_up_with_one_line() -> None:
    database = "postgresql+psycopg://orders:changeme@db/orders"
    env = {**os.environ, "ENVIRONMENT": "production", "DATABASE_URL": database}
    result = subprocess.run(
        [sys.executable, "-c", "import orders.wsgi"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "configuration error: DATABASE_URL holds a placeholder password; set the real one"
    ]
