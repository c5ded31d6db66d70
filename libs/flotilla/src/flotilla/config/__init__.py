"""Typed service settings, read from the environment and nowhere else.

Every setting is declared once, with a type, a default and a one-line description. The same
declarations drive validation at start-up, the configuration table in the README and the
consistency checks in the test suite, so documentation cannot drift from code.

Services subclass :class:`ServiceSettings` to add their own settings.
"""

from flotilla.config.auth import AuthSettings
from flotilla.config.granian import GranianSettings, ServeSettings, WebServer
from flotilla.config.gunicorn import GunicornSettings, available_cpus
from flotilla.config.http import HttpClientSettings
from flotilla.config.loading import (
    EXIT_CONFIGURATION,
    ConfigurationError,
    load_dotenv,
    load_settings,
    settings_table,
)
from flotilla.config.messaging import MessagingSettings
from flotilla.config.observability import ObservabilitySettings
from flotilla.config.service import (
    DATABASE_SCHEMES,
    PLACEHOLDER_SECRETS,
    Environment,
    LogLevel,
    ServiceSettings,
    comma_separated,
)

__all__ = [
    "DATABASE_SCHEMES",
    "EXIT_CONFIGURATION",
    "PLACEHOLDER_SECRETS",
    "AuthSettings",
    "ConfigurationError",
    "Environment",
    "GranianSettings",
    "GunicornSettings",
    "HttpClientSettings",
    "LogLevel",
    "MessagingSettings",
    "ObservabilitySettings",
    "ServeSettings",
    "ServiceSettings",
    "WebServer",
    "available_cpus",
    "comma_separated",
    "load_dotenv",
    "load_settings",
    "settings_table",
]
