"""The Gunicorn configuration of every service: ``gunicorn -c python:flotilla.serving.gunicorn``.

Every value comes from :class:`flotilla.config.GunicornSettings`, so ``GUNICORN_WORKERS=3``
and friends override it. The hooks below connect Gunicorn's process model to the chassis:

* the multiprocess metrics directory is created before the app is imported (Prometheus
  decides its storage then), emptied at start and cleaned of dead workers' live gauges;
* SIGTERM to a worker flips readiness to 503 before the worker drains;
* a worker whose memory grew past ``MAX_WORKER_RSS`` finishes its requests and is replaced;
* every lifecycle event is one JSON log line, and so is every access-log line.

Database pools need nothing here: :mod:`flotilla.data.db` resets them in every forked child.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from types import FrameType
from typing import Any

from flotilla.config import GunicornSettings, load_settings
from flotilla.data import db
from flotilla.observability import metrics, metrics_dir, tracing
from flotilla.observability.logging import configure_logging
from flotilla.serving.gunicorn_logging import service_name
from flotilla.serving.memory import prepare_to_fork, start_trimming, use_one_arena
from flotilla.serving.processes import resident_bytes
from flotilla.web import health

use_one_arena()  # before any thread: what workers free goes back to the system
_settings = load_settings(GunicornSettings)
log = logging.getLogger("flotilla.gunicorn")

metrics_dir.prepare(_settings.METRICS_DIR)

bind = [_settings.BIND]
workers = _settings.WORKERS
worker_class = _settings.WORKER_CLASS
# Gunicorn silently runs gthread when a sync worker is given more than one thread: THREADS
# (default 4) belongs to gthread only, so GUNICORN_WORKER_CLASS=sync really means sync.
threads = _settings.THREADS if worker_class == "gthread" else 1
timeout = _settings.TIMEOUT
graceful_timeout = _settings.GRACEFUL_TIMEOUT
keepalive = _settings.KEEPALIVE
max_requests = _settings.MAX_REQUESTS
max_requests_jitter = _settings.MAX_REQUESTS_JITTER
preload_app = _settings.PRELOAD_APP
accesslog = _settings.ACCESSLOG or None
errorlog = "-"
loglevel = _settings.LOGLEVEL
logger_class = "flotilla.serving.gunicorn_logging.JsonLogger"
forwarded_allow_ips = _settings.FORWARDED_ALLOW_IPS
control_socket_disable = not _settings.CONTROL_SOCKET
if _settings.CONTROL_SOCKET:
    control_socket = _settings.CONTROL_SOCKET
if _settings.WORKER_TMP_DIR:
    worker_tmp_dir = _settings.WORKER_TMP_DIR
if _settings.SERVICE_NAME:
    proc_name = _settings.SERVICE_NAME


def on_starting(server: Any) -> None:
    """Master starting: its own log lines become JSON too."""
    configure_logging(service_name(server.cfg))
    log.info("gunicorn starting", extra={"bind": bind, "workers": workers, "threads": threads})


def when_ready(server: Any) -> None:
    """Master listening, the app preloaded, no worker forked yet."""
    prepare_to_fork()  # the import frozen for the collector, its freed memory handed back
    log.info("gunicorn ready", extra={"bind": bind, "pid": os.getpid()})


def on_reload(server: Any) -> None:
    """SIGHUP: new workers start, old ones finish their requests and exit."""
    log.info("gunicorn reloading workers")


def post_fork(server: Any, worker: Any) -> None:
    """A worker was forked."""
    log.info("worker started", extra={"worker_pid": worker.pid})


def post_worker_init(worker: Any) -> None:
    """Worker ready to serve: make SIGTERM/SIGINT/SIGQUIT fail readiness first; trim memory."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        _fail_readiness_on(signum)
    start_trimming()


def _fail_readiness_on(signum: int) -> None:
    previous = signal.getsignal(signum)

    def handler(received: int, frame: FrameType | None) -> None:
        health.begin_shutdown()
        if callable(previous):
            previous(received, frame)

    signal.signal(signum, handler)


def pre_request(worker: Any, req: Any) -> None:
    """Close a kept-alive connection after ``KEEPALIVE_REQUESTS`` requests.

    A worker that restarts (``max_requests``) drops its connections; their clients reconnect
    at once, to the workers still accepting, and a client that keeps its connection alive
    stays there: measured, after a restart one worker served everything while the other idled
    (``bench/RESULTS.md``). Ending each connection after a bounded number of requests (nginx's
    ``keepalive_requests``) lets the kernel hand the next one to any worker.
    """
    if _settings.KEEPALIVE_REQUESTS and req.req_number >= _settings.KEEPALIVE_REQUESTS:
        req.must_close = True


_RSS_CHECK_INTERVAL = 1.0
"""Seconds between two reads of a worker's memory (one small /proc read each)."""
_MAX_RSS_BYTES = _settings.MAX_WORKER_RSS * 1024 * 1024


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    """A worker over ``MAX_WORKER_RSS`` stops accepting, finishes its requests and is replaced.

    Recycling exists to bound what a worker leaks. Counting requests (``MAX_REQUESTS``) does
    it at a rate that grows with the load: at the old default of 1000, a busy worker was
    replaced every second or two, and the connections it dropped all moved to the other
    worker (``docs/adr/0018-granian-by-default.md``). Memory is what a leak costs, so a
    worker is replaced when its memory, not its request count, says so.
    """
    if not _MAX_RSS_BYTES:
        return
    now = time.monotonic()
    if now < getattr(worker, "flotilla_rss_checked", 0.0) + _RSS_CHECK_INTERVAL:
        return
    worker.flotilla_rss_checked = now
    resident = resident_bytes()
    if resident > _MAX_RSS_BYTES and worker.alive:
        log.warning(
            "worker over its memory limit, replacing it",
            extra={"worker_pid": worker.pid, "rss_mib": resident // (1024 * 1024)},
        )
        worker.alive = False


def worker_abort(worker: Any) -> None:
    """A timed-out worker handles SIGABRT (only if its main thread can still run Python).

    A worker blocked with the GIL held never gets here: Gunicorn logs ``WORKER TIMEOUT`` and
    SIGKILLs it on the next check.
    """
    worker.flotilla_aborted = True
    log.error("worker timed out and is being killed", extra={"worker_pid": worker.pid})


def worker_exit(server: Any, worker: Any) -> None:
    """A worker is exiting (run in the worker): after a clean stop, exit at once.

    A worker that served its last request (memory limit, ``max_requests``, SIGTERM, SIGHUP)
    has nothing left to do, yet CPython's interpreter teardown of a Flask + SQLAlchemy app
    takes about 0.3 s, during which the master waits to replace it: with ``max_requests`` at
    1000 a worker was missing for 0.3 s of every few seconds. So the database connections are closed
    properly, the logs flushed, and the process leaves with ``os._exit(0)`` (the replacement
    now boots about 30 ms after the exit). A worker that failed to boot or was aborted keeps
    its exit status, which the master needs to tell a crash from a recycle.
    """
    log.info("worker exiting", extra={"worker_pid": worker.pid})
    tracing.shutdown()  # export the spans still queued, before any exit
    if worker.booted and not worker.alive and not getattr(worker, "flotilla_aborted", False):
        db.dispose_all()
        logging.shutdown()
        os._exit(0)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone (run in the master): drop its live gauges."""
    metrics.mark_process_dead(worker.pid)
    log.info("worker exited", extra={"worker_pid": worker.pid})


def on_exit(server: Any) -> None:
    """Master exiting."""
    metrics_dir.remove()
    log.info("gunicorn stopped")
