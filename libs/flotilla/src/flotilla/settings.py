"""Typed access to a service's settings, wherever the app is at hand.

:func:`flotilla.create_service` keeps the settings it was given on the app; this module is the
only one that knows where. A service asks for its own settings class and gets it typed, with
no string key and no hand-written accessor::

    settings = current_settings(OrdersSettings)
    settings.REQUEST_DEADLINE

The class is not checked at run time, so the accessor costs one dictionary lookup as a direct
read would: ask for the class the service was created with (or one of its bases).
"""

from __future__ import annotations

from typing import TypeVar

from flask import Flask, current_app

from flotilla.config import ServiceSettings

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)

_EXTENSION_KEY = "flotilla.settings"


def keep_settings(app: Flask, settings: ServiceSettings) -> None:
    """Keep ``settings`` on ``app`` for :func:`settings_of` and :func:`current_settings`."""
    app.extensions[_EXTENSION_KEY] = settings


def settings_of(app: Flask, kind: type[SettingsT]) -> SettingsT:
    """The settings ``app`` was created with, as ``kind``."""
    settings: SettingsT = app.extensions[_EXTENSION_KEY]
    return settings


def current_settings(kind: type[SettingsT]) -> SettingsT:
    """The settings of the current app, as ``kind``; only inside an app context."""
    settings: SettingsT = current_app.extensions[_EXTENSION_KEY]
    return settings
