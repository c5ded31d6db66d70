"""The console service: the operators' pages in a browser, over the other services' APIs."""

from __future__ import annotations

from flask import Flask, g

from console import sessions
from console.assets import asset_url, assets
from console.backends import CATALOG, ORDERS, USERS, Backends
from console.config import ConsoleSettings
from console.errors import init_errors
from console.models import db
from console.security import init_security
from console.views import console
from flotilla import ServiceClient, create_service, format_money, load_settings

__version__ = "0.1.0"


def create_app(settings: ConsoleSettings | None = None) -> Flask:
    """Build the console app from ``settings``, or from the environment."""
    settings = settings or load_settings(ConsoleSettings)
    app = create_service(__name__, settings, version=__version__)
    db.init_app(app, settings)
    sessions.init_sessions(app, settings)
    init_security(app, settings)
    init_errors(app)
    app.extensions["console.backends"] = Backends(
        users=ServiceClient.from_settings(USERS, settings.USERS_URL, settings),
        catalog=ServiceClient.from_settings(CATALOG, settings.CATALOG_URL, settings),
        orders=ServiceClient.from_settings(ORDERS, settings.ORDERS_URL, settings),
    )
    app.register_blueprint(console)
    app.register_blueprint(assets)
    app.jinja_env.globals.update(asset_url=asset_url, administrator=lambda: g.get("administrator"))
    app.jinja_env.filters["money"] = _money
    return app


def _money(amount: object, currency: object) -> str:
    """``{{ total | money(currency) }}``: minor units shown as the currency writes them."""
    if isinstance(amount, int) and isinstance(currency, str):
        return format_money(amount, currency)
    return "—"  # a pending order has no total yet
