"""Helpers for testing Flotilla services against real parts (the ``testing`` extra).

One module per concern; the names below are re-exported here, so ``from flotilla.testing
import X`` is the way to use them.

* :func:`capture_logs` collects the JSON log records of a block, so tests assert on logs;
  :func:`read_json_lines` reads the JSON logs child processes write (:mod:`.logs`).
* :func:`postgres_database` creates a throw-away PostgreSQL database and drops it afterwards;
  :func:`fresh_database` gives an empty database of either backend in :data:`BACKENDS`;
  :func:`app_fixture` makes a pytest fixture of a service's app on one, and the ``check_*``
  functions are the migration tests every service runs on it (:mod:`.databases`).
* :func:`service_redis` hands out the test Redis and deletes a service's keys afterwards
  (:mod:`.redis`).
* :class:`TcpProxy` sits between a client and a real server, to cut the link or delay
  what the server sends (:mod:`.proxy`).
* :class:`ManualClock` is a clock tests move by hand, where code takes a ``clock``
  (:mod:`.clock`).
* :func:`wait_for_http` (from :mod:`flotilla.serving.processes`) polls a URL until it answers.
* :func:`serve_app` serves a Flask app over real HTTP on a thread, as a peer for a service's
  client under test (:mod:`.wsgi`).
* :class:`GunicornServer` and :class:`GranianServer` start a real Gunicorn (chassis config)
  or granian (``flotilla serve``) on a free port, wait until ``/healthz/ready`` answers, and
  stop it by PID; :func:`web_server` picks one by its ``WEB_SERVER`` name (:mod:`.servers`).

:func:`flotilla.testing.contract.check_contract` runs a service's OpenAPI document against
the service with schemathesis; imported from there, like the messaging helpers below.

RabbitMQ queue and worker helpers live in :mod:`flotilla.testing.messaging` and are imported from
there: they are not re-exported, so kombu stays confined to that one module. The same holds
for :mod:`flotilla.testing.telemetry`: real endpoints receiving OTLP traces and Sentry events,
and for :mod:`flotilla.testing.mail`: a real SMTP server (aiosmtpd) that keeps what it gets.
"""

from __future__ import annotations

from flotilla.serving.processes import wait_for_http
from flotilla.testing.clock import ManualClock
from flotilla.testing.databases import (
    BACKENDS,
    DEFAULT_POSTGRES_URL,
    POSTGRES_URL_ENV,
    PostgresUnavailable,
    SettingsT,
    app_fixture,
    check_downgrade_to_base,
    check_upgrade_from_empty,
    check_upgrade_twice,
    empty_tables,
    fresh_database,
    migrate,
    postgres_database,
    postgres_server_url,
    table_names,
)
from flotilla.testing.logs import capture_logs, read_json_lines
from flotilla.testing.proxy import TcpProxy
from flotilla.testing.redis import DEFAULT_REDIS_URL, service_redis
from flotilla.testing.servers import (
    SERVERS,
    GranianServer,
    GunicornServer,
    ServerProcess,
    free_base_port,
    free_port,
    is_free,
    web_server,
)
from flotilla.testing.waiting import wait_until
from flotilla.testing.wsgi import serve_app

__all__ = [
    "BACKENDS",
    "DEFAULT_POSTGRES_URL",
    "DEFAULT_REDIS_URL",
    "POSTGRES_URL_ENV",
    "SERVERS",
    "GranianServer",
    "GunicornServer",
    "ManualClock",
    "PostgresUnavailable",
    "ServerProcess",
    "SettingsT",
    "TcpProxy",
    "app_fixture",
    "capture_logs",
    "check_downgrade_to_base",
    "check_upgrade_from_empty",
    "check_upgrade_twice",
    "empty_tables",
    "free_base_port",
    "free_port",
    "fresh_database",
    "is_free",
    "migrate",
    "postgres_database",
    "postgres_server_url",
    "read_json_lines",
    "serve_app",
    "service_redis",
    "table_names",
    "wait_for_http",
    "wait_until",
    "web_server",
]
