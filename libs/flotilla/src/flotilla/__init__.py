"""Flotilla: one call makes a Flask app a production-grade service.

The public API is re-exported here, and services import only from here; the submodules are
the implementation. What every service needs at start-up is imported with the package; the
rest (Celery's tasks, the migration runner, pagination, ...) is imported on first use of its
name (:func:`__getattr__`), so a web worker does not pay for what its service never touches
and importing ``flotilla`` stays as light as it was. Type checkers see every name through
the ``TYPE_CHECKING`` imports below.
"""

import importlib
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from flotilla.api import Blueprint, ProblemSchema, json_document
    from flotilla.auth import (
        ADMIN,
        CUSTOMER,
        SERVICE,
        Auth,
        ClientRegistry,
        InvalidKey,
        Principal,
        SigningKey,
        StaticKeys,
        current_principal,
        issue_access_token,
        jwks_document,
        load_public_keys,
        parse_client_secrets,
        require_auth,
        require_service,
        token_rejected,
        verification_keys,
    )
    from flotilla.auth.clients import MINIMUM_SECRET_LENGTH
    from flotilla.checks import broker_check
    from flotilla.columns import BIGINT_MAX, Id, UtcDateTime, utc_now
    from flotilla.config import PLACEHOLDER_SECRETS
    from flotilla.config.messaging import TaskPool
    from flotilla.errors import PROBLEM_TYPE_PREFIX
    from flotilla.health import health_of
    from flotilla.http import (
        BadGateway,
        ClientCredentials,
        DownstreamError,
        ServiceClient,
        ServiceResponse,
        grace,
    )
    from flotilla.metrics import created_once, instruments
    from flotilla.metrics_server import serve_metrics
    from flotilla.migrations import run_migrations
    from flotilla.pagination import Page, PageQuery, keyset_query, page_of
    from flotilla.settings import current_settings
    from flotilla.tasks import Tasks

_LAZY = {
    "Blueprint": "flotilla.api",
    "ProblemSchema": "flotilla.api",
    "json_document": "flotilla.api",
    "ADMIN": "flotilla.auth",
    "CUSTOMER": "flotilla.auth",
    "SERVICE": "flotilla.auth",
    "Auth": "flotilla.auth",
    "ClientRegistry": "flotilla.auth",
    "InvalidKey": "flotilla.auth",
    "Principal": "flotilla.auth",
    "SigningKey": "flotilla.auth",
    "StaticKeys": "flotilla.auth",
    "current_principal": "flotilla.auth",
    "issue_access_token": "flotilla.auth",
    "jwks_document": "flotilla.auth",
    "load_public_keys": "flotilla.auth",
    "parse_client_secrets": "flotilla.auth",
    "require_auth": "flotilla.auth",
    "require_service": "flotilla.auth",
    "token_rejected": "flotilla.auth",
    "verification_keys": "flotilla.auth",
    "MINIMUM_SECRET_LENGTH": "flotilla.auth.clients",
    "broker_check": "flotilla.checks",
    "BIGINT_MAX": "flotilla.columns",
    "Id": "flotilla.columns",
    "UtcDateTime": "flotilla.columns",
    "utc_now": "flotilla.columns",
    "PLACEHOLDER_SECRETS": "flotilla.config",
    "TaskPool": "flotilla.config.messaging",
    "PROBLEM_TYPE_PREFIX": "flotilla.errors",
    "health_of": "flotilla.health",
    "BadGateway": "flotilla.http",
    "ClientCredentials": "flotilla.http",
    "DownstreamError": "flotilla.http",
    "ServiceClient": "flotilla.http",
    "ServiceResponse": "flotilla.http",
    "grace": "flotilla.http",
    "created_once": "flotilla.metrics",
    "instruments": "flotilla.metrics",
    "serve_metrics": "flotilla.metrics_server",
    "run_migrations": "flotilla.migrations",
    "Page": "flotilla.pagination",
    "PageQuery": "flotilla.pagination",
    "keyset_query": "flotilla.pagination",
    "page_of": "flotilla.pagination",
    "current_settings": "flotilla.settings",
    "Tasks": "flotilla.tasks",
}
"""Names imported on first use, and the module each comes from."""


def __getattr__(name: str) -> object:
    """Import a lazily re-exported name on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flotilla' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "ADMIN",
    "BIGINT_MAX",
    "CUSTOMER",
    "MINIMUM_SECRET_LENGTH",
    "NAMING_CONVENTION",
    "PLACEHOLDER_SECRETS",
    "PROBLEM_TYPE_PREFIX",
    "SERVICE",
    "Auth",
    "BadGateway",
    "BadRequest",
    "Blueprint",
    "BodyGuards",
    "Cache",
    "ClientCredentials",
    "ClientRegistry",
    "ConfigurationError",
    "Conflict",
    "Database",
    "DownstreamError",
    "Environment",
    "Event",
    "Forbidden",
    "GatewayTimeout",
    "Health",
    "Id",
    "InvalidKey",
    "Limits",
    "MethodNotAllowed",
    "Metrics",
    "NotFound",
    "Outbox",
    "Page",
    "PageQuery",
    "PayloadTooLarge",
    "Principal",
    "Problem",
    "ProblemSchema",
    "ProcessedEvents",
    "RateLimitString",
    "SecurityHeaders",
    "ServiceApi",
    "ServiceClient",
    "ServiceResponse",
    "ServiceSettings",
    "ServiceUnavailable",
    "SigningKey",
    "StaticKeys",
    "TaskPool",
    "Tasks",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "UtcDateTime",
    "ValidationFailed",
    "__version__",
    "accepts_any_body",
    "begin_shutdown",
    "broker_check",
    "client_address",
    "create_service",
    "created_once",
    "current_principal",
    "current_settings",
    "grace",
    "health_of",
    "instruments",
    "issue_access_token",
    "json_document",
    "jwks_document",
    "keyset_query",
    "load_public_keys",
    "load_settings",
    "page_of",
    "parse_client_secrets",
    "rate_limit",
    "register_blueprints",
    "require_auth",
    "require_service",
    "run_migrations",
    "serve_metrics",
    "set_user_id",
    "token_rejected",
    "utc_now",
    "verification_keys",
]
