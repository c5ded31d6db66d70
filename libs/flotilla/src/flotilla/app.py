"""``create_service``: one call that makes a Flask app a production service.

Each part is also an extension usable on its own (``Health(app)``, ``Metrics(app)``, ...);
this function only wires them in the order that makes them cooperate: the request id is set
before anything can log, errors render after the API is known, proxies are unwrapped last
so they are the outermost WSGI layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin

from flotilla.auth import Auth
from flotilla.config import ServiceSettings
from flotilla.messaging.checks import broker_check, redis_check
from flotilla.observability import error_reports, tracing
from flotilla.observability.logging import configure_logging
from flotilla.observability.metrics import Metrics
from flotilla.resilience.http.deadline import Deadlines
from flotilla.settings import keep_settings
from flotilla.web.api import ServiceApi, api_config, keep_api
from flotilla.web.errors import MalformedJson, Problem, problem_response
from flotilla.web.guards import BodyGuards
from flotilla.web.health import Health
from flotilla.web.jsonprovider import OrjsonProvider
from flotilla.web.lifecycle import RequestLifecycle
from flotilla.web.limits import Limits
from flotilla.web.security import SecurityHeaders, trust_proxies
from flotilla.web.swagger_ui import swagger_ui


class _NoSessions(SessionInterface):
    """APIs are stateless: never read or write Flask's signed session cookie.

    Flask would otherwise look for (and consider saving) a cookie session on every request:
    time spent for nothing. Nothing signs a cookie here, so there is no ``SECRET_KEY``
    either (``docs/adr/0022-migrations-and-configuration-at-scale.md``).
    """

    def __init__(self) -> None:
        self._empty: SessionMixin | None = None

    def open_session(self, app: Flask, request: Request) -> SessionMixin:
        """The null session, one for every request: reading is empty, writing raises.

        Sharing it is safe because nothing can be written to it; making a new one per
        request (a dictionary subclass with its callbacks) cost about 2 % of a small view's
        time in the workers' profiles.
        """
        if self._empty is None:
            self._empty = self.make_null_session(app)
        return self._empty

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Nothing to save."""


class ServiceRequest(Request):
    """A request whose JSON body is refused as a problem, not a bare 400 page.

    ``get_json`` parses with the app's provider, :class:`OrjsonProvider`, whose ``loads`` is
    :func:`flotilla.web.jsonbody.parse_body`, as the views' arguments do: a body no view would
    accept is not accepted by a hook that reads it first either.
    """

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        """Raise the parser's problem, else :class:`MalformedJson`; never a bare ``BadRequest``."""
        if isinstance(e, MalformedJson):
            raise e
        raise MalformedJson("The request body is not valid JSON.")


class ServiceApp(Flask):
    """Flask, remembering which hooks and views need no async adapter.

    Flask asks ``inspect.iscoroutinefunction`` about every hook and view on every request
    (``ensure_sync``); a service runs about ten hooks per request, so the answer, which never
    changes, is worth keeping: about 10 µs of a request that costs a few hundred.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_functions: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's answer for ``func``, computed once per function."""
        try:
            return self._sync_functions[func]
        except KeyError:
            sync = self._sync_functions[func] = super().ensure_sync(func)
            return sync


def create_service(import_name: str, settings: ServiceSettings, *, version: str = "0.0.0") -> Flask:
    """Build a Flask app with logging, errors, health, metrics, security and OpenAPI.

    Add the database with ``Database.init_app`` and resources with
    :func:`flotilla.web.api.register_blueprints`.
    """
    configure_logging(settings.SERVICE_NAME, settings.LOG_LEVEL)
    app = ServiceApp(import_name, static_folder=None)
    app.request_class = ServiceRequest
    app.session_interface = _NoSessions()
    app.json = OrjsonProvider(app)
    app.config.update(flask_config(settings, version))
    keep_settings(app, settings)
    RequestLifecycle(app)
    tracing.install(app, settings, version)
    error_reports.install(settings, version)
    Deadlines(app, settings)  # before any view works: a request may arrive already too late
    Metrics(app, version=version)  # before the guards, so refused requests are counted
    BodyGuards(app)
    app.register_error_handler(Problem, problem_response)
    Limits(app, settings)
    SecurityHeaders(app, hsts_max_age=settings.HSTS_MAX_AGE)
    _add_dependency_checks(Health(app, timeout=settings.HEALTH_CHECK_TIMEOUT), settings)
    keep_api(app, ServiceApi(app))
    app.register_blueprint(swagger_ui)  # the files /docs loads
    Auth(app, settings)  # after the API: it declares the bearer scheme in the spec
    trust_proxies(app, settings.PROXY_HOPS, settings.TRUSTED_PROXIES)
    return app


def _add_dependency_checks(health: Health, settings: ServiceSettings) -> None:
    """Readiness reports Redis and the broker when the service is configured with them.

    Neither fails readiness: rate limits fall back to memory, caches to the database, and
    events wait in the outbox, so a web service keeps answering while they are down. A
    service that cannot work without one (a worker and its broker) adds it as critical.
    """
    timeout = settings.HEALTH_CHECK_TIMEOUT
    if settings.REDIS_URL:
        health.add_check("redis", redis_check(settings.REDIS_URL), critical=False)
    if settings.BROKER_URL:
        health.add_check("broker", broker_check(settings.BROKER_URL, timeout), critical=False)


def flask_config(settings: ServiceSettings, version: str) -> dict[str, Any]:
    """The Flask config derived from ``settings``; nothing else writes ``app.config``."""
    return {
        "MAX_CONTENT_LENGTH": settings.MAX_CONTENT_LENGTH,
        # Errors always render as problems, in tests too; never re-raised to the server.
        "PROPAGATE_EXCEPTIONS": False,
        **api_config(settings.SERVICE_NAME, version),
    }
