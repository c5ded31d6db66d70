"""The catalog service: products, prices and stock, and the stock reserved for orders."""

from __future__ import annotations

from flask import Flask

from catalog.api import products, reservations
from catalog.config import CatalogSettings
from catalog.models import db
from catalog.service import product_cache
from flotilla import create_service, load_settings, register_blueprints

__version__ = "0.1.0"


def create_app(settings: CatalogSettings | None = None) -> Flask:
    """Build the catalog app from ``settings``, or from the environment."""
    settings = settings or load_settings(CatalogSettings)
    app = create_service(__name__, settings, version=__version__)
    db.init_app(app, settings)
    product_cache.init_app(app, settings)  # Redis with REDIS_URL, else per worker process
    register_blueprints(app, products, reservations)
    return app
