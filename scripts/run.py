"""``make run``: the whole shop on one machine, started in order and stopped without loss.

First every service's database is migrated (side by side) and the notifications queues are
declared, so no relay publishes an event no queue is bound for. Then, each step once the one
before is up: users, catalog and orders under granian (users issues the keys the others
verify; orders calls both), the outbox relays of users and orders, orders' recovery loop,
the notifications worker, and nginx in front when it is on PATH. Up means ``/healthz/ready``
(nginx: ``/healthz``) answers 200, or a background process has logged its start line. The
runner then prints where the shop answers and writes ``VAR_DIR/run.json`` for ``make demo``.
Each process writes to ``VAR_DIR/log/<process>.log``.

Ctrl-C or SIGTERM stops everything, waiting for each process by PID: nginx first (SIGQUIT,
so it finishes the requests it holds), then the web services (SIGTERM: readiness fails, then
in-flight requests finish), then the relays, recovery and worker, which keep publishing
while the services drain (an event left unpublished waits in the outbox for the next start).
A process that ends on its own stops the whole system, with the end of its log printed.

Nothing installed, nothing set: SQLite files, an in-process cache and the file broker under
``VAR_DIR`` (default ``var/``), e-mails as ``.eml`` files in ``VAR_DIR/mail``. With
``DATABASE_URL``, ``REDIS_URL`` and ``BROKER_URL`` the same processes use PostgreSQL, Redis
and RabbitMQ. Each service has a database of its own: ``USERS_DATABASE_URL`` (and so on)
names it, otherwise it is derived from ``DATABASE_URL`` by suffixing the database name with
``_<service>`` and created on PostgreSQL if missing (``scripts/databases.py``). Any other
``<SERVICE>_<NAME>`` variable sets ``<NAME>`` for that service only.

Ports: ``--base-port B`` (default 8000) puts users on B+1, catalog B+2, orders B+3 and nginx
on B+80; with ``--var-dir`` as well, a second copy runs beside the first (the tests do).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

import psycopg

import nginx
from databases import ensure_database, masked
from flotilla.config import load_dotenv
from flotilla.serving.processes import log_tail
from supervisor import Failure, Step, Stopped, Supervisor
from system import (
    BACKGROUND_PROGRAMS,
    CONSOLE,
    FRONT_DOOR,
    ROOT,
    ROUTES,
    SYSTEM,
    WEB_SERVICES,
    Layout,
    Program,
    background,
    default_var_dir,
    flask,
    mail_dir,
    migration,
    service_env,
    state,
    web,
)

SERVICES_WITH_DATABASES = tuple(service.name for service in SYSTEM.services if service.database)


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: where state lives, which ports, whether nginx fronts the shop."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--var-dir", type=Path, default=default_var_dir(), help="local state")
    parser.add_argument("--base-port", type=int, default=8000, help="users answers on this + 1")
    parser.add_argument(
        "--no-front-door", action="store_true", help="no nginx even if it is on PATH"
    )
    parser.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="nginx counts no per-address rates (a load test sends everything from one address)",
    )
    return parser.parse_args(argv)


def front_door(layout: Layout, *, rate_limits: bool = True) -> Program:
    """nginx on the front door's port, proxying to the three services."""
    upstreams = nginx.Upstreams(
        **{service: [f"127.0.0.1:{layout.port(service)}"] for service in WEB_SERVICES}
    )
    tuning = nginx.Tuning(rate_limits=rate_limits)
    config = nginx.render(
        layout.var_dir / "nginx", upstreams, port=layout.front_door_port, tuning=tuning
    )
    return Program(
        "nginx",
        nginx.command(config),
        dict(os.environ),
        ready_url=f"{layout.front_door_url}/healthz",
        tier=FRONT_DOOR,
        stop_signal=signal.SIGQUIT,  # graceful: finish the requests in progress
    )


def check_ports(layout: Layout) -> None:
    """Fail at once, naming the port, if something already listens where the system would."""
    ports = {service: layout.port(service) for service in WEB_SERVICES}
    ports |= {name: layout.metrics_port(name) for name, *_ in BACKGROUND_PROGRAMS}
    if layout.front_door:
        ports["nginx"] = layout.front_door_port
    for name, port in ports.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                message = f"cannot listen on port {port}: it is in use (--base-port moves all)"
                raise Failure(name, message, None) from None


def create_databases(environ: Mapping[str, str], layout: Layout) -> None:
    """Create each service's PostgreSQL database if it does not exist yet."""
    for service in SERVICES_WITH_DATABASES:
        url = service_env(service, layout, environ).get("DATABASE_URL", "")
        try:
            if url and ensure_database(url):
                say(f"created database {masked(url)}")
        except psycopg.Error as error:
            raise Failure(service, f"has no database {masked(url)}: {error}", None) from None


def start_system(
    supervisor: Supervisor,
    layout: Layout,
    environ: Mapping[str, str],
    *,
    rate_limits: bool = True,
) -> None:
    """Migrate, then start everything in order, each step once the previous one is up."""
    check_ports(layout)
    create_databases(environ, layout)
    say("migrating the databases, declaring the queues ...")
    envs = {service: service_env(service, layout, environ) for service in SERVICES_WITH_DATABASES}
    steps = [Step(f"{name}-migrate", migration(name), env) for name, env in envs.items()]
    jobs = [  # the queues' declaration: before any relay publishes
        Step(
            job.name, flask(service.name, *job.command), service_env(service.name, layout, environ)
        )
        for service in SYSTEM.services
        for job in service.jobs
    ]
    supervisor.run_all([*steps, *jobs])
    for service in WEB_SERVICES:
        say(f"starting {service} ...")
        supervisor.wait_ready([supervisor.start(web(service, layout, environ))])
    say(f"starting {', '.join(name for name, *_ in BACKGROUND_PROGRAMS)} ...")
    supervisor.wait_ready([supervisor.start(program) for program in background(layout, environ)])
    if layout.front_door:
        say(f"starting nginx on port {layout.front_door_port} ...")
        supervisor.wait_ready([supervisor.start(front_door(layout, rate_limits=rate_limits))])


def banner(layout: Layout, environ: Mapping[str, str]) -> str:
    """Where the shop answers, its API docs, where logs go, how to stop."""
    if layout.front_door:
        lines = ["", f"Flotilla is running at {layout.front_door_url}", ""]
        lines.append(f"  Front door: nginx, routing {', '.join(ROUTES)}")
    else:
        lines = ["", "Flotilla is running, without nginx: each service on its port", ""]
        lines += [f"  {service + ':':<12}{layout.url(service)}" for service in WEB_SERVICES]
    lines += [
        f"  {'API docs:' if service == 'users' else '':<12}{layout.url(service)}/docs  ({service})"
        for service in WEB_SERVICES
    ]
    mail = mail_dir(layout, environ)
    if CONSOLE in WEB_SERVICES:
        console = layout.front_door_url if layout.front_door else layout.url(CONSOLE)
        lines.append(f"  Console:    {console}/console/  (an administrator: make demo makes one)")
    lines += [
        f"  Background: {', '.join(name for name, *_ in BACKGROUND_PROGRAMS)}",
        f"  E-mail:     {f'.eml files in {shown(mail)}' if mail else 'sent through SMTP_HOST'}",
        f"  Logs:       {shown(layout.log_dir)}/<process>.log{access_log(layout)}",
        "  Try it:     make demo (in another terminal)",
        "  Stop:       Ctrl-C",
        "",
    ]
    return "\n".join(lines)


def access_log(layout: Layout) -> str:
    """Where nginx's JSON access log is, if it runs."""
    if not layout.front_door:
        return ""
    return f", nginx's access log {shown(layout.var_dir / 'nginx' / 'access.log')}"


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def say(message: str) -> None:
    """One progress line."""
    print(f"flotilla: {message}", flush=True)


def report(failure: Failure) -> None:
    """What failed and the end of its log."""
    print(f"\nflotilla: {failure}", file=sys.stderr, flush=True)
    if failure.log is not None:
        print(f"last lines of {shown(failure.log)}:", file=sys.stderr)
        print(log_tail(failure.log), file=sys.stderr, flush=True)


def stop(supervisor: Supervisor, layout: Layout, *, failed: str = "") -> int:
    """Stop everything; 0 if every process ended cleanly (``failed`` was reported already)."""
    say("stopping: the front door, the web services (requests in flight finish), the rest ...")
    layout.state_file.unlink(missing_ok=True)
    codes = supervisor.stop()
    unclean = {name: code for name, code in codes.items() if code != 0 and name != failed}
    for name, code in unclean.items():
        say(f"{name} exited with code {code}; see {shown(supervisor.log_path(name))}")
    say("stopped.")
    return 1 if unclean or failed else 0


def main(argv: list[str] | None = None) -> int:
    """Start the system, print where it answers, run until Ctrl-C or a failure."""
    load_dotenv()  # as every process it starts does, so USERS_DATABASE_URL and the like apply
    options = parse_options(argv)
    use_nginx = not options.no_front_door and shutil.which("nginx") is not None
    layout = Layout(options.var_dir.resolve(), options.base_port, front_door=use_nginx)
    environ = dict(os.environ)
    supervisor = Supervisor(layout.log_dir)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    failed = ""
    try:
        start_system(supervisor, layout, environ, rate_limits=not options.no_rate_limits)
        run_state = state(layout, supervisor.pids(), environ)
        layout.state_file.write_text(json.dumps(run_state, indent=2) + "\n")
        print(banner(layout, environ), flush=True)
        supervisor.watch()
    except Stopped:
        pass
    except Failure as failure:
        failed = failure.name
        report(failure)
    finally:
        code = stop(supervisor, layout, failed=failed)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
