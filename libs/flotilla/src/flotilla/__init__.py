"""Flotilla: one call makes a Flask app a production-grade service.

The public API is re-exported here; everything else is an implementation detail.
``flotilla.tasks`` is imported on its own, so web workers do not pay for importing Celery.
"""

from flotilla.api import ServiceApi, register_blueprints
from flotilla.app import create_service
from flotilla.cache import Cache
from flotilla.config import ConfigurationError, Environment, ServiceSettings, load_settings
from flotilla.context import set_user_id
from flotilla.db import NAMING_CONVENTION, Database
from flotilla.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Problem,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from flotilla.guards import BodyGuards, accepts_any_body
from flotilla.health import Health, begin_shutdown
from flotilla.limits import Limits, RateLimitString, client_address, rate_limit
from flotilla.metrics import Metrics
from flotilla.outbox import Event, Outbox, ProcessedEvents  # flotilla.tasks: see the docstring
from flotilla.security import SecurityHeaders

__version__ = "0.1.0"

__all__ = [
    "NAMING_CONVENTION",
    "BadRequest",
    "BodyGuards",
    "Cache",
    "ConfigurationError",
    "Conflict",
    "Database",
    "Environment",
    "Event",
    "Forbidden",
    "GatewayTimeout",
    "Health",
    "Limits",
    "MethodNotAllowed",
    "Metrics",
    "NotFound",
    "Outbox",
    "PayloadTooLarge",
    "Problem",
    "ProcessedEvents",
    "RateLimitString",
    "SecurityHeaders",
    "ServiceApi",
    "ServiceSettings",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
    "__version__",
    "accepts_any_body",
    "begin_shutdown",
    "client_address",
    "create_service",
    "load_settings",
    "rate_limit",
    "register_blueprints",
    "set_user_id",
]
