"""The notifications service: e-mail from the shop's events, sent by a Celery worker.

Two processes run from this app: ``flask --app notifications tasks worker`` consumes the
events (see :mod:`notifications.handlers`), and ``gunicorn notifications.wsgi:app`` serves
its health probes and metrics; readiness fails when the database or, with ``BROKER_URL``
set, the broker cannot be reached.
"""

from __future__ import annotations

from flask import Flask

from flotilla import broker_check, create_service, health_of, load_settings
from notifications.config import NotificationsSettings
from notifications.handlers import tasks
from notifications.models import db
from notifications.sender import mail_sender

__version__ = "0.1.0"


def create_app(settings: NotificationsSettings | None = None) -> Flask:
    """Build the notifications app from ``settings``, or from the environment."""
    settings = settings or load_settings(NotificationsSettings)
    app = create_service(__name__, settings, version=__version__)
    db.init_app(app, settings)
    tasks.init_app(app, settings)
    app.extensions["notifications.sender"] = mail_sender(settings)
    if settings.BROKER_URL:
        # The chassis reports the broker without failing readiness (a web service goes on
        # without it); a worker does nothing without it, so here it is critical.
        check = broker_check(settings.BROKER_URL, settings.HEALTH_CHECK_TIMEOUT)
        health = health_of(app)
        if health is None:
            raise RuntimeError("create_service installs health checks; this app has none")
        health.add_check("broker", check, critical=True)
    return app
