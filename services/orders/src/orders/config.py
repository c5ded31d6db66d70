"""Settings of the orders service: the chassis settings plus its peers and its time limits."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from flotilla import ServiceSettings


class OrdersSettings(ServiceSettings):
    """Environment variables read by the orders service."""

    SERVICE_NAME: str = Field("orders", description="Name used in logs, metrics and the API title.")
    USERS_URL: str = Field(
        "http://127.0.0.1:8001",
        description="Base URL of the users service, asked for the customer placing an order.",
    )
    CATALOG_URL: str = Field(
        "http://127.0.0.1:8002",
        description="Base URL of the catalog service, which prices orders and reserves stock.",
    )
    SERVICE_TOKEN_URL: str = Field(
        "http://127.0.0.1:8001/api/v1/service-tokens",
        description="users' token endpoint, where orders gets the token of its own that "
        "catalog's reservations require.",
    )
    PENDING_ORDER_TIMEOUT: int = Field(
        60,
        ge=1,
        description="Seconds before `orders recover` releases and deletes an order left pending, "
        "or finishes a cancel left cancelling; must exceed any request deadline.",
    )
    RESERVATION_RECONCILE_WINDOW: int = Field(
        86_400,
        ge=60,
        description="Seconds back (before PENDING_ORDER_TIMEOUT) `orders recover` looks for "
        "stock catalog holds for orders that do not exist, and releases it.",
    )
    IDEMPOTENCY_KEY_RETENTION: int = Field(
        86_400,
        ge=60,
        description="Seconds an Idempotency-Key of a placed order is remembered for replays.",
    )

    @model_validator(mode="after")
    def _pending_outlives_requests(self) -> Self:
        # Recovery must never release the reservation of an order whose request still runs.
        if self.PENDING_ORDER_TIMEOUT <= self.REQUEST_DEADLINE:
            raise ValueError("PENDING_ORDER_TIMEOUT must exceed REQUEST_DEADLINE")
        return self
