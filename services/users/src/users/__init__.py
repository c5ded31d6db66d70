"""The users service: registration and public profiles."""

from __future__ import annotations

from flask import Flask

from flotilla import create_service, load_settings, register_blueprints
from users.api import blp
from users.config import UsersSettings
from users.models import db
from users.passwords import make_hasher

__version__ = "0.1.0"


def create_app(settings: UsersSettings | None = None) -> Flask:
    """Build the users app from ``settings``, or from the environment."""
    settings = settings or load_settings(UsersSettings)
    app = create_service(__name__, settings, version=__version__)
    db.init_app(app, settings)
    app.extensions["users.password_hasher"] = make_hasher(settings)
    register_blueprints(app, blp)
    return app
