"""The console service: actions, each with a name no other has."""

from __future__ import annotations

from flask import Flask

from console.api import actions
from console.config import ConsoleSettings
from console.models import db
from flotilla import create_service, load_settings, register_blueprints

__version__ = "0.1.0"


def create_app(settings: ConsoleSettings | None = None) -> Flask:
    """Build the console app from ``settings``, or from the environment."""
    settings = settings or load_settings(ConsoleSettings)
    app = create_service(__name__, settings, version=__version__)
    db.init_app(app, settings)
    register_blueprints(app, actions)
    return app
