"""A WSGI app under granian with everything the chassis gives it under Gunicorn.

granian (HTTP in Rust, the app in Python threads) serves the same app as Gunicorn for about
0.6 of the CPU per request. Its embeddable server (:class:`granian.server.mp.MPServer`) runs
here with the chassis' process model, as :mod:`flotilla.serving.gunicorn` does for Gunicorn:

* the multiprocess metrics directory is prepared, then the app imported once in the main
  process (preload), then the workers forked: they share its code pages, and a broken app
  fails at start, not in every worker; database pools reset after fork (:mod:`flotilla.data.db`);
* one listening socket for all workers, opened by the main process: a worker that stops
  leaves the connections queued on it to the others (granian's default on Linux, a socket
  per worker with ``SO_REUSEPORT``, resets them unless ``net.ipv4.tcp_migrate_req`` is on);
* each worker stops in four steps (:mod:`flotilla.serving.serve.worker`): readiness fails and
  answers close their connections, it lingers, it stops accepting, then it drains;
* a worker whose heartbeat stops (a thread holding the GIL) is killed after ``TIMEOUT`` and
  replaced (:mod:`flotilla.serving.serve.heartbeat`), as Gunicorn does;
* a dead worker's live gauges are dropped; every line, granian's own included, is JSON.

Everything else is granian's: SIGHUP replaces the workers one by one, each new one serving
``RESPAWN_INTERVAL`` seconds beside the one it replaces; SIGTERM or SIGINT stops them all
within ``GRACEFUL_TIMEOUT``; a worker over ``WORKERS_MAX_RSS`` or past ``WORKERS_LIFETIME`` is
replaced the same way as on SIGHUP.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
from functools import partial
from pathlib import Path
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.net import SocketSpec
from granian.server.mp import MPServer, WorkerProcess

from flotilla.config import GranianSettings, load_settings
from flotilla.observability import metrics, metrics_dir
from flotilla.observability.logging import configure_logging
from flotilla.serving.memory import prepare_to_fork, use_one_arena
from flotilla.serving.serve.heartbeat import Beating, Heartbeats, Watchdog
from flotilla.serving.serve.worker import import_app, load_worker_app, serve_wsgi_worker

log = logging.getLogger("flotilla.serve")


def parse_bind(bind: str) -> tuple[str, int, Path | None]:
    """``host:port`` or ``unix:path`` as granian's address, port and socket path."""
    if bind.startswith("unix:"):
        return "", 0, Path(bind.removeprefix("unix:"))
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port), None  # noqa: S104 - listening is the point


def service_name(app_uri: str, settings: GranianSettings) -> str:
    """``SERVICE_NAME`` if set, else the package of the app: ``users`` for ``users.wsgi:app``."""
    return settings.SERVICE_NAME or app_uri.split(":", 1)[0].split(".", 1)[0]


def logging_config(settings: GranianSettings) -> dict[str, Any]:
    """granian's loggers without handlers of their own: their records reach the JSON root.

    ``_granian`` is granian's (the Rust side logs through it too), at ``GRANIAN_LOG_LEVEL``
    whatever ``LOG_LEVEL`` is, as Gunicorn's own log keeps ``GUNICORN_LOGLEVEL``. granian's
    access log stays off: the app writes the line, with its request id.
    """
    own = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {},
        "handlers": {},
        "loggers": {
            "_granian": {**own, "level": settings.LOG_LEVEL.upper()},
            "granian.access": {**own, "level": "WARNING"},
        },
    }


class ServedWorker(WorkerProcess):  # type: ignore[misc]
    """A worker process forked from the main process, whose exit the main process records."""

    def _spawn(self, target: Any, args: Any) -> None:
        # Forked, always: the app is imported in the main process before (Python 3.14 would
        # otherwise start workers with forkserver, and granian with spawn).
        self.inner = multiprocessing.get_context("fork").Process(
            name="granian-worker", target=target, args=args
        )

    def start(self) -> None:
        """Start the process; one JSON line with its pid, as under Gunicorn."""
        super().start()
        log.info("worker started", extra={"worker_pid": self.inner.pid})

    def _watcher(self) -> None:
        self.inner.join()
        pid = self.inner.pid
        if pid is not None:
            metrics.mark_process_dead(pid)
        log.info("worker exited", extra={"worker_pid": pid, "exit_code": self.inner.exitcode})
        super()._watcher()  # granian's: a worker it did not stop is replaced


class GranianServer(MPServer):  # type: ignore[misc]
    """granian's multi-process server, configured from :class:`GranianSettings`."""

    def __init__(self, app_uri: str, settings: GranianSettings) -> None:
        address, port, uds = parse_bind(settings.BIND)
        super().__init__(
            app_uri,
            address=address,
            port=port,
            uds=uds,
            interface=Interfaces.WSGI,
            workers=settings.WORKERS,
            blocking_threads=settings.BLOCKING_THREADS,
            backlog=settings.BACKLOG,
            backpressure=settings.BACKPRESSURE or None,
            http=HTTPModes.http1,
            websockets=False,
            http1_settings=HTTP1Settings(
                header_read_timeout=max(settings.KEEPALIVE, 1) * 1000,
                keep_alive=settings.KEEPALIVE > 0,
            ),
            log_level=LogLevels(settings.LOG_LEVEL),
            log_dictconfig=logging_config(settings),
            respawn_failed_workers=True,
            respawn_interval=settings.RESPAWN_INTERVAL,
            rss_sample_interval=settings.RSS_INTERVAL,
            workers_kill_timeout=settings.GRACEFUL_TIMEOUT,
        )
        self.settings = settings
        self.heartbeats = Heartbeats(settings.WORKERS)
        self.watchdog = Watchdog(self.heartbeats, self._beating, settings.TIMEOUT)

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT; the workers load the app the main process imported."""
        loader = partial(
            load_worker_app,
            heartbeats=self.heartbeats,
            linger=self.settings.STOP_LINGER,
            access_log=self.settings.ACCESSLOG,
        )
        self.serve(spawn_target=serve_wsgi_worker, target_loader=loader)

    def startup(self, spawn_target: Any, target_loader: Any) -> None:
        """Recycling by lifetime and memory, then granian's start-up, then the watchdog.

        The recycling limits are set only now, after granian's checks of its configuration:
        with them set, those checks warn that a worker's respawn resets queued connections,
        which is true of granian's socket per worker and not of the shared socket used here.
        """
        lifetime, max_rss = self.settings.WORKERS_LIFETIME, self.settings.WORKERS_MAX_RSS
        self.workers_lifetime = lifetime or None
        self.workers_rss = max_rss * 1024 * 1024 if max_rss else None
        super().startup(spawn_target, target_loader)
        self.watchdog.start()

    def shutdown(self, exit_code: int = 0) -> None:
        """Stop watching, stop the workers (granian), remove a temporary metrics directory."""
        self.watchdog.stop()
        try:
            super().shutdown(exit_code)
        finally:
            metrics_dir.remove()

    def _init_shared_socket(self) -> None:
        if self.bind_uds:  # granian shares a Unix socket already
            super()._init_shared_socket()
            return
        holder = SocketSpec(self.bind_addr, self.bind_port, self.backlog).build()
        self._ssp, self._shd, self._sfd = None, holder, holder.get_fd()
        self._sso = socket.socket(fileno=self._sfd)
        self._sso.set_inheritable(True)

    def _spawn_worker(self, idx: int, target: Any, callback_loader: Any) -> ServedWorker:
        # granian's MPServer._spawn_worker, with ServedWorker for WorkerProcess.
        return ServedWorker(
            parent=self,
            idx=idx,
            target=target,
            args=(
                idx + 1,
                self.process_name,
                callback_loader,
                ((self._ssp, self._shd), self._sso),
                self._ipc[idx][1] if self.metrics_enabled else None,
                self.loop,
                self.log_enabled,
                self.log_level,
                self.log_config,
                self.env_files,
                self.runtime_mode,
                self.runtime_threads,
                self.runtime_blocking_threads,
                self.blocking_threads,
                self.blocking_threads_idle_timeout,
                self.backpressure,
                self.task_impl,
                self.http,
                self.http1_settings,
                self.http2_settings,
                self.websockets,
                self.static_path,
                self.log_access_format if self.log_access else None,
                self.ssl_ctx,
                {"url_path_prefix": self.url_path_prefix},
                (self.metrics_scrape_interval if self.metrics_enabled else None, None),
            ),
        )

    def _beating(self) -> list[Beating]:
        """The workers the watchdog watches: those serving, not one being replaced."""
        return [
            Beating(worker.idx, worker.inner.pid, worker.birth)
            for worker in list(self.wrks)
            if worker.inner.pid is not None
        ]


def serve(app_uri: str) -> None:
    """Run ``app_uri`` under granian until SIGTERM or SIGINT; exit 0 after a clean stop."""
    use_one_arena()  # before any thread: what workers free goes back to the system
    settings = load_settings(GranianSettings)
    metrics_dir.prepare(settings.METRICS_DIR)
    configure_logging(service_name(app_uri, settings))
    import_app(app_uri)  # preload: every worker is forked with it
    prepare_to_fork()  # the import frozen for the collector, its freed memory handed back
    GranianServer(app_uri, settings).run()
