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

from flotilla.app import create_service
from flotilla.config import ConfigurationError, Environment, ServiceSettings, load_settings
from flotilla.data.cache import Cache
from flotilla.data.db import NAMING_CONVENTION, Database
from flotilla.messaging.outbox import Event, Outbox, ProcessedEvents  # Tasks: see the docstring
from flotilla.observability import tracing as tracing  # the module services trace with
from flotilla.observability.metrics import Metrics
from flotilla.web.api import ServiceApi, register_blueprints
from flotilla.web.context import set_user_id
from flotilla.web.errors import (
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
from flotilla.web.guards import BodyGuards, accepts_any_body
from flotilla.web.health import Health, begin_shutdown
from flotilla.web.limits import Limits, RateLimitString, client_address, rate_limit
from flotilla.web.security import SecurityHeaders

if TYPE_CHECKING:
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
    from flotilla.auth.clients import MINIMUM_SECRET_LENGTH, development_key
    from flotilla.config import PLACEHOLDER_SECRETS, comma_separated
    from flotilla.config.messaging import TaskPool
    from flotilla.data.columns import BIGINT_MAX, Id, UtcDateTime, utc_now
    from flotilla.data.migrations import run_migrations
    from flotilla.messaging.checks import broker_check
    from flotilla.messaging.tasks import Tasks
    from flotilla.messaging.tasks.dead_letters import DeadLetter, DeadLetters
    from flotilla.money import format_money, minor_unit_digits
    from flotilla.observability.metrics import created_once, instruments
    from flotilla.observability.metrics_server import serve_metrics
    from flotilla.resilience.http import (
        BadGateway,
        ClientCredentials,
        DownstreamError,
        ServiceClient,
        ServiceResponse,
        grace,
    )
    from flotilla.resilience.redis_client import shared_redis
    from flotilla.settings import current_settings
    from flotilla.web.api import Blueprint, ProblemSchema, json_document
    from flotilla.web.errors import (
        PROBLEM_TYPE_PREFIX,
        problem_from_http_exception,
        problem_response,
    )
    from flotilla.web.health import health_of
    from flotilla.web.pagination import Page, PageQuery, keyset_query, page_of

_LAZY = {
    "Blueprint": "flotilla.web.api",
    "ProblemSchema": "flotilla.web.api",
    "json_document": "flotilla.web.api",
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
    "development_key": "flotilla.auth.clients",
    "shared_redis": "flotilla.resilience.redis_client",
    "broker_check": "flotilla.messaging.checks",
    "BIGINT_MAX": "flotilla.data.columns",
    "Id": "flotilla.data.columns",
    "UtcDateTime": "flotilla.data.columns",
    "utc_now": "flotilla.data.columns",
    "PLACEHOLDER_SECRETS": "flotilla.config",
    "comma_separated": "flotilla.config",
    "TaskPool": "flotilla.config.messaging",
    "PROBLEM_TYPE_PREFIX": "flotilla.web.errors",
    "problem_from_http_exception": "flotilla.web.errors",
    "problem_response": "flotilla.web.errors",
    "health_of": "flotilla.web.health",
    "BadGateway": "flotilla.resilience.http",
    "ClientCredentials": "flotilla.resilience.http",
    "DownstreamError": "flotilla.resilience.http",
    "ServiceClient": "flotilla.resilience.http",
    "ServiceResponse": "flotilla.resilience.http",
    "grace": "flotilla.resilience.http",
    "created_once": "flotilla.observability.metrics",
    "instruments": "flotilla.observability.metrics",
    "serve_metrics": "flotilla.observability.metrics_server",
    "run_migrations": "flotilla.data.migrations",
    "Page": "flotilla.web.pagination",
    "PageQuery": "flotilla.web.pagination",
    "keyset_query": "flotilla.web.pagination",
    "page_of": "flotilla.web.pagination",
    "current_settings": "flotilla.settings",
    "Tasks": "flotilla.messaging.tasks",
    "format_money": "flotilla.money",
    "minor_unit_digits": "flotilla.money",
    "DeadLetter": "flotilla.messaging.tasks.dead_letters",
    "DeadLetters": "flotilla.messaging.tasks.dead_letters",
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
    "DeadLetter",
    "DeadLetters",
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
    "comma_separated",
    "create_service",
    "created_once",
    "current_principal",
    "current_settings",
    "development_key",
    "format_money",
    "grace",
    "health_of",
    "instruments",
    "issue_access_token",
    "json_document",
    "jwks_document",
    "keyset_query",
    "load_public_keys",
    "load_settings",
    "minor_unit_digits",
    "page_of",
    "parse_client_secrets",
    "problem_from_http_exception",
    "problem_response",
    "rate_limit",
    "register_blueprints",
    "require_auth",
    "require_service",
    "run_migrations",
    "serve_metrics",
    "set_user_id",
    "shared_redis",
    "token_rejected",
    "utc_now",
    "verification_keys",
]
