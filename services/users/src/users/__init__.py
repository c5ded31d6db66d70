"""The users service: accounts, logins and the keys that verify their tokens."""

from __future__ import annotations

from flask import Flask

from flotilla import Auth, create_service, load_settings, register_blueprints
from users.api import service_tokens, tokens, users, well_known
from users.cli import users_cli
from users.clients import client_registry
from users.config import UsersSettings
from users.keys import load_key_ring
from users.models import db, outbox
from users.passwords import Passwords

__version__ = "0.1.0"


def create_app(settings: UsersSettings | None = None) -> Flask:
    """Build the users app from ``settings``, or from the environment."""
    settings = settings or load_settings(UsersSettings)
    app = create_service(__name__, settings, version=__version__)
    db.init_app(app, settings)
    outbox.init_app(app, settings)  # `flask outbox relay` publishes what it holds
    key_ring = load_key_ring(settings)
    app.extensions["users.key_ring"] = key_ring
    app.extensions["users.passwords"] = Passwords(settings)
    app.extensions["users.clients"] = client_registry(settings)
    Auth(app, settings, keys=key_ring.key_source())  # the issuer verifies with its own keys
    register_blueprints(app, users, tokens, service_tokens, well_known)
    app.cli.add_command(users_cli)
    return app
