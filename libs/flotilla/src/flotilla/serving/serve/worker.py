"""One granian worker process: how it serves the app, beats, and stops without failing a request.

granian's own WSGI worker stops the moment it gets SIGTERM: it stops accepting, finishes the
requests in flight and closes every idle kept-alive connection at once. A client (nginx, a
load balancer) that was writing its next request into such a connection gets no answer, and
if that request was a POST it cannot be retried; nothing fails readiness first either. So the
worker here is granian's, started the same way, with its stop in four steps:

1. SIGTERM or SIGINT fails readiness (``/healthz/ready`` answers 503) and from then on every
   answer carries ``Connection: close``, so each client leaves its connection after the
   request it is making;
2. for ``GRANIAN_STOP_LINGER`` seconds the worker goes on answering (Gunicorn's gthread worker
   keeps its kept-alive connections two seconds the same way);
3. it stops accepting (:func:`stop_accepting`), and the connections it holds get
   :data:`~flotilla.config.granian.STOP_REQUEST_WAIT` seconds to deliver their request;
4. then granian's own graceful stop: requests in flight finished, idle connections closed.

Step 3 is not granian's: its stop also stops the accepting, and closes at once every
connection that has delivered no request yet. A connection accepted an instant before, whose
request was still on its way, would be closed unanswered (and a POST cannot be retried).

The listening socket is shared with the main process and the other workers, so connections
waiting in its queue are accepted by another worker, never reset.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from granian import _granian
from granian._futures import _new_cbscheduler
from granian.constants import TaskImpl
from granian.server.common import WORKERS_METHODS
from granian.server.mp import WorkerProcess
from granian.wsgi import _callback_wrapper

from flotilla.config.granian import STOP_REQUEST_WAIT
from flotilla.observability import tracing
from flotilla.serving.memory import start_trimming
from flotilla.serving.serve.heartbeat import Heartbeats
from flotilla.web import health

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_WSGIWorker: Any = _granian.WSGIWorker  # its type stub lags: it lacks the ``ipc`` parameter

log = logging.getLogger("flotilla.serve")

ACCESS_LOGGER = "flotilla.access"
"""The logger of the app's one line per request (:mod:`flotilla.web.lifecycle`)."""


def import_app(target: str) -> WsgiApp:
    """The object ``module:attribute`` names (``users.wsgi:app``; ``app`` when omitted)."""
    module_name, _, attribute = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in (attribute or "app").split("."):
        found = getattr(found, part)
    app: WsgiApp = found
    return app


class WorkerApp:
    """The app as a worker serves it: its answers handed to granian whole, and what a
    stopping worker adds to each.

    granian sends a list in one call (``response_bytes``) but walks any other iterable
    chunk by chunk from Rust (``response_iter``), and every Flask answer is an iterator
    (werkzeug's ``ClosingIterator``), a list inside. Handed over as a list, an answer costs
    about 25 µs less CPU (a sixth of a bare Flask route's; bench/RESULTS.md, "Answers handed
    over whole"). An answer whose length is known and at most
    :data:`WHOLE_BODY_LIMIT` (its ``Content-Length``: werkzeug sets it for every body it
    holds whole) is therefore read into a list here, and closed, as the server would; a
    streamed answer (no length: a generator) or a large one (a file) is left to granian's
    walk, so no answer is held in memory whole that was not already.

    ``Connection`` is a hop-by-hop header an application must not send (PEP 3333); this layer
    belongs to the server, and granian's HTTP/1 connection honours it by closing after the
    answer.
    """

    def __init__(self, app: WsgiApp, *, heartbeats: Heartbeats, linger: float) -> None:
        self.app = app
        self.heartbeats = heartbeats
        self.linger = linger

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request; with ``Connection: close`` once the worker is stopping."""
        small = False
        closing = health.is_shutting_down()

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            nonlocal small
            small = _length(headers) <= WHOLE_BODY_LIMIT
            if closing:
                headers = [*headers, ("Connection", "close")]
            return start_response(status, headers, *exc_info)

        body = self.app(environ, start)
        if not small or isinstance(body, list):
            return body
        return whole(body)


WHOLE_BODY_LIMIT = 1024 * 1024
"""Bytes up to which a known-length answer is handed to granian as one list."""


def _length(headers: list[tuple[str, str]]) -> float:
    """The answer's ``Content-Length``; infinite when it has none (a streamed answer)."""
    for name, value in headers:
        if name.lower() == "content-length":
            return int(value) if value.isdigit() else math.inf
    return math.inf


def whole(body: Iterable[bytes]) -> list[bytes]:
    """An answer's chunks as a list, its iterable closed (PEP 3333: the server's duty)."""
    try:
        return list(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def load_worker_app(
    target: str, *, heartbeats: Heartbeats, linger: float, access_log: bool
) -> WorkerApp:
    """Called by granian in each new worker: the app (imported by the main process already)."""
    if not access_log:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
    return WorkerApp(import_app(target), heartbeats=heartbeats, linger=linger)


STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def _hold_stop_signals() -> None:
    """Keep SIGTERM and SIGINT pending for :func:`signal.sigwait` in every thread.

    Called before any thread starts, so granian's threads inherit the mask: the main thread
    alone takes them, when it waits for them, and no handler runs in the middle of its code.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


@WorkerProcess.wrap_target  # type: ignore[untyped-decorator]
def serve_wsgi_worker(  # noqa: PLR0917 - granian passes these positionally
    worker_id: int,
    callback: WorkerApp,
    sock: Any,
    ipc: Any,
    loop: Any,
    runtime_mode: Any,
    runtime_threads: int,
    runtime_blocking_threads: int | None,
    blocking_threads: int,
    blocking_threads_idle_timeout: int,
    backpressure: int,
    task_impl: TaskImpl,
    http_mode: Any,
    http1_settings: Any,
    http2_settings: Any,
    websockets: bool,
    static_path: Any,
    log_access_fmt: str | None,
    ssl_ctx: Any,
    scope_opts: dict[str, Any],
    metrics: Any,
) -> None:
    """granian's ``MPServer._spawn_wsgi_worker``, with the four-step stop of the module doc.

    The parameters are granian's, in granian's order (a test holds them to granian's own).
    """
    _hold_stop_signals()
    callback.heartbeats.start_beating(worker_id - 1)
    start_trimming()
    granian_stop, stopped = _granian.WorkerSignal(), threading.Event()
    granian_stop.add_cb(stopped.set)  # called once every connection is done
    worker = _WSGIWorker(
        worker_id,
        sock,
        ipc,
        runtime_threads,
        runtime_blocking_threads,
        blocking_threads,
        blocking_threads_idle_timeout,
        backpressure,
        http_mode,
        http1_settings,
        http2_settings,
        static_path,
        *ssl_ctx,
        metrics,
    )
    serve = getattr(worker, WORKERS_METHODS[runtime_mode][(sock[0] or sock[1]).is_uds()])
    wsgi = _callback_wrapper(callback, scope_opts, log_access_fmt)
    scheduler = _new_cbscheduler(loop, wsgi, impl_asyncio=task_impl == TaskImpl.asyncio)
    serve(scheduler, loop, granian_stop)
    _stop_when_told(callback.linger, granian_stop, stopped, listener=sock[1].get_fd())
    tracing.shutdown()  # the process leaves with os._exit: no atexit would export the spans


def _stop_when_told(
    linger: float, granian_stop: Any, stopped: threading.Event, *, listener: int
) -> None:
    """Wait for SIGTERM or SIGINT, then stop in the four steps of the module doc."""
    signal.sigwait(STOP_SIGNALS)
    health.begin_shutdown()
    time.sleep(linger)
    stop_accepting(listener)
    log.info("worker stopped accepting", extra={"worker_pid": os.getpid()})
    time.sleep(STOP_REQUEST_WAIT)
    granian_stop.set()
    stopped.wait()


def stop_accepting(listener: int) -> None:
    """Take no more connections from the shared socket; keep those this worker holds.

    granian accepts from the descriptor ``listener`` and has no way to stop but its whole
    stop. So a listening socket of this process's own, at an abstract Unix address nobody is
    told, replaces the shared socket under that descriptor, in this process only: granian's
    next accept there finds nothing and waits. Its wake-ups still come from the shared
    socket, whose registration is unchanged, and each costs one empty accept. The shared
    socket stays open in the other processes, which take its connections. Closing the
    descriptor instead would make granian's accept fail, and retry, at once and for good,
    and let any socket this process opens next take the descriptor's number.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as placeholder:
        placeholder.bind("")  # an abstract address of the kernel's choosing
        placeholder.listen()
        placeholder.setblocking(False)
        os.dup2(placeholder.fileno(), listener, inheritable=False)
