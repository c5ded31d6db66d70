"""The orders service: places, reads and cancels orders, calling users and catalog."""

from __future__ import annotations

from flask import Flask

from flotilla import (
    ClientCredentials,
    ServiceClient,
    create_service,
    load_settings,
    register_blueprints,
)
from orders.api import orders
from orders.cli import orders_cli
from orders.clients import CATALOG, USERS, CatalogClient, UsersClient
from orders.config import OrdersSettings
from orders.models import db, outbox

__version__ = "0.1.0"


def create_app(settings: OrdersSettings | None = None) -> Flask:
    """Build the orders app from ``settings``, or from the environment."""
    settings = settings or load_settings(OrdersSettings)
    app = create_service(__name__, settings, version=__version__)
    db.init_app(app, settings)
    outbox.init_app(app, settings)  # `flask outbox relay` publishes order events
    # One client per peer and app: its connection pool and breaker serve every request.
    # users is asked with the customer's token; catalog's reservations take orders' own.
    users_http = ServiceClient.from_settings(USERS, settings.USERS_URL, settings)
    catalog_http = ServiceClient.from_settings(
        CATALOG,
        settings.CATALOG_URL,
        settings,
        credentials=ClientCredentials.from_settings(settings),
    )
    app.extensions["orders.users"] = UsersClient(users_http)
    app.extensions["orders.catalog"] = CatalogClient(catalog_http)
    register_blueprints(app, orders)
    app.cli.add_command(orders_cli)
    return app
