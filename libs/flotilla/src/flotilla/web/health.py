"""Health probes: ``/healthz/live`` (no I/O), ``/healthz/ready`` (every dependency), ``/healthz``.

Liveness answers from memory, so a slow database never gets a healthy process restarted.
Readiness runs each registered check with a deadline: a dependency that hangs (a frozen
server, a black-holed packet) shows as failed after ``HEALTH_CHECK_TIMEOUT`` instead of
hanging the probe. Checks run on a small per-process thread pool because a socket read
cannot be interrupted from the request thread; a check still stuck from an earlier probe is
reported failed rather than started again, so stuck threads never pile up.

A check is critical (the default) or not. A failed critical check makes readiness 503; a failed
non-critical one is reported, with the overall status ``degraded``, but the answer stays 200:
a dependency the service can work without (a cache, a rate-limit store, a broker behind an
outbox) must not take every replica out of the load balancer at once when it fails.

Readiness also turns 503 the moment shutdown begins (:func:`begin_shutdown`, called by the
Gunicorn hooks on SIGTERM), so load balancers stop sending work before the worker drains.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app

log = logging.getLogger(__name__)

HealthCheck = Callable[[], object]
"""A check raises when its dependency is unusable; its return value is ignored."""

_shutting_down = threading.Event()


def begin_shutdown() -> None:
    """Mark this process as draining: readiness answers 503 from now on."""
    if not _shutting_down.is_set():
        log.info("shutdown begun, readiness now failing")
    _shutting_down.set()


def reset_shutdown() -> None:
    """Undo :func:`begin_shutdown`; for tests that share one process."""
    _shutting_down.clear()


def is_shutting_down() -> bool:
    """True once :func:`begin_shutdown` was called in this process."""
    return _shutting_down.is_set()


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one readiness check."""

    name: str
    ok: bool
    duration_ms: float
    error: str | None = None
    critical: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON form, without internals: only the exception's class name on failure."""
        body: dict[str, Any] = {"status": "ok" if self.ok else "fail"}
        body["duration_ms"] = round(self.duration_ms, 2)
        if self.error:
            body["error"] = self.error
        if not self.critical:
            body["critical"] = False
        return body


_EXTENSION_KEY = "flotilla.health"


class Health:
    """Registers the probe endpoints and the readiness checks of one app."""

    def __init__(self, app: Flask | None = None, *, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self._checks: dict[str, tuple[HealthCheck, bool]] = {}  # name: (check, critical)
        self._running: dict[str, Future[object]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = 0
        self._lock = threading.Lock()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Add ``/healthz/live``, ``/healthz/ready`` and ``/healthz`` to ``app``."""
        app.extensions[_EXTENSION_KEY] = self
        app.register_blueprint(_blueprint)

    def add_check(self, name: str, check: HealthCheck, *, critical: bool = True) -> None:
        """Register a readiness check; ``check`` raises when the dependency is unusable.

        A non-critical check is reported but does not fail readiness (see the module doc).
        """
        self._checks[name] = (check, critical)

    def run_checks(self) -> list[CheckResult]:
        """Run every check at once and wait at most ``timeout`` seconds for all of them."""
        started = time.perf_counter()
        futures = {name: self._submit(name, check) for name, (check, _) in self._checks.items()}
        deadline = started + self.timeout
        return [self._collect(name, future, started, deadline) for name, future in futures.items()]

    def _submit(self, name: str, check: HealthCheck) -> Future[object] | None:
        with self._lock:
            previous = self._running.get(name)
            if previous is not None and not previous.done():
                return None
            future = self._pool().submit(check)
            self._running[name] = future
            return future

    def _pool(self) -> ThreadPoolExecutor:
        # A pool inherited through fork has no threads; every process makes its own.
        if self._executor is None or self._executor_pid != os.getpid():
            self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")
            self._executor_pid = os.getpid()
        return self._executor

    def _collect(
        self, name: str, future: Future[object] | None, started: float, deadline: float
    ) -> CheckResult:
        critical = self._checks[name][1]
        if future is None:
            return CheckResult(name, False, 0.0, "StillRunning", critical)
        try:
            future.result(timeout=max(0.0, deadline - time.perf_counter()))
        except FutureTimeout:
            error: str | None = "Timeout"
        except Exception as exc:
            error = type(exc).__name__
            log.warning("readiness check failed", extra={"check": name, "error": repr(exc)})
        else:
            error = None
        elapsed = (time.perf_counter() - started) * 1000
        return CheckResult(name, error is None, elapsed, error, critical)


def health_of(app: Flask) -> Health | None:
    """The health checks of ``app``; None for an app made without them."""
    health: Health | None = app.extensions.get(_EXTENSION_KEY)
    return health


_blueprint = Blueprint("flotilla_health", __name__)


def _json(body: dict[str, Any], status: int) -> Response:
    response = Response(orjson.dumps(body), status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@_blueprint.get("/healthz/live")
def live() -> Response:
    """The process is up and serving; no dependency is consulted."""
    return _json({"status": "ok"}, 200)


@_blueprint.get("/healthz/ready")
@_blueprint.get("/healthz")
def ready() -> Response:
    """Every critical dependency answers and the process is not shutting down."""
    health: Health = current_app.extensions[_EXTENSION_KEY]
    if is_shutting_down():
        return _json({"status": "shutting-down", "checks": {}}, 503)
    results = health.run_checks()
    checks = {result.name: result.to_dict() for result in results}
    if any(not result.ok and result.critical for result in results):
        return _json({"status": "fail", "checks": checks}, 503)
    degraded = any(not result.ok for result in results)
    return _json({"status": "degraded" if degraded else "ok", "checks": checks}, 200)
